"""MLflow tracking for a training run: only when a tracking URI is configured.

A KFP retry of the same task continues the same MLflow run: its id is kept next to the
checkpoints. When KFP's MLflow integration gave the task a run (``MLFLOW_RUN_ID``, in the
experiment ``MLFLOW_EXPERIMENT_ID``), training logs into that run and opens none of its own.
register_model later logs the registered model into this run, so a model version's source run
is how it was trained.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

RUN_ID_FILE = "mlflow_run_id"


class MlflowRun:
    """Start/resume a run, log params, tags, per-epoch metrics, final metrics and the model."""

    def __init__(self, tracking_uri: str, experiment: str, checkpoint_dir: str):
        import mlflow

        from components import registry

        registry.client(tracking_uri)  # fails clearly (with retries) when the server is down
        self._mlflow = mlflow
        run_id_path = os.path.join(checkpoint_dir, RUN_ID_FILE)
        injected = os.environ.get("MLFLOW_RUN_ID", "")
        previous = open(run_id_path).read().strip() if os.path.exists(run_id_path) else None
        if injected:  # in KFP's experiment, not ``experiment``
            self.run = registry.resume_run(injected)
        else:
            mlflow.set_experiment(experiment)
            self.run = mlflow.start_run(run_id=previous or None)
        self.run_id = self.run.info.run_id
        os.makedirs(checkpoint_dir, exist_ok=True)
        with open(run_id_path, "w") as f:
            f.write(self.run_id)
        logger.info(
            "MLflow run %s (%s) at %s, experiment id %s",
            self.run_id,
            "injected" if injected else "resumed" if previous else "new",
            tracking_uri,
            self.run.info.experiment_id,
        )

    def log_start(self, params: dict, tags: dict) -> None:
        try:
            self._mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})
        except self._mlflow.exceptions.MlflowException as exc:
            # A resumed run already has its params; MLflow refuses to change them.
            logger.info("MLflow params not re-logged on resume: %s", exc)
        self._mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def callback(self):
        """A Keras callback logging every epoch's metrics (step = epoch)."""
        import keras

        mlflow = self._mlflow

        class EpochMetrics(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                metrics = {k: float(v) for k, v in (logs or {}).items() if _is_number(v)}
                mlflow.log_metrics(metrics, step=epoch)

        return EpochMetrics()

    def log_end(self, metrics: dict, model_dir: str, extra_files: list[str]) -> None:
        self._mlflow.log_metrics({f"final_{k}": float(v) for k, v in metrics.items()})
        self._mlflow.log_artifacts(model_dir, artifact_path="model")
        for path in extra_files:
            if os.path.exists(path):
                self._mlflow.log_artifact(path)
        self._mlflow.end_run()

    def fail(self) -> None:
        self._mlflow.end_run(status="FAILED")


def _is_number(value) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False
