"""From the TFDV schema and the data to typed features and a typed label.

A feature's kind is its serving dtype (see components/model_io.py): "float" (numeric,
normalized), "int" (integer-coded category, IntegerLookup) or "string" (category,
StringLookup). The TFDV schema decides: BYTES -> string; INT with ``int_domain.is_categorical``
-> int; other INT and FLOAT -> float. ``categorical_columns`` turns a numeric feature into an
integer-coded category. Features missing from the schema fall back to the pandas dtype.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from components import model_io

logger = logging.getLogger(__name__)

TASKS = ("auto", "binary", "multiclass", "regression")


class TrainingInputError(ValueError):
    """The data or the column choice cannot train a model (base of the errors below)."""


class LabelNotFoundError(TrainingInputError):
    """The label column is not in the data."""


class FeatureNotFoundError(TrainingInputError):
    """A requested feature column is not in the data."""


class EmptyDataError(TrainingInputError):
    """No rows (or no rows with a label) to train on."""


class SingleClassLabelError(TrainingInputError):
    """The label has a single value: there is nothing to learn."""


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    kind: str  # "float" | "int" | "string"


@dataclass(frozen=True)
class Target:
    """The label: task, classes (classification, sorted; index = model output), and encoding."""

    label: str
    task: str
    classes: tuple = ()

    def encode(self, values: pd.Series) -> np.ndarray:
        """Label values as model targets: float32 [n, 1] (binary, regression) or int32 [n]."""
        if self.task == "regression":
            return pd.to_numeric(values).to_numpy(np.float32).reshape(-1, 1)
        index = {c: i for i, c in enumerate(self.classes)}
        codes = np.array([index[_native(v)] for v in values.tolist()], dtype=np.int32)
        return codes.astype(np.float32).reshape(-1, 1) if self.task == "binary" else codes


def _schema_kind(feature) -> str:
    from tensorflow_metadata.proto.v0 import schema_pb2

    if feature.type == schema_pb2.BYTES:
        return "string"
    if feature.type == schema_pb2.INT and feature.HasField("int_domain"):
        if feature.int_domain.is_categorical:
            return "int"
    return "float"


def _pandas_kind(column: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return "float"
    return "string"


def feature_specs(
    df: pd.DataFrame,
    schema,
    label: str,
    features: list[str] = (),
    exclude_features: list[str] = (),
    categorical_columns: list[str] = (),
    timestamp_column: str = "",
) -> list[FeatureSpec]:
    """Typed features to train on.

    Without ``features``: every schema feature (every column without a schema) except the
    label, ``timestamp_column`` and ``exclude_features``.

    Raises:
        LabelNotFoundError, FeatureNotFoundError, TrainingInputError (no feature left).
    """
    if label not in df.columns:
        raise LabelNotFoundError(f"label column {label!r} is not in the data; columns are {list(df.columns)}")
    in_schema = {f.name: f for f in schema.feature} if schema is not None else {}
    if features:
        names = list(dict.fromkeys(features))
        if label in names:
            raise TrainingInputError(f"the label {label!r} cannot also be a feature")
        missing = [n for n in names if n not in df.columns]
        if missing:
            raise FeatureNotFoundError(
                f"requested features {missing} are not in the data; columns are {list(df.columns)}"
            )
    else:
        candidates = list(in_schema) if in_schema else list(df.columns)
        skipped = {label, timestamp_column, *exclude_features}
        names = [n for n in candidates if n not in skipped and n in df.columns]
        absent = [n for n in candidates if n not in skipped and n not in df.columns]
        if absent:
            raise FeatureNotFoundError(
                f"schema features {absent} are not in the data; pass `features` or "
                f"`exclude_features` to train without them"
            )
    unknown_categoricals = [c for c in categorical_columns if c not in names]
    if unknown_categoricals:
        logger.warning("categorical_columns %s are not features; ignored", unknown_categoricals)
    if not names:
        raise TrainingInputError(f"no features left to train on besides the label {label!r}")

    specs = []
    for name in names:
        kind = _schema_kind(in_schema[name]) if name in in_schema else _pandas_kind(df[name])
        if name not in in_schema and in_schema:
            logger.warning("feature %r is not in the schema; typed %r from the data", name, kind)
        if name in categorical_columns and kind == "float":
            kind = "int"
        specs.append(FeatureSpec(name, kind))
    logger.info("features: %s", ", ".join(f"{s.name}:{s.kind}" for s in specs))
    return specs


def _native(value):
    """A label value as a plain, JSON-friendly Python value (1.0 -> 1, np.str_ -> str)."""
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value


def resolve_target(labels: pd.Series, label: str, task: str = "auto") -> Target:
    """The task and classes of a label (missing label values must be dropped already).

    "auto": ``model_io.infer_task`` (the rule evaluation shares); ``task`` overrides.

    Raises:
        SingleClassLabelError: the label has one distinct value.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    numeric = pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels)
    distinct = labels.drop_duplicates()
    if len(distinct) < 2:
        value = distinct.iloc[0] if len(distinct) else None
        raise SingleClassLabelError(
            f"label {label!r} has a single value ({value!r}) in all {len(labels)} rows: "
            "nothing to learn; check the data extract"
        )
    if task == "auto":
        task = model_io.infer_task(labels)
    if task == "regression":
        if not numeric:
            raise TrainingInputError(f"label {label!r} is not numeric; it cannot be regressed")
        return Target(label, task)
    classes = tuple(sorted({_native(v) for v in distinct.tolist()}, key=lambda v: (str(type(v)), v)))
    if task == "binary" and len(classes) != 2:
        raise TrainingInputError(f"task 'binary' needs exactly 2 label values; {label!r} has {len(classes)}")
    return Target(label, task, classes)
