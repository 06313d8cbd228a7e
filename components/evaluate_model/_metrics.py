"""Metrics of predictions against labels: pure numpy / scikit-learn, no TensorFlow.

Predictions follow the serving contract: binary -> P(class 1) shape [n]; multiclass ->
probabilities [n, n_classes] in ``classes`` order; regression -> values [n]. Labels are
class indices (classification) or floats (regression), see ``encode_labels``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from components import model_io

TASKS = ("binary", "multiclass", "regression")

METRICS = {
    "binary": (
        "roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "log_loss", "brier", "ece",
    ),
    "multiclass": ("accuracy", "macro_f1", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}
HIGHER_IS_BETTER = frozenset(
    {"roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "macro_f1", "r2"}
)
PRIMARY = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}
"""The metric a candidate may never be clearly worse than production on, unless the user says
so by naming it in change_thresholds (see ``change_limits``)."""
DEFAULT_MAX_DROP = 0.01
"""Allowed degradation of the primary metric: absolute for scores in [0, 1] (ROC AUC,
accuracy), relative to production's value for RMSE (its scale is the label's)."""
ALIASES = {
    "auc": "roc_auc",
    "auroc": "roc_auc",
    "auc_pr": "pr_auc",
    "average_precision": "pr_auc",
    "brier_score": "brier",
    "calibration_error": "ece",
    "expected_calibration_error": "ece",
    "f1_macro": "macro_f1",
    "logloss": "log_loss",
}
_EPS = 1e-7
_ECE_BINS = 10
_MAX_ROC_POINTS = 200


def change_limits(task: str, change_thresholds: dict, baseline: dict) -> dict:
    """The allowed degradation of each metric vs production: the user's, plus the task's
    primary metric at DEFAULT_MAX_DROP when the user did not name it."""
    limits = dict(change_thresholds)
    primary = PRIMARY[task]
    if primary not in limits:
        scale = abs(baseline[primary]) if primary in ("rmse",) else 1.0
        limits[primary] = DEFAULT_MAX_DROP * scale
    return limits


def canonical(metric: str) -> str:
    """The canonical metric name (``auc`` -> ``roc_auc``)."""
    name = str(metric).strip().lower()
    return ALIASES.get(name, name)


def higher_is_better(metric: str) -> bool:
    return canonical(metric) in HIGHER_IS_BETTER


def encode_labels(labels: pd.Series, task: str, classes: list | None) -> np.ndarray:
    """Class indices in ``classes`` order (classification) or floats (regression).

    Raises:
        ValueError: naming label values that are not in ``classes`` or are not numeric.
    """
    if task == "regression":
        values = pd.to_numeric(labels, errors="coerce")
        bad = labels[values.isna()]
        if len(bad):
            raise ValueError(
                f"regression label has non-numeric values, e.g. {sorted(map(str, bad.unique()))[:5]}"
            )
        return values.to_numpy(dtype=np.float64)
    if not classes:
        classes = [0, 1] if task == "binary" else sorted(labels.unique().tolist())
    lookup: dict = {}
    for index, cls in enumerate(classes):
        lookup[model_io.label_key(cls)] = index
    encoded = labels.map(lambda v: lookup.get(model_io.label_key(v), -1)).to_numpy(dtype=np.int64)
    unknown = labels[encoded < 0]
    if len(unknown):
        raise ValueError(
            f"label values {sorted(map(str, unknown.unique()))[:10]} are not among the model's "
            f"classes {list(map(str, classes))}"
        )
    return encoded


def display(value) -> str:
    """A class as people read it: 1.0 (KFP turns list items into floats) shows as "1"."""
    return model_io.label_key(value)


def predicted_classes(task: str, predictions: np.ndarray) -> np.ndarray:
    if task == "binary":
        return (predictions >= 0.5).astype(np.int64)
    return np.argmax(predictions, axis=1).astype(np.int64)


def check_shape(task: str, predictions: np.ndarray, n_rows: int, n_classes: int) -> np.ndarray:
    """``predictions`` as float64 in the contract's shape for ``task``.

    Raises:
        ValueError: describing the shape that was expected and the one received.
    """
    predictions = np.asarray(predictions, dtype=np.float64)
    if task == "multiclass":
        if predictions.ndim != 2 or predictions.shape != (n_rows, n_classes):
            raise ValueError(
                f"a multiclass model must return probabilities of shape [{n_rows}, {n_classes}], "
                f"got {list(predictions.shape)}"
            )
        return predictions
    if predictions.ndim == 2 and predictions.shape[1] == 1:
        predictions = predictions[:, 0]
    if predictions.shape != (n_rows,):
        raise ValueError(
            f"a {task} model must return one value per example (shape [{n_rows}]), "
            f"got {list(predictions.shape)}"
        )
    return predictions


def compute(task: str, y: np.ndarray, predictions: np.ndarray, n_classes: int = 2) -> dict:
    """All metrics of ``task``; undefined ones (e.g. AUC on one class) are NaN."""
    from sklearn import metrics as skm

    if len(y) == 0:
        raise ValueError("cannot compute metrics on zero examples")
    if task == "regression":
        error = predictions - y
        return {
            "rmse": float(np.sqrt(np.mean(error**2))),
            "mae": float(np.mean(np.abs(error))),
            "r2": float(skm.r2_score(y, predictions)) if len(y) > 1 else math.nan,
        }
    if task == "multiclass":
        probs = np.clip(predictions, _EPS, 1.0)
        probs = probs / probs.sum(axis=1, keepdims=True)
        pred = predicted_classes(task, predictions)
        labels = list(range(n_classes))
        return {
            "accuracy": float(np.mean(pred == y)),
            "macro_f1": float(
                skm.f1_score(y, pred, labels=labels, average="macro", zero_division=0)
            ),
            "log_loss": float(skm.log_loss(y, probs, labels=labels)),
        }
    p = np.clip(predictions, 0.0, 1.0)
    pred = predicted_classes(task, p)
    both = len(np.unique(y)) == 2
    return {
        "roc_auc": float(skm.roc_auc_score(y, p)) if both else math.nan,
        "pr_auc": float(skm.average_precision_score(y, p)) if both else math.nan,
        "accuracy": float(np.mean(pred == y)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
        "log_loss": float(skm.log_loss(y, np.clip(p, _EPS, 1 - _EPS), labels=[0, 1])),
        "brier": float(np.mean((p - y) ** 2)),
        "ece": expected_calibration_error(y, p),
    }


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = _ECE_BINS) -> float:
    """Weighted mean gap between predicted probability and observed rate, equal-width bins."""
    return sum(n * abs(rate - mean) for mean, rate, n in reliability(y, p, bins)) / len(y)


def reliability(y: np.ndarray, p: np.ndarray, bins: int = _ECE_BINS) -> list[tuple[float, float, int]]:
    """(mean predicted probability, observed rate of class 1, rows) of every non-empty bin of
    ``bins`` equal-width probability bins: the calibration curve, and what ECE averages."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=True), 0, bins - 1)
    out = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            out.append((float(np.mean(p[mask])), float(np.mean(y[mask])), int(mask.sum())))
    return out


def roc_curve(y: np.ndarray, p: np.ndarray, max_points: int = _MAX_ROC_POINTS) -> dict | None:
    """ROC points for ``ClassificationMetrics.log_roc_curve``: at most ``max_points``, finite.

    scikit-learn's first threshold is +inf (nothing predicted positive); KFP needs finite
    numbers, so it becomes 1.0 (no probability is above it). None when ``y`` has one class.
    """
    from sklearn import metrics as skm

    if len(np.unique(y)) < 2:
        return None
    fpr, tpr, thresholds = skm.roc_curve(y, np.clip(p, 0.0, 1.0), drop_intermediate=True)
    thresholds = np.where(np.isfinite(thresholds), thresholds, 1.0)
    thresholds = np.clip(thresholds, 0.0, 1.0)
    if len(fpr) > max_points:
        keep = np.unique(np.round(np.linspace(0, len(fpr) - 1, max_points)).astype(int))
        fpr, tpr, thresholds = fpr[keep], tpr[keep], thresholds[keep]
    return {
        "fpr": [float(v) for v in fpr],
        "tpr": [float(v) for v in tpr],
        "thresholds": [float(v) for v in thresholds],
    }


def confusion_matrix(
    task: str, y: np.ndarray, predictions: np.ndarray, classes: list
) -> dict:
    """Rows are true classes, columns predicted classes, in ``classes`` order."""
    from sklearn import metrics as skm

    labels = list(range(len(classes)))
    matrix = skm.confusion_matrix(y, predicted_classes(task, predictions), labels=labels)
    return {
        "categories": [display(c) for c in classes],
        "matrix": [[int(v) for v in row] for row in matrix],
    }


def slices(
    frame: pd.DataFrame,
    column: str,
    task: str,
    y: np.ndarray,
    predictions: np.ndarray,
    n_classes: int,
    *,
    quantiles: int = 4,
    max_values: int = 20,
) -> list[dict]:
    """Metrics per value of ``column`` (numeric columns with many values: per quantile bucket).

    Returns one entry per slice: ``{"slice": "plan=basic", "rows": n, <metrics>}``; missing
    values form their own slice. Categorical columns keep their ``max_values`` most frequent
    values; rarer values are not sliced.
    """
    values = frame[column]
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values.nunique(dropna=True) > max(quantiles, 10):
        buckets = pd.qcut(values, q=quantiles, duplicates="drop")
        keys = buckets.astype(str).where(buckets.notna(), "missing")
        order = [str(c) for c in buckets.cat.categories] + ["missing"]
    else:
        keys = values.astype(str).where(values.notna(), "missing")
        order = keys.value_counts().index[:max_values].tolist()
    out = []
    for key in order:
        mask = (keys == key).to_numpy()
        if not mask.any():
            continue
        entry = {"slice": f"{column}={key}", "column": column, "value": key, "rows": int(mask.sum())}
        entry.update(compute(task, y[mask], predictions[mask], n_classes))
        out.append(entry)
    return out


def clean(value):
    """NaN/inf become None so the JSON report stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
