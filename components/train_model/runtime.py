"""Train a Keras model on tabular data, resumable and tracked; export it for TF Serving.

The model is built from the TFDV schema and the chosen columns (see ``_features``), with all
preprocessing inside it (``_model``), fed by a tf.data pipeline (``_data``), on the strategy
and precision the hardware calls for (``_hardware``), checkpointed with BackupAndRestore so
a retried task resumes, and logged to MLflow when a tracking URI is configured
(``_tracking``). Outputs follow the contract in components/model_io.py.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from components import images, model_io, registry, tfdv_io, uris
from components.train_model import _data, _features, _hardware, _model
from components.train_model._checkpoints import BACKUP_SUBDIR, Checkpoints  # noqa: F401 - public
from components.train_model._features import (  # noqa: F401 - the public error types
    EmptyDataError,
    FeatureNotFoundError,
    LabelNotFoundError,
    SingleClassLabelError,
    TrainingInputError,
)

logger = logging.getLogger(__name__)

SERVING_VERSION = 1
TRAINING_LOG = "training_log.csv"


class ExportMismatchError(RuntimeError):
    """The exported SavedModel does not predict what the trained Keras model predicts."""


@dataclass
class TrainingResult:
    """What ``run`` produced: artifact metadata, final metrics, per-epoch history, the model."""

    model_metadata: dict
    metrics: dict
    eval_data_metadata: dict
    history: list[dict] = field(default_factory=list)
    keras_model: Any = None


def _validate(
    *,
    label,
    data_path,
    data_uri,
    eval_fraction,
    epochs,
    batch_size,
    learning_rate,
    hidden_units,
    dropout,
    early_stopping_patience,
    task,
    mixed_precision,
    model_fn,
):
    if not label:
        raise ValueError("label must name the label column, got an empty string")
    tfdv_io.one_source(data_path, data_uri, "training data")
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be between 0 and 1 (exclusive), got {eval_fraction}")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if any(int(u) != u or u < 1 for u in hidden_units):
        raise ValueError(f"hidden_units must be positive integers, got {list(hidden_units)}")
    if early_stopping_patience < 0:
        raise ValueError(f"early_stopping_patience must be >= 0, got {early_stopping_patience}")
    if task not in _features.TASKS:
        raise ValueError(f"task must be one of {_features.TASKS}, got {task!r}")
    if mixed_precision not in _hardware.MIXED_PRECISION_MODES:
        raise ValueError(
            f"mixed_precision must be one of {_hardware.MIXED_PRECISION_MODES}, got {mixed_precision!r}"
        )
    if model_fn and not _model.MODEL_FN_PATTERN.match(model_fn):
        raise ValueError(f"model_fn must look like 'package.module:function', got {model_fn!r}")


class _Throughput:
    """Training examples/s, as a Keras callback: training time only (validation excluded),
    and without the first epoch of an attempt (it also traces and compiles the train step)
    when later epochs ran."""

    def __init__(self, examples_per_epoch: int):
        import keras

        outer = self
        self.examples_per_epoch = examples_per_epoch
        self.epoch_seconds: list[float] = []
        self._start = None

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                outer._start = time.perf_counter()

            def on_test_begin(self, logs=None):
                outer._stop()

            def on_epoch_end(self, epoch, logs=None):
                outer._stop()

        self.callback = Timer()

    def _stop(self):
        if self._start is not None:
            self.epoch_seconds.append(time.perf_counter() - self._start)
            self._start = None

    def examples_per_second(self) -> float:
        steady = self.epoch_seconds[1:] or self.epoch_seconds
        return round(self.examples_per_epoch * len(steady) / sum(steady), 1) if steady else 0.0


def run(
    *,
    label: str,
    model_dir: str,
    eval_data_path: str,
    schema_path: str = "",
    data_path: str = "",
    data_uri: str = "",
    data_artifact_uri: str = "",
    data_fingerprint: str = "",
    tensorboard_dir: str = "",
    features: list = (),
    exclude_features: list = (),
    categorical_columns: list = (),
    timestamp_column: str = "",
    eval_fraction: float = 0.2,
    task: str = "auto",
    epochs: int = 20,
    batch_size: int = 128,
    learning_rate: float = 0.003,
    hidden_units: list = (64, 32),
    dropout: float = 0.1,
    model_fn: str = "",
    mixed_precision: str = "auto",
    checkpoint_uri: str = "",
    early_stopping_patience: int = 3,
    seed: int = 42,
    mlflow_tracking_uri: str = "",
    mlflow_experiment: str = "continuous-training",
    callbacks: list = (),
    verbose: int = 2,
) -> TrainingResult:
    """Trains, exports and reports; see components/train_model/component.py for the arguments.

    Extra for callers in Python: ``schema_path=""`` types features from the pandas dtypes;
    ``callbacks`` are added to ``fit`` (after the checkpointing ones).

    Raises:
        ValueError: a bad argument, naming it.
        LabelNotFoundError, FeatureNotFoundError, EmptyDataError, SingleClassLabelError:
            the data cannot train the requested model.
    """
    hidden_units = [int(u) for u in hidden_units]  # kfp.local passes list items as floats
    _validate(
        label=label,
        data_path=data_path,
        data_uri=data_uri,
        eval_fraction=eval_fraction,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        hidden_units=hidden_units,
        dropout=dropout,
        early_stopping_patience=early_stopping_patience,
        task=task,
        mixed_precision=mixed_precision,
        model_fn=model_fn,
    )
    user_model_fn = _model.load_model_fn(model_fn) if model_fn else None
    source = data_path or data_uri
    recorded_uri = data_artifact_uri or data_uri or data_path
    checkpoint_uri = checkpoint_uri or f"{model_dir.rstrip('/')}_checkpoints"

    # The strategy first: MultiWorkerMirroredStrategy must exist before other TF work.
    gpus, capabilities, tf_config = _hardware.detect()
    hardware = _hardware.plan(gpus, capabilities, tf_config, mixed_precision)
    strategy = _hardware.apply(hardware)
    chief = _hardware.is_chief(tf_config)
    if not chief:  # other workers train in lockstep but write their outputs to scratch
        scratch = tempfile.mkdtemp(prefix="train_model_worker_")
        model_dir, eval_data_path = f"{scratch}/model", f"{scratch}/eval.parquet"
        tensorboard_dir, checkpoint_uri = f"{scratch}/tb", f"{scratch}/ckpt"

    import keras

    keras.utils.set_random_seed(seed)

    df = model_io.read_frame(source)
    data_hash = data_fingerprint or uris.fingerprint(source).value
    logger.info("read %d rows x %d columns from %s (%s)", len(df), df.shape[1], source, data_hash)
    if len(df) == 0:
        raise EmptyDataError(f"the data at {recorded_uri!r} has no rows")
    schema = tfdv_io.load_schema(schema_path) if schema_path else None
    specs = _features.feature_specs(
        df,
        schema,
        label,
        list(features),
        list(exclude_features),
        list(categorical_columns),
        timestamp_column,
    )
    labelled = df[df[label].notna()].reset_index(drop=True)
    if len(labelled) < len(df):
        logger.warning("dropped %d rows without a label", len(df) - len(labelled))
    if len(labelled) < 2:
        raise EmptyDataError(
            f"{len(labelled)} rows with a label {label!r} in {recorded_uri!r}: need at least 2"
        )
    target = _features.resolve_target(labelled[label], label, task)
    logger.info("task %s%s", target.task, f", classes {list(target.classes)}" if target.classes else "")
    train_df, eval_df = _data.split(labelled, eval_fraction, seed, timestamp_column)

    x_train, x_eval = _data.feature_arrays(train_df, specs), _data.feature_arrays(eval_df, specs)
    y_train, y_eval = target.encode(train_df[label]), target.encode(eval_df[label])
    global_batch = batch_size * strategy.num_replicas_in_sync
    checkpoints = Checkpoints(checkpoint_uri)
    checkpoint_dir = checkpoints.local_dir
    train_ds = _data.make_dataset(
        x_train, y_train, global_batch, training=True, seed=seed, first_epoch=checkpoints.completed_epochs()
    )
    eval_ds = _data.make_dataset(x_eval, y_eval, global_batch, training=False, seed=seed)
    label_stats = (0.0, 1.0)
    if target.task == "regression":
        label_stats = (float(y_train.mean()), float(y_train.std()) or 1.0)

    with strategy.scope():
        model = _model.build(
            specs,
            x_train,
            target,
            hidden_units=hidden_units,
            dropout=dropout,
            seed=seed,
            label_stats=label_stats,
            model_fn=user_model_fn,
        )
        _model.compile_model(model, target, learning_rate)
    logger.info("model %s", _model.summary_line(model))

    tracking_uri = registry.resolve_tracking_uri(mlflow_tracking_uri)
    params = {
        "label": label,
        "task": target.task,
        "features": ",".join(s.name for s in specs),
        "categorical_columns": list(categorical_columns),
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "hidden_units": hidden_units,
        "dropout": dropout,
        "model_fn": model_fn or "default",
        "eval_fraction": eval_fraction,
        "timestamp_column": timestamp_column,
        "early_stopping_patience": early_stopping_patience,
        "seed": seed,
        "strategy": hardware.strategy,
        "precision": hardware.precision,
    }
    tags = {"data_hash": data_hash, "data_uri": recorded_uri, "image_version": images.VERSION}
    tracker = None
    if tracking_uri and chief:
        from components.train_model._tracking import MlflowRun

        tracker = MlflowRun(tracking_uri, mlflow_experiment, checkpoint_dir)
        tracker.log_start(params, tags)

    throughput = _Throughput(len(y_train))
    training_log = os.path.join(checkpoint_dir, TRAINING_LOG)
    fit_callbacks = [
        keras.callbacks.BackupAndRestore(checkpoints.backup_dir),
        keras.callbacks.CSVLogger(training_log, append=True),
        checkpoints.callback(),
        throughput.callback,
    ]
    if early_stopping_patience > 0:
        fit_callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=early_stopping_patience, restore_best_weights=True
            )
        )
    if tensorboard_dir:
        fit_callbacks.append(keras.callbacks.TensorBoard(tensorboard_dir, write_graph=False, profile_batch=0))
    if tracker:
        fit_callbacks.append(tracker.callback())
    fit_callbacks.extend(callbacks)

    try:
        history = model.fit(
            train_ds,
            validation_data=eval_ds,
            epochs=epochs,
            steps_per_epoch=_data.steps_per_epoch(len(y_train), global_batch),
            callbacks=fit_callbacks,
            verbose=verbose,
        )
        final = model.evaluate(eval_ds, return_dict=True, verbose=0)
    except BaseException:
        if tracker:
            tracker.fail()
        raise
    epochs_run = history.epoch[-1] + 1 if history.epoch else epochs
    first_epoch = history.epoch[0] if history.epoch else epochs
    if first_epoch > 0:
        logger.info("resumed from the checkpoint at epoch %d", first_epoch + 1)

    metrics = {f"eval_{k}": float(v) for k, v in final.items()}
    metrics.update(
        {
            "train_loss": float(history.history["loss"][-1]) if history.epoch else float("nan"),
            "epochs": epochs_run,
            "epochs_this_attempt": len(history.epoch),
            "examples_per_second": throughput.examples_per_second(),
            "train_rows": len(train_df),
            "eval_rows": len(eval_df),
        }
    )
    logger.info("final metrics: %s", json.dumps(metrics))

    version_path = os.path.join(model_dir, str(SERVING_VERSION))
    if os.path.exists(version_path):  # a previous attempt died while exporting
        shutil.rmtree(version_path)
    _model.export(model, specs, target, version_path)
    _check_export(model, version_path, x_eval, hardware.precision)

    os.makedirs(os.path.dirname(os.path.abspath(eval_data_path)), exist_ok=True)
    eval_df.to_parquet(eval_data_path, index=False)
    if tensorboard_dir and os.path.exists(training_log):
        os.makedirs(tensorboard_dir, exist_ok=True)
        shutil.copy(training_log, os.path.join(tensorboard_dir, TRAINING_LOG))

    model_metadata = {
        "framework": "tensorflow",
        "task": target.task,
        "label": label,
        "features": {s.name: s.kind for s in specs},
        "serving_version": SERVING_VERSION,
        "data_hash": data_hash,
        "data_uri": recorded_uri,
        "image_version": images.VERSION,
        "strategy": hardware.strategy,
        "precision": hardware.precision,
    }
    if target.task != "regression":
        model_metadata["classes"] = list(target.classes)
    if tracker:
        model_metadata["mlflow_run_id"] = tracker.run_id
        tracker.log_end(metrics, model_dir, [training_log])
    eval_metadata = {
        "rows": len(eval_df),
        "label": label,
        "split": (f"time-based on {timestamp_column}" if timestamp_column else f"random, seed {seed}"),
        "eval_fraction": eval_fraction,
    }
    epoch_logs = [
        {"epoch": e, **{k: float(v[i]) for k, v in history.history.items()}}
        for i, e in enumerate(history.epoch)
    ]
    return TrainingResult(model_metadata, metrics, eval_metadata, epoch_logs, model)


def _check_export(model, version_path: str, x_eval: dict[str, np.ndarray], precision: str):
    """The served model must predict what the Keras model predicts (skew guard)."""
    import tensorflow as tf

    rows = {k: v[:256] for k, v in x_eval.items()}
    expected = np.asarray(model.predict(rows, verbose=0), dtype=np.float32)
    served = (
        tf.saved_model.load(version_path)
        .signatures[model_io.SIGNATURE](**{k: tf.constant(v) for k, v in rows.items()})[model_io.OUTPUT_KEY]
        .numpy()
    )
    expected = expected.reshape(served.shape)
    tolerance = 1e-3 if precision == "mixed_float16" else 1e-5
    if not np.allclose(served, expected, rtol=tolerance, atol=tolerance):
        raise ExportMismatchError(
            f"the SavedModel at {version_path} predicts differently from the trained model "
            f"(max abs difference {np.max(np.abs(served - expected)):.3g})"
        )
