"""The monitoring pipeline, built for one platform at a time (see pipelines/_training.py for
what differs between Kubeflow and Vertex AI).

It judges the model in production from a window of its prediction logs (``monitor_model``:
skew, prediction drift, live or estimated performance, errors, latency, flagged requests) and,
when serving says so (its output is ``"retrain"``), runs the gated training steps on fresh data:
the same steps and gates as the training pipeline, so a retrained model still has to be
blessed against production before it replaces it. The monitor's verdict is recorded with the
run, so the summary (and its webhook post) says why it retrained, or why the model is unhealthy
when it did not. ``drift_retraining`` stays for data that never passes through our server.
"""

from types import SimpleNamespace

from kfp import dsl

from components import monitor_model, summarize_run
from pipelines import training as training_pipeline
from pipelines._training import (
    DEFAULT_ACCELERATOR,
    DEPLOY,
    EVALUATE,
    KUBEFLOW,
    RECORD_DIR,
    SUMMARY,
    TRAIN,
    defaults,
    gated_training,
    live,
    record_gate,
)

MONITOR = defaults(monitor_model)
# What this pipeline does not expose comes from the training pipeline's defaults.
TRAINING_DEFAULTS = defaults(training_pipeline.training)


def build(platform: str):
    """Returns the monitoring pipeline for ``platform`` ("kubeflow" or "vertex")."""
    if platform not in DEFAULT_ACCELERATOR:
        raise ValueError(f"platform must be 'kubeflow' or 'vertex', got {platform!r}")
    pod_settings = platform == KUBEFLOW

    # Defaults come from the components each parameter feeds (monitor_model's thresholds) or
    # from the training pipeline (names, deployment). Set here on purpose: the accelerator
    # name of the platform.
    def monitoring(
        log_uri: str,
        training_data_uri: str,
        service_name: str = TRAINING_DEFAULTS["service_name"],
        window_hours: float = MONITOR["window_hours"],
        labels_uri: str = MONITOR["labels_uri"],
        label: str = TRAINING_DEFAULTS["label"],
        join_key: str = MONITOR["join_key"],
        max_skew_linf: float = MONITOR["max_skew_linf"],
        max_skew_jsd: float = MONITOR["max_skew_jsd"],
        max_prediction_psi: float = MONITOR["max_prediction_psi"],
        max_performance_drop: float = MONITOR["max_performance_drop"],
        max_error_rate: float = MONITOR["max_error_rate"],
        max_latency_p95_ms: float = MONITOR["max_latency_p95_ms"],
        max_flagged_share: float = MONITOR["max_flagged_share"],
        min_rows: int = MONITOR["min_rows"],
        epochs: int = TRAIN["epochs"],
        thresholds: dict = EVALUATE["thresholds"],
        change_thresholds: dict = EVALUATE["change_thresholds"],
        mlflow_tracking_uri: str = TRAIN["mlflow_tracking_uri"],
        registered_model_name: str = TRAINING_DEFAULTS["registered_model_name"],
        deploy_target: str = TRAINING_DEFAULTS["deploy_target"],
        namespace: str = DEPLOY["namespace"],
        local_serving_dir: str = DEPLOY["local_serving_dir"],
        local_endpoint: str = DEPLOY["local_endpoint"],
        accelerator_type: str = DEFAULT_ACCELERATOR[platform],
        accelerator_count: int = TRAINING_DEFAULTS["accelerator_count"],
        webhook_url: str = SUMMARY["webhook_url"],
    ):
        """Judges the model in production from its prediction logs; retrains when serving says so.

        Args:
            log_uri: The prediction logs' root (the model server's --log-dir, or the log
                sink's folder; gs://, s3://, minio:// or a mounted path).
            training_data_uri: Fresh labelled data to retrain on, CSV or Parquet.
            service_name: The served model's name (as logged) and the InferenceService a
                retrained model is deployed to.
            window_hours: Hours of logs the monitor judges, ending now.
            labels_uri: Ground truth that arrived later (join_key and label columns); empty:
                performance is estimated from the predicted probabilities (CBPE).
            label: The label column (in labels_uri and in training_data_uri).
            join_key: How labels meet predictions: request_id or a logged input column.
            max_skew_linf: Largest L-infinity training/serving distance (categorical features).
            max_skew_jsd: Largest Jensen-Shannon training/serving divergence (numeric features).
            max_prediction_psi: Largest PSI of the predictions vs those at registration.
            max_performance_drop: Largest drop vs the registered metric (measured or estimated).
            max_error_rate: Largest share of failed requests.
            max_latency_p95_ms: Largest p95 request latency, in milliseconds.
            max_flagged_share: Largest share of served rows flagged by the request check.
            min_rows: Served rows below which the window is too small to judge.
            epochs: Maximum training epochs of a retraining.
            thresholds: Absolute bounds a retrained model must meet, e.g. {"auc": 0.7}.
            change_thresholds: Largest allowed degradation of a retrained model vs production,
                e.g. {"auc": 0.02} (the primary metric is limited to a 0.01 drop unless named).
            mlflow_tracking_uri: MLflow tracking URI; empty uses MLFLOW_TRACKING_URI.
            registered_model_name: The MLflow registered model whose production version serves.
            deploy_target: Where a retrained, blessed model goes: kserve or local.
            namespace: Kubernetes namespace of the InferenceService.
            local_serving_dir: For deploy_target=local: the folder the local model server serves.
            local_endpoint: For deploy_target=local: the running local model server to reload.
            accelerator_type: GPU type for retraining (Kubeflow: nvidia.com/gpu; Vertex: e.g.
                NVIDIA_TESLA_T4).
            accelerator_count: GPUs for retraining; 0 trains on CPU.
            webhook_url: When set, the run summary (with the monitor's verdict) is POSTed there.
        """
        p = SimpleNamespace(**{**TRAINING_DEFAULTS, **locals(), "data_uri": training_data_uri})
        summary = summarize_run(record_dir=RECORD_DIR, webhook_url=webhook_url)
        live(summary, pod_settings, minio=True)
        with dsl.ExitHandler(summary, name="run-summary"):
            monitor = monitor_model(
                log_uri=log_uri,
                model_name=service_name,
                window_hours=window_hours,
                labels_uri=labels_uri,
                label=label,
                join_key=join_key,
                registered_model_name=registered_model_name,
                mlflow_tracking_uri=mlflow_tracking_uri,
                max_skew_linf=max_skew_linf,
                max_skew_jsd=max_skew_jsd,
                max_prediction_psi=max_prediction_psi,
                max_performance_drop=max_performance_drop,
                max_error_rate=max_error_rate,
                max_latency_p95_ms=max_latency_p95_ms,
                max_flagged_share=max_flagged_share,
                min_rows=min_rows,
            )
            live(monitor, pod_settings, mlflow_secret=True, minio=True)  # the logs grow every hour
            record_gate(monitor.outputs["verdict"], "model-is-healthy", pod_settings)
            # One return value, not a NamedTuple: kfp.local cannot resolve a named output in a
            # condition, and the same spec must gate alike locally and on the cluster.
            with dsl.If(monitor.outputs["Output"] == "retrain", name="serving-says-retrain"):
                gated_training(p, pod_settings)

    monitoring.__name__ = "monitoring" if pod_settings else "monitoring_vertex"
    return dsl.pipeline(name="monitoring" if pod_settings else "monitoring-vertex")(monitoring)
