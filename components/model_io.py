"""Reading data and using trained models the same way in every component.

The training component (``train_model``) owns this module; evaluation, deployment and the local
model server use it, so that a model is always fed exactly as its serving signature expects.
Runs in the runtime image; never imports kfp. TensorFlow is imported inside the functions that
need it, so ``read_frame`` stays cheap.

The model contract (``train_model`` writes it):

- ``<model_dir>/<version>/saved_model.pb``: TF-Serving layout, numeric version folders.
- Signature ``serving_default``: one input per feature, named by the feature, shape ``[None]``;
  dtype float32 ("float"), int64 ("int", integer-coded categoricals) or string ("string").
  Missing values: NaN for floats, ``""`` for strings, ``-1`` for ints (``MISSING_INT``).
- Output ``{"predictions": ...}``: binary -> P(class 1) ``[None]``; multiclass -> probabilities
  ``[None, n_classes]`` in the metadata's ``classes`` order; regression -> value ``[None]``.

Public API (stable): ``read_frame``, ``load``, ``predict``; helpers ``version_dir``,
``serving_inputs``, ``to_tensors``, ``feature_arrays``, ``column_values``.
"""

from __future__ import annotations

import logging
import os
import weakref
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

SIGNATURE = "serving_default"
OUTPUT_KEY = "predictions"
MISSING_INT = -1
"""What a missing integer-coded category becomes (int64 has no NaN); training does the same."""


MAX_AUTO_CLASSES = 10
"""An integer label with at most this many distinct values is a class label (task "auto")."""


def infer_task(labels: pd.Series) -> str:
    """The task a label calls for (missing values dropped first), the one rule training and
    evaluation share: strings/booleans -> binary (2 values) or multiclass; integers -> binary
    (2 values), multiclass (at most MAX_AUTO_CLASSES values) or regression; other numbers ->
    regression."""
    labels = labels.dropna()
    numeric = pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels)
    distinct = labels.drop_duplicates()
    integral = numeric and bool(np.all(np.mod(labels.to_numpy(np.float64), 1) == 0))
    if numeric and not integral:
        return "regression"
    if len(distinct) == 2:
        return "binary"
    return "multiclass" if not numeric or len(distinct) <= MAX_AUTO_CLASSES else "regression"


def label_key(value) -> str:
    """One spelling for equal class labels: 1, 1.0, "1" and True all become "1" (KFP turns list
    items into floats; CSV, Parquet and JSON spell classes differently)."""
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(number)) if number.is_integer() else repr(number)


class ModelNotFoundError(FileNotFoundError):
    """The model folder holds no numeric version folder with a saved_model.pb."""


class FeatureMismatchError(ValueError):
    """The frame lacks features the model's serving signature requires."""


def read_frame(uri: str) -> pd.DataFrame:
    """Reads a CSV or Parquet file into a DataFrame, typed exactly as compute_statistics reads
    it (``components.tfdv_io``), so the data gate, training and evaluation see the same columns.

    Args:
        uri: Any location ``components.uri`` opens (local, gs://, /gcs/, s3://, minio://).
            A local folder is read as partitioned Parquet. A file without an extension is
            sniffed (Parquet magic bytes, else CSV).

    Raises:
        ValueError: no URI given.
        tfdv_io.DataReadError: the file is missing, empty, or not CSV/Parquet (a ValueError).
    """
    from components import tfdv_io, uris

    if not uri:
        raise ValueError("no data URI given")
    local = uris.local_path(uri)
    if local is not None and os.path.isdir(local):
        return pd.read_parquet(local)
    return tfdv_io.read_table(tfdv_io.locate_data(uri), allow_empty=True).to_pandas()


def version_dir(model_dir: str) -> str:
    """The highest numeric version folder under ``model_dir`` (``model_dir`` itself if it
    already is a SavedModel folder).

    Raises:
        ModelNotFoundError: naming the folder, when there is no version folder.
    """
    import tensorflow as tf

    model_dir = str(model_dir).rstrip("/")
    if tf.io.gfile.exists(f"{model_dir}/saved_model.pb"):
        return model_dir
    try:
        entries = tf.io.gfile.listdir(model_dir)
    except Exception as exc:  # NotFoundError and friends
        raise ModelNotFoundError(f"model folder {model_dir!r} cannot be listed: {exc}") from exc
    versions = sorted(
        int(name.strip("/"))
        for name in entries
        if name.strip("/").isdigit() and tf.io.gfile.exists(f"{model_dir}/{name.strip('/')}/saved_model.pb")
    )
    if not versions:
        raise ModelNotFoundError(
            f"{model_dir!r} holds no <version>/saved_model.pb (TF-Serving layout expected)"
        )
    return f"{model_dir}/{versions[-1]}"


def load(model_dir: str):
    """Loads the highest version of a model in the TF-Serving layout with plain TensorFlow.

    Returns the object of ``tf.saved_model.load``; its ``signatures["serving_default"]`` is
    the serving function. Pass it to ``predict`` to avoid reloading.
    """
    import tensorflow as tf

    path = version_dir(model_dir)
    logger.info("loading SavedModel from %s", path)
    return tf.saved_model.load(path)


def serving_inputs(loaded) -> dict[str, Any]:
    """``{feature: tf.DType}`` of the serving signature's inputs."""
    signature = loaded.signatures[SIGNATURE]
    _, kwargs = signature.structured_input_signature
    return {name: spec.dtype for name, spec in kwargs.items()}


def to_tensors(data, inputs: dict[str, Any]) -> dict[str, Any]:
    """Builds the signature's input tensors from raw feature values.

    Args:
        data: A DataFrame, or ``{feature: values}`` (lists or arrays, e.g. a request's
            columns); columns the signature does not name are ignored.
        inputs: ``serving_inputs`` of the model.

    Missing values become NaN (float), ``""`` (string) or ``MISSING_INT`` (int).

    Raises:
        FeatureMismatchError: naming the features the data lacks.
    """
    import tensorflow as tf

    arrays = feature_arrays(data, inputs)
    # Made on the host CPU by name: with tensors made outside any device scope (no device of
    # their own) the signature call measured 0.1-0.2 ms slower, of a one-row prediction's
    # 0.8 ms (bench/results/serving.md). A GPU model copies them over inside the call anyway.
    with tf.device("/CPU:0"):
        return {name: tf.constant(values) for name, values in arrays.items()}


def feature_arrays(data, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
    """``{feature: numpy array}`` as the signature expects them (see ``to_tensors``).

    Raises:
        FeatureMismatchError: naming the features the data lacks.
    """
    available = data.columns if isinstance(data, pd.DataFrame) else data.keys()
    missing = sorted(set(inputs) - set(available))
    if missing:
        raise FeatureMismatchError(
            f"the model needs features {missing} which the data does not have (columns: {list(available)})"
        )
    return {name: column_values(data[name], dtype.name) for name, dtype in inputs.items()}


_PLAIN = {"float32": (float, int), "int64": (int,), "string": (str,)}
"""Python types a list of values may hold (besides None) to skip pandas in ``column_values``."""

_EXACT_INT = 2**53  # pandas reads ints mixed with None as float64, exact only below this


def column_values(column, dtype: str) -> np.ndarray:
    """Raw values as the numpy array the signature expects (``dtype``: float32|int64|string).

    ``column`` is a pandas Series, or a list/array (a request's values). A list of plain JSON
    values (numbers, strings, None) is converted without pandas, which costs more than the
    model for a few rows; anything else goes through the pandas conversion, and both give
    the same array. An array already of ``dtype`` is returned as it is.
    """
    if not isinstance(column, pd.Series):
        if isinstance(column, np.ndarray) and column.dtype == _NUMPY.get(dtype):
            return column
        plain = _plain_values(column, dtype)
        if plain is not None:
            return plain
        column = pd.Series(list(column))
    if dtype == "float32":
        return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float32, na_value=np.nan)
    if dtype == "int64":
        values = pd.to_numeric(column, errors="coerce")
        return values.fillna(MISSING_INT).to_numpy().astype(np.int64)
    if dtype == "string":
        return np.array(["" if _is_missing(v) else _as_text(v) for v in column.tolist()], dtype=object)
    raise ValueError(f"unsupported signature dtype {dtype!r}; expected float32, int64 or string")


_NUMPY = {"float32": np.float32, "int64": np.int64}


def _plain_values(values, dtype: str) -> np.ndarray | None:
    """``values`` converted without pandas, or None when they are not all plain (see
    ``_PLAIN``; booleans are not plain: pandas and numpy read them differently)."""
    types = _PLAIN.get(dtype)
    if types is None or not all(v is None or type(v) in types for v in values):
        return None
    if dtype == "float32":
        return np.array(values, dtype=np.float32)  # None -> NaN, as pandas does
    if dtype == "int64":
        if not all(v is None or -_EXACT_INT < v < _EXACT_INT for v in values):
            return None
        return np.array([MISSING_INT if v is None else v for v in values], dtype=np.int64)
    return np.array(["" if v is None else v for v in values], dtype=object)


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


def _as_text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a string column pandas read as float: 3.0 -> "3"
    return str(value)


def predict(model, df, batch_size: int = 8192) -> np.ndarray:
    """Predicts from raw feature values through the serving signature.

    Args:
        model: A model folder (TF-Serving layout, or a version folder) or the result of ``load``.
        df: Raw features: a DataFrame by column name, or ``{feature: values}`` (as
            ``to_tensors`` takes them); extra columns are ignored.
        batch_size: Rows per call, to bound memory.

    Returns:
        ``predictions``: shape ``[n]`` (binary P(class 1), regression value) or
        ``[n, n_classes]`` (multiclass probabilities).
    """
    loaded = load(model) if isinstance(model, (str, os.PathLike)) else model
    inputs, call = _signature_call(loaded)
    frame = isinstance(df, pd.DataFrame)
    rows = len(df) if frame else len(next(iter(df.values()), ()))
    if rows == 0:
        raise ValueError("no rows to predict")
    outputs = []
    for start in range(0, rows, batch_size):
        stop = start + batch_size
        chunk = df.iloc[start:stop] if frame else {name: values[start:stop] for name, values in df.items()}
        outputs.append(call(to_tensors(chunk, inputs))[OUTPUT_KEY].numpy())
    return outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=0)


_CALLS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _signature_call(loaded):
    """``(serving_inputs, call)``: ``call(tensors by feature)`` runs the serving signature.

    The signature's keyword call binds the arguments to its flat inputs on every call, about
    0.2 ms, a third of a one-row prediction. The binding is worked out once per loaded model
    here and each call goes to the flat function TensorFlow itself calls after binding
    (``ConcreteFunction._call_flat``); where the signature's flat inputs are not named by
    feature (or a TensorFlow release lacks that method), the keyword call is used.
    """
    try:
        return _CALLS[loaded]
    except (KeyError, TypeError):
        pass
    signature = loaded.signatures[SIGNATURE]
    inputs = serving_inputs(loaded)
    order = [t.name.rsplit(":", 1)[0] for t in signature.inputs[: len(inputs)]]
    if sorted(order) == sorted(inputs) and hasattr(signature, "_call_flat"):
        captured = signature.captured_inputs

        def call(tensors):
            return signature._call_flat([tensors[name] for name in order], captured)
    else:

        def call(tensors):
            return signature(**tensors)

    try:
        _CALLS[loaded] = inputs, call
    except TypeError:  # not weakly referenceable: no cache
        pass
    return inputs, call
