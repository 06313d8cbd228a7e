"""The Keras model: preprocessing layers fitted on the training split, a body, a task head,
and the SavedModel export with the serving signature of the contract (components/model_io.py).

Because normalization, imputation and vocabularies are layers of the model, serving takes raw
feature values and cannot disagree with training.

A user-supplied ``model_fn`` ("package.module:function") is called as
``model_fn(inputs, encoded, info)``:

- ``inputs``: ``{feature: keras.Input}``, raw values, shape ``()`` per example;
- ``encoded``: float32 tensor ``[batch, d]``, every feature preprocessed and concatenated;
- ``info``: dict with ``task``, ``n_outputs``, ``classes``, ``features`` ({name: kind}),
  ``hidden_units``, ``dropout``, ``seed``.

It returns either a tensor (the last hidden layer; the component adds the task's output
layer, float32 under mixed precision, and for regression the label scaling), or a
``keras.Model`` over ``inputs`` whose output already is the prediction (sigmoid probability
``[batch, 1]``, softmax ``[batch, n_classes]`` or value ``[batch, 1]``).
"""

from __future__ import annotations

import importlib
import logging
import re

import numpy as np

from components import model_io

logger = logging.getLogger(__name__)

ONE_HOT_MAX = 16  # vocabularies up to this size (OOV included) are one-hot, larger embedded
MAX_VOCABULARY = 10_000
EMBEDDING_DIM_MAX = 16
MODEL_FN_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def load_model_fn(spec: str):
    """The function named by "package.module:function"."""
    if not MODEL_FN_PATTERN.match(spec):
        raise ValueError(f"model_fn must look like 'package.module:function', got {spec!r}")
    module_name, function_name = spec.split(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"model_fn {spec!r} cannot be imported: {exc}") from exc
    if not callable(function):
        raise ValueError(f"model_fn {spec!r} is not callable")
    return function


def _vocabulary(values: np.ndarray, missing) -> list:
    """Training values by frequency (ties by value), without the missing marker for ints."""
    counts: dict = {}
    for v in values.tolist():
        if v != missing:
            counts[v] = counts.get(v, 0) + 1
    ordered = sorted(counts, key=lambda v: (-counts[v], v))
    return ordered[:MAX_VOCABULARY]


def _encode_categorical(keras, name, inp, lookup, vocabulary_size, seed):
    if vocabulary_size <= ONE_HOT_MAX:
        return lookup(inp)  # one_hot mode
    dim = min(EMBEDDING_DIM_MAX, max(2, round(1.6 * vocabulary_size**0.56)))
    indices = lookup(inp)
    embedded = keras.layers.Embedding(
        vocabulary_size,
        dim,
        name=f"{name}_embedding",
        embeddings_initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed=seed),
    )(indices)
    return embedded


def preprocessing(specs, x_train: dict[str, np.ndarray], seed: int):
    """Keras inputs and the encoded float32 feature vector, fitted on the training arrays."""
    import keras

    inputs, parts = {}, []
    for i, spec in enumerate(specs):
        values = x_train[spec.name]
        name = _layer_name(spec.name)
        if spec.kind == "float":
            inp = keras.Input(shape=(), dtype="float32", name=spec.name)
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                logger.warning("feature %r has no value in the training split", spec.name)
                mean, variance = 0.0, 1.0
            else:
                mean, variance = float(finite.mean()), float(finite.var())
            column = keras.ops.expand_dims(inp, -1)
            missing = keras.ops.logical_not(keras.ops.isfinite(column))
            # Missing -> training mean (0 after normalization), plus an indicator column.
            imputed = keras.ops.where(missing, mean, column)
            normalized = keras.layers.Normalization(
                mean=mean, variance=variance, dtype="float32", name=f"{name}_normalize"
            )(imputed)
            parts += [normalized, keras.ops.cast(missing, "float32")]
        elif spec.kind == "int":
            inp = keras.Input(shape=(), dtype="int64", name=spec.name)
            vocabulary = _vocabulary(values, model_io.MISSING_INT)
            size = max(len(vocabulary), 1) + 1
            lookup = keras.layers.IntegerLookup(
                vocabulary=np.array(vocabulary or [0], dtype=np.int64),
                oov_token=model_io.MISSING_INT,
                output_mode="one_hot" if size <= ONE_HOT_MAX else "int",
                name=f"{name}_lookup",
            )
            parts.append(_encode_categorical(keras, name, inp, lookup, size, seed + i))
        else:
            inp = keras.Input(shape=(), dtype="string", name=spec.name)
            vocabulary = _vocabulary(values, None)
            size = max(len(vocabulary), 1) + 1
            lookup = keras.layers.StringLookup(
                vocabulary=vocabulary or [""],
                output_mode="one_hot" if size <= ONE_HOT_MAX else "int",
                name=f"{name}_lookup",
            )
            parts.append(_encode_categorical(keras, name, inp, lookup, size, seed + i))
        inputs[spec.name] = inp
    parts = [keras.ops.cast(p, "float32") for p in parts]
    encoded = keras.layers.Concatenate(name="encoded_features")(parts) if len(parts) > 1 else parts[0]
    return inputs, encoded


def _layer_name(feature: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", feature) or "feature"


def build(
    specs,
    x_train: dict[str, np.ndarray],
    target,
    *,
    hidden_units: list[int],
    dropout: float,
    seed: int,
    label_stats: tuple[float, float] = (0.0, 1.0),
    model_fn=None,
):
    """The uncompiled Keras model from raw feature inputs to the prediction."""
    import keras

    inputs, encoded = preprocessing(specs, x_train, seed)
    n_outputs = len(target.classes) if target.task == "multiclass" else 1
    if model_fn is not None:
        info = {
            "task": target.task,
            "n_outputs": n_outputs,
            "classes": list(target.classes),
            "features": {s.name: s.kind for s in specs},
            "hidden_units": list(hidden_units),
            "dropout": dropout,
            "seed": seed,
        }
        result = model_fn(inputs, encoded, info)
        if isinstance(result, keras.Model):
            return result
        hidden = result
    else:
        hidden = encoded
        for i, units in enumerate(hidden_units):
            hidden = keras.layers.Dense(
                units,
                activation="relu",
                name=f"hidden_{i}",
                kernel_initializer=keras.initializers.GlorotUniform(seed=seed + i),
            )(hidden)
            if dropout > 0:
                hidden = keras.layers.Dropout(dropout, seed=seed + i, name=f"dropout_{i}")(hidden)
    activation = {"binary": "sigmoid", "multiclass": "softmax", "regression": None}[target.task]
    # float32 head: under mixed_float16, softmax/sigmoid and the loss stay numerically stable.
    output = keras.layers.Dense(
        n_outputs,
        activation=activation,
        dtype="float32",
        name="head",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1000),
    )(hidden)
    if target.task == "regression":
        mean, std = label_stats
        output = keras.ops.add(keras.ops.multiply(output, std), mean)  # learn in label z-space
    return keras.Model(inputs, output, name="train_model")


def compile_model(model, target, learning_rate: float):
    import keras

    if target.task == "binary":
        loss = keras.losses.BinaryCrossentropy()
        metrics = [keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="accuracy")]
    elif target.task == "multiclass":
        loss = keras.losses.SparseCategoricalCrossentropy()
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    else:
        loss = keras.losses.MeanSquaredError()
        metrics = [
            keras.metrics.MeanAbsoluteError(name="mae"),
            keras.metrics.RootMeanSquaredError(name="rmse"),
        ]
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=metrics)


def serving_function(model, specs, target):
    """The ``serving_default`` function: raw features by name -> {"predictions": ...}."""
    import tensorflow as tf

    from components.train_model._data import DTYPES

    signature = {
        s.name: tf.TensorSpec([None], tf.dtypes.as_dtype(DTYPES[s.kind]), name=s.name) for s in specs
    }

    def serve(features):
        predictions = tf.cast(model(features, training=False), tf.float32)
        if target.task != "multiclass":
            predictions = tf.squeeze(predictions, axis=-1)
        return {model_io.OUTPUT_KEY: predictions}

    return serve, signature


def export(model, specs, target, path: str) -> None:
    """Writes the SavedModel (TF-Serving version folder ``path``) with ``serving_default``."""
    import keras

    serve, signature = serving_function(model, specs, target)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name=model_io.SIGNATURE, fn=serve, input_signature=[signature])
    archive.write_out(path, verbose=False)
    logger.info("exported SavedModel with signature %r to %s", model_io.SIGNATURE, path)


def summary_line(model) -> str:
    return f"{model.name}: {model.count_params():,} parameters, {len(model.layers)} layers"
