"""Drift-triggered retraining for Kubeflow Pipelines (golden: drift_retraining.yaml).

Run it on a schedule over recent serving data: it always records drift and skew scores
against the statistics production was trained on, and runs the gated training steps (with
their own gates) only when the data moved past the thresholds.
"""

from types import SimpleNamespace

from kfp import dsl

from components import check_data, resolve_inputs, summarize_run
from pipelines import training as training_pipeline
from pipelines._training import (
    CHECK,
    DEPLOY,
    NETWORK_RETRY,
    RECORD_DIR,
    SUMMARY,
    TRAIN,
    defaults,
    gated_training,
    kubernetes_settings,
    live,
)

# The training steps are built here by the same function as in the training pipeline (not
# nested: kfp 2.17 merges a nested pipeline's pod settings onto the wrong tasks), with the
# training pipeline's defaults for what this pipeline does not expose.
TRAINING_DEFAULTS = defaults(training_pipeline.training)


# Defaults come from the components each parameter feeds, or from the training pipeline. Set
# here on purpose: environment (recent data is serving data, without the label; validate_data
# defaults to TRAINING) and, below, first_run_policy="pass" (no drift baseline: nothing to
# retrain for).
@dsl.pipeline(name="drift-retraining")
def drift_retraining(
    recent_data_uri: str,
    training_data_uri: str,
    label: str = TRAINING_DEFAULTS["label"],
    environment: str = "SERVING",
    numeric_drift_threshold: float = CHECK["numeric_drift_threshold"],
    categorical_drift_threshold: float = CHECK["categorical_drift_threshold"],
    mlflow_tracking_uri: str = TRAIN["mlflow_tracking_uri"],
    registered_model_name: str = TRAINING_DEFAULTS["registered_model_name"],
    deploy_target: str = TRAINING_DEFAULTS["deploy_target"],
    service_name: str = TRAINING_DEFAULTS["service_name"],
    namespace: str = DEPLOY["namespace"],
    accelerator_count: int = TRAINING_DEFAULTS["accelerator_count"],
    webhook_url: str = SUMMARY["webhook_url"],
):
    """Measures drift of recent data against production's training data; retrains past the thresholds.

    Args:
        recent_data_uri: Recent serving (or newly arrived) data, CSV or Parquet.
        training_data_uri: Labelled data to retrain on when drift is detected.
        label: The label column (absent from serving data: validated in the SERVING environment).
        environment: TFDV schema environment of the recent data: SERVING or TRAINING.
        numeric_drift_threshold: Jensen-Shannon divergence allowed for numeric features.
        categorical_drift_threshold: L-infinity distance allowed for categorical features.
        mlflow_tracking_uri: MLflow tracking URI; empty uses MLFLOW_TRACKING_URI.
        registered_model_name: The MLflow registered model whose production version is the baseline.
        deploy_target: Where a retrained, blessed model goes: kserve or local.
        service_name: The InferenceService name.
        namespace: Kubernetes namespace of the InferenceService.
        accelerator_count: GPUs for retraining; 0 trains on CPU.
        webhook_url: When set, the run summary is POSTed there.
    """
    p = SimpleNamespace(**{**TRAINING_DEFAULTS, **locals(), "data_uri": training_data_uri})
    summary = live(summarize_run(record_dir=RECORD_DIR, webhook_url=webhook_url), True, minio=True)
    with dsl.ExitHandler(summary, name="run-summary"):
        # The recent data's version and production's baseline, read live (see gated_training).
        recent = resolve_inputs(
            data_uri=recent_data_uri,
            mlflow_tracking_uri=mlflow_tracking_uri,
            registered_model_name=registered_model_name,
        )
        live(recent, True, mlflow_secret=True, minio=True)
        drift = check_data(
            data_uri=recent.outputs["data_uri"],
            data_fingerprint=recent.outputs["fingerprint"],
            label=label,
            curated_schema_uri=recent.outputs["schema_uri"],
            numeric_drift_threshold=numeric_drift_threshold,
            categorical_drift_threshold=categorical_drift_threshold,
            previous_statistics_uri=recent.outputs["statistics_uri"],
            environment=environment,
            first_run_policy="pass",
            mlflow_tracking_uri=mlflow_tracking_uri,
        )
        kubernetes_settings(drift.set_retry(**NETWORK_RETRY), True, mlflow_secret=True, minio=True)
        # Its drift_metrics output records every feature's score on every run, drift or not.
        drift.set_display_name("measure-drift")
        with dsl.If(drift.outputs["Output"] == False, name="drift-detected"):  # noqa: E712
            gated_training(p, pod_settings=True)
