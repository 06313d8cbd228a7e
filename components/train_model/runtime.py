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

from components import (
    feature_store,
    images,
    interface,
    model_io,
    online_features,
    registry,
    request_contract,
    tfdv_io,
    uris,
)
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


def _validate(a: dict) -> None:
    """Checks ``run``'s arguments (its ``locals()``) up front, naming the bad one."""
    if not a["label"]:
        raise ValueError("label must name the label column, got an empty string")
    tfdv_io.one_source(a["data_path"], a["data_uri"], "training data")
    if not 0.0 < a["eval_fraction"] < 1.0:
        raise ValueError(f"eval_fraction must be between 0 and 1 (exclusive), got {a['eval_fraction']}")
    if a["epochs"] < 1:
        raise ValueError(f"epochs must be at least 1, got {a['epochs']}")
    if a["batch_size"] < 1:
        raise ValueError(f"batch_size must be at least 1, got {a['batch_size']}")
    if not a["learning_rate"] > 0:
        raise ValueError(f"learning_rate must be positive, got {a['learning_rate']}")
    if not 0.0 <= a["dropout"] < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {a['dropout']}")
    if any(int(u) != u or u < 1 for u in a["hidden_units"]):
        raise ValueError(f"hidden_units must be positive integers, got {list(a['hidden_units'])}")
    if a["early_stopping_patience"] < 0:
        raise ValueError(f"early_stopping_patience must be >= 0, got {a['early_stopping_patience']}")
    if a["task"] not in _features.TASKS:
        raise ValueError(f"task must be one of {_features.TASKS}, got {a['task']!r}")
    if a["mixed_precision"] not in _hardware.MIXED_PRECISION_MODES:
        raise ValueError(
            f"mixed_precision must be one of {_hardware.MIXED_PRECISION_MODES}, got {a['mixed_precision']!r}"
        )
    if a["model_fn"] and not _model.MODEL_FN_PATTERN.match(a["model_fn"]):
        raise ValueError(f"model_fn must look like 'package.module:function', got {a['model_fn']!r}")


@dataclass
class _Outputs:
    """Where this worker writes: the real outputs on the chief, scratch on the others."""

    model_dir: str
    eval_data_path: str
    tensorboard_dir: str
    checkpoint_uri: str


@dataclass
class _Examples:
    """The data as the model sees it: feature specs, target, both splits as frame and arrays."""

    data_hash: str
    recorded_uri: str
    specs: list
    target: Any
    train_df: Any
    eval_df: Any
    x_train: dict
    x_eval: dict
    y_train: np.ndarray
    y_eval: np.ndarray
    feature_record: dict | None = None
    """The feature store's record of the refs the model uses (None: not from a feature store)."""


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


@interface.defaults_from(__file__)
def run(
    *,
    model_dir: str,
    eval_data_path: str,
    schema_path: str = "",
    data_path: str = "",
    data_artifact_uri: str = "",
    tensorboard_dir: str = "",
    callbacks: list = (),
    verbose: int = 2,
    label, data_uri, data_fingerprint, features, exclude_features, categorical_columns, timestamp_column,
    eval_fraction, task, epochs, batch_size, learning_rate, hidden_units, dropout, model_fn,
    mixed_precision, checkpoint_uri, early_stopping_patience, seed, mlflow_tracking_uri, mlflow_experiment,
) -> TrainingResult:
    """Trains, exports and reports. Parameters are documented on the component (component.py).

    Extra for callers in Python: ``schema_path=""`` types features from the pandas dtypes;
    ``callbacks`` are added to ``fit`` (after the checkpointing ones); ``data_artifact_uri``
    is the URI recorded for ``data_path``; an empty ``checkpoint_uri`` means
    ``<model_dir>_checkpoints``.

    Raises:
        ValueError: a bad argument, naming it.
        LabelNotFoundError, FeatureNotFoundError, EmptyDataError, SingleClassLabelError:
            the data cannot train the requested model.
    """
    hidden_units = [int(u) for u in hidden_units]  # kfp.local passes list items as floats
    arguments = dict(locals())  # validated up front, logged as the MLflow run's params
    _validate(arguments)
    user_model_fn = _model.load_model_fn(model_fn) if model_fn else None
    outputs = _Outputs(
        model_dir, eval_data_path, tensorboard_dir, checkpoint_uri or f"{model_dir.rstrip('/')}_checkpoints"
    )

    # The strategy first: MultiWorkerMirroredStrategy must exist before other TF work.
    hardware, strategy, chief = _distribute(mixed_precision)
    if not chief:  # other workers train in lockstep but write their outputs to scratch
        outputs = _scratch_outputs(outputs.checkpoint_uri)

    import keras

    keras.utils.set_random_seed(seed)
    examples = _read_examples(
        source=data_path or data_uri, recorded_uri=data_artifact_uri or data_uri or data_path,
        data_fingerprint=data_fingerprint, schema_path=schema_path, label=label, features=features,
        exclude_features=exclude_features, categorical_columns=categorical_columns,
        timestamp_column=timestamp_column, task=task, eval_fraction=eval_fraction, seed=seed,
    )
    checkpoints = Checkpoints(outputs.checkpoint_uri, writer=chief)  # every worker resumes from it
    global_batch = batch_size * strategy.num_replicas_in_sync
    train_ds, eval_ds = _datasets(examples, global_batch, seed, checkpoints)
    with strategy.scope():
        model = _model.build(
            examples.specs, examples.x_train, examples.target, hidden_units=hidden_units, dropout=dropout,
            seed=seed, label_stats=_label_stats(examples), model_fn=user_model_fn,
        )
        _model.compile_model(model, examples.target, learning_rate)
    if hardware.strategy != "default":
        _hardware.build_for_strategy(model, train_ds.element_spec)
    logger.info("model %s", _model.summary_line(model))

    tracker = _start_tracking(arguments, chief, checkpoints, examples, hardware)
    history, final, throughput = _fit(
        model, train_ds, eval_ds, examples, checkpoints, outputs, tracker, global_batch=global_batch,
        epochs=epochs, early_stopping_patience=early_stopping_patience, callbacks=callbacks, verbose=verbose,
    )
    metrics = _final_metrics(final, history, throughput, examples, epochs)
    _export(model, examples, outputs.model_dir, hardware.precision)
    training_log = _write_outputs(examples, outputs, checkpoints)
    model_metadata = _model_metadata(examples, label, hardware)
    if tracker:
        model_metadata["mlflow_run_id"] = tracker.run_id
        tracker.log_end(metrics, outputs.model_dir, [training_log])
    return TrainingResult(
        model_metadata, metrics, _eval_metadata(examples, arguments), _epoch_logs(history), model
    )


def _distribute(mixed_precision: str):
    """The hardware plan, the distribution strategy in force and whether this is the chief."""
    gpus, capabilities, tf_config = _hardware.detect()
    hardware = _hardware.plan(gpus, capabilities, tf_config, mixed_precision)
    return hardware, _hardware.apply(hardware), _hardware.is_chief(tf_config)


def _scratch_outputs(checkpoint_uri: str) -> _Outputs:
    """A non-chief worker's outputs: its own scratch folder, and the shared checkpoint (which
    it reads, see ``Checkpoints``). It still exports and checkpoints: saving a model reads its
    variables, which under MultiWorkerMirroredStrategy may be a collective every worker joins."""
    scratch = tempfile.mkdtemp(prefix="train_model_worker_")
    return _Outputs(f"{scratch}/model", f"{scratch}/eval.parquet", f"{scratch}/tb", checkpoint_uri)


def _read_examples(
    *, source, recorded_uri, data_fingerprint, schema_path, label, features, exclude_features,
    categorical_columns, timestamp_column, task, eval_fraction, seed,
) -> _Examples:
    """Reads the data, types the features, drops unlabelled rows and splits train/eval."""
    df = model_io.read_frame(source)
    data_hash = data_fingerprint or uris.fingerprint(source).value
    logger.info("read %d rows x %d columns from %s (%s)", len(df), df.shape[1], source, data_hash)
    if len(df) == 0:
        raise EmptyDataError(f"the data at {recorded_uri!r} has no rows")
    schema = tfdv_io.load_schema(schema_path) if schema_path else None
    specs = _features.feature_specs(
        df, schema, label, list(features), list(exclude_features), list(categorical_columns), timestamp_column
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
    return _Examples(
        data_hash, recorded_uri, specs, target, train_df, eval_df,
        _data.feature_arrays(train_df, specs), _data.feature_arrays(eval_df, specs),
        target.encode(train_df[label]), target.encode(eval_df[label]),
        _feature_record(source, specs),
    )


def _feature_record(source: str, specs) -> dict | None:
    """The training set's feature-store record (``feature_store.read_record``), narrowed to
    the references of the features this model uses: what serving looks up online."""
    record = feature_store.read_record(source)
    if record is None:
        return None
    used = {s.name for s in specs}
    refs = [ref for ref in record.feature_refs if feature_store.parse_ref(ref)[1] in used]
    if not refs:
        logger.warning("the model uses none of the feature store's features %s", record.feature_refs)
        return None
    logger.info("features from the feature store %s: %s", record.repository, refs)
    return {**record.to_dict(), "feature_refs": refs}


def _label_stats(examples: _Examples) -> tuple[float, float]:
    """Mean and std the regression head de-normalizes with (identity for classifiers)."""
    if examples.target.task != "regression":
        return (0.0, 1.0)
    return (float(examples.y_train.mean()), float(examples.y_train.std()) or 1.0)


def _start_tracking(a: dict, chief: bool, checkpoints: Checkpoints, examples: _Examples, hardware):
    """The MLflow run (resumed on a retry) with the training params, on the chief when a
    tracking URI is configured; ``a`` holds run's arguments."""
    tracking_uri = registry.resolve_tracking_uri(a["mlflow_tracking_uri"])
    if not (tracking_uri and chief):
        return None
    from components.train_model._tracking import MlflowRun

    tracker = MlflowRun(tracking_uri, a["mlflow_experiment"], checkpoints.local_dir)
    params = {
        "label": a["label"],
        "task": examples.target.task,
        "features": ",".join(s.name for s in examples.specs),
        "categorical_columns": list(a["categorical_columns"]),
        "epochs": a["epochs"],
        "batch_size": a["batch_size"],
        "learning_rate": a["learning_rate"],
        "hidden_units": a["hidden_units"],
        "dropout": a["dropout"],
        "model_fn": a["model_fn"] or "default",
        "eval_fraction": a["eval_fraction"],
        "timestamp_column": a["timestamp_column"],
        "early_stopping_patience": a["early_stopping_patience"],
        "seed": a["seed"],
        "strategy": hardware.strategy,
        "precision": hardware.precision,
    }
    tags = {"data_hash": examples.data_hash, "data_uri": examples.recorded_uri}
    tracker.log_start(params, {**tags, "image_version": images.VERSION})
    return tracker


def _datasets(examples: _Examples, global_batch: int, seed: int, checkpoints: Checkpoints):
    """The training stream (from the first epoch not yet done) and the eval batches."""
    train_ds = _data.make_dataset(
        examples.x_train, examples.y_train, global_batch, training=True, seed=seed,
        first_epoch=checkpoints.completed_epochs(),
    )
    eval_ds = _data.make_dataset(examples.x_eval, examples.y_eval, global_batch, training=False, seed=seed)
    return train_ds, eval_ds


def _fit(
    model, train_ds, eval_ds, examples, checkpoints, outputs, tracker, *, global_batch, epochs,
    early_stopping_patience, callbacks, verbose,
):
    """Fits with resumable checkpoints, the training log, early stopping, TensorBoard and MLflow;
    returns the history, the final eval metrics and the throughput."""
    import keras

    throughput = _Throughput(len(examples.y_train))
    fit_callbacks = [
        keras.callbacks.BackupAndRestore(checkpoints.backup_dir),
        keras.callbacks.CSVLogger(os.path.join(checkpoints.local_dir, TRAINING_LOG), append=True),
        checkpoints.callback(),
        throughput.callback,
    ]
    if early_stopping_patience > 0:
        fit_callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=early_stopping_patience, restore_best_weights=True
            )
        )
    if outputs.tensorboard_dir:
        fit_callbacks.append(
            keras.callbacks.TensorBoard(outputs.tensorboard_dir, write_graph=False, profile_batch=0)
        )
    if tracker:
        fit_callbacks.append(tracker.callback())
    fit_callbacks.extend(callbacks)

    try:
        history = model.fit(
            train_ds,
            validation_data=eval_ds,
            epochs=epochs,
            steps_per_epoch=_data.steps_per_epoch(len(examples.y_train), global_batch),
            callbacks=fit_callbacks,
            verbose=verbose,
        )
        final = model.evaluate(eval_ds, return_dict=True, verbose=0)
    except BaseException:
        if tracker:
            tracker.fail()
        raise
    first_epoch = history.epoch[0] if history.epoch else epochs
    if first_epoch > 0:
        logger.info("resumed from the checkpoint at epoch %d", first_epoch + 1)
    return history, final, throughput


def _final_metrics(final: dict, history, throughput: _Throughput, examples: _Examples, epochs: int) -> dict:
    metrics = {f"eval_{k}": float(v) for k, v in final.items()}
    metrics.update(
        {
            "train_loss": float(history.history["loss"][-1]) if history.epoch else float("nan"),
            "epochs": history.epoch[-1] + 1 if history.epoch else epochs,
            "epochs_this_attempt": len(history.epoch),
            "examples_per_second": throughput.examples_per_second(),
            "train_rows": len(examples.train_df),
            "eval_rows": len(examples.eval_df),
        }
    )
    logger.info("final metrics: %s", json.dumps(metrics))
    return metrics


def _export(model, examples: _Examples, model_dir: str, precision: str) -> None:
    """Exports the serving SavedModel and checks it predicts what the Keras model predicts."""
    version_path = os.path.join(model_dir, str(SERVING_VERSION))
    if os.path.exists(version_path):  # a previous attempt died while exporting
        shutil.rmtree(version_path)
    _model.export(model, examples.specs, examples.target, version_path)
    _check_export(model, version_path, examples.x_eval, precision)
    # What the server checks each request against: types, training ranges and categories.
    kinds = {s.name: s.kind for s in examples.specs}
    request_contract.write(version_path, request_contract.build(examples.train_df, kinds))
    if examples.feature_record:  # in the version folder, so every copy of the model keeps it
        online_features.write_record(version_path, examples.feature_record)


def _write_outputs(examples: _Examples, outputs: _Outputs, checkpoints: Checkpoints) -> str:
    """Writes the eval split and copies the training log beside TensorBoard's; returns the log."""
    os.makedirs(os.path.dirname(os.path.abspath(outputs.eval_data_path)), exist_ok=True)
    examples.eval_df.to_parquet(outputs.eval_data_path, index=False)
    training_log = os.path.join(checkpoints.local_dir, TRAINING_LOG)
    if outputs.tensorboard_dir and os.path.exists(training_log):
        os.makedirs(outputs.tensorboard_dir, exist_ok=True)
        shutil.copy(training_log, os.path.join(outputs.tensorboard_dir, TRAINING_LOG))
    return training_log


def _eval_metadata(examples: _Examples, a: dict) -> dict:
    timestamp_column = a["timestamp_column"]
    return {
        "rows": len(examples.eval_df),
        "label": a["label"],
        "split": (f"time-based on {timestamp_column}" if timestamp_column else f"random, seed {a['seed']}"),
        "eval_fraction": a["eval_fraction"],
    }


def _epoch_logs(history) -> list[dict]:
    return [
        {"epoch": e, **{k: float(v[i]) for k, v in history.history.items()}}
        for i, e in enumerate(history.epoch)
    ]


def _model_metadata(examples: _Examples, label: str, hardware) -> dict:
    """The model artifact's metadata: the contract in components/model_io.py."""
    metadata = {
        "framework": "tensorflow",
        "task": examples.target.task,
        "label": label,
        "features": {s.name: s.kind for s in examples.specs},
        "serving_version": SERVING_VERSION,
        "data_hash": examples.data_hash,
        "data_uri": examples.recorded_uri,
        "image_version": images.VERSION,
        "strategy": hardware.strategy,
        "precision": hardware.precision,
    }
    if examples.target.task != "regression":
        metadata["classes"] = list(examples.target.classes)
    if examples.feature_record:
        metadata["feature_refs"] = list(examples.feature_record["feature_refs"])
    return metadata


def _check_export(model, version_path: str, x_eval: dict[str, np.ndarray], precision: str):
    """The served model must predict what the Keras model predicts (skew guard)."""
    import tensorflow as tf

    rows = {k: v[:256] for k, v in x_eval.items()}
    # Called, not model.predict: the check needs no other worker, and under a multi-worker
    # strategy predict spreads the rows over the workers and gathers the predictions back.
    expected = np.asarray(model(rows, training=False), dtype=np.float32)
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
