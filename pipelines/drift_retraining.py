"""Drift-triggered retraining for Kubeflow Pipelines (golden: drift_retraining.yaml).

Run it on a schedule over recent serving data: it always records drift and skew scores
against the statistics production was trained on, and runs the whole training pipeline (with
its own gates) only when the data moved past the thresholds.
"""

from kfp import dsl

from components import compute_statistics, infer_schema, resolve_baseline, validate_data
from pipelines._training import KUBEFLOW, NETWORK_RETRY, build, live

# The nested training pipeline carries no kfp-kubernetes pod settings (see build()).
training = build(KUBEFLOW, pod_settings=False)


@dsl.pipeline(name="drift-retraining")
def drift_retraining(
    recent_data_uri: str,
    training_data_uri: str,
    label: str = "churned",
    environment: str = "SERVING",
    numeric_drift_threshold: float = 0.1,
    categorical_drift_threshold: float = 0.1,
    mlflow_tracking_uri: str = "",
    registered_model_name: str = "churn-classifier",
    deploy_target: str = "kserve",
    service_name: str = "churn-classifier",
    namespace: str = "default",
    accelerator_count: int = 1,
    webhook_url: str = "",
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
        webhook_url: When set, the retraining run's summary is POSTed there.
    """
    baseline = resolve_baseline(
        mlflow_tracking_uri=mlflow_tracking_uri, registered_model_name=registered_model_name
    )
    live(baseline, True, mlflow_secret=True)
    statistics = compute_statistics(data_uri=recent_data_uri).set_retry(**NETWORK_RETRY)
    schema = infer_schema(
        statistics=statistics.outputs["statistics"],
        label=label,
        curated_schema_uri=baseline.outputs["schema_uri"],
        numeric_drift_threshold=numeric_drift_threshold,
        categorical_drift_threshold=categorical_drift_threshold,
    )
    drift = validate_data(
        statistics=statistics.outputs["statistics"],
        schema=schema.outputs["schema"],
        previous_statistics_uri=baseline.outputs["statistics_uri"],
        environment=environment,
        first_run_policy="pass",
    )
    # Its drift_metrics output records every feature's score on every run, drift or not.
    drift.set_display_name("measure-drift")
    with dsl.If(drift.outputs["Output"] == False, name="drift-detected"):  # noqa: E712
        training(
            data_uri=training_data_uri,
            label=label,
            numeric_drift_threshold=numeric_drift_threshold,
            categorical_drift_threshold=categorical_drift_threshold,
            mlflow_tracking_uri=mlflow_tracking_uri,
            registered_model_name=registered_model_name,
            deploy_target=deploy_target,
            service_name=service_name,
            namespace=namespace,
            accelerator_count=accelerator_count,
            webhook_url=webhook_url,
        )
