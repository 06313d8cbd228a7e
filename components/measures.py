"""Measurements on served predictions, as plain arrays: prediction drift (PSI), live metrics
on labelled rows, and confidence-based performance estimation (CBPE) before labels arrive.
Shared by monitor_model and deploy_model's canary judge.

numpy and scikit-learn only. Predictions follow the serving contract: binary -> P(class 1),
multiclass -> class probabilities, regression -> a value.
"""

from __future__ import annotations

import math

import numpy as np

PSI_BINS = 10
_PSI_FLOOR = 1e-4  # an empty bin would make PSI infinite; this is "almost never seen"
BOOTSTRAP_SAMPLES = 200
INTERVAL = (2.5, 97.5)  # a 95 % bootstrap interval
HIGHER_IS_BETTER = {"roc_auc": True, "accuracy": True, "rmse": False}
LIVE_METRICS = {"binary": ("roc_auc", "accuracy"), "multiclass": ("accuracy",), "regression": ("rmse",)}
"""What live performance is judged on, per task: the task's primary metric (as evaluate_model's
gate) and, for binary classifiers, accuracy as well."""


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> tuple[float, list[float]]:
    """Population stability index of ``current`` vs ``reference`` over ``bins`` quantile bins
    of the reference (so each bin holds about 1/bins of it); returns (psi, bin edges)."""
    reference = np.asarray(reference, dtype=np.float64)
    current = np.asarray(current, dtype=np.float64)
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    ref = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1)
    cur = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1)
    return _psi(ref, cur), [float(e) for e in edges]


def psi_classes(reference: np.ndarray, current: np.ndarray, n_classes: int) -> float:
    """PSI of predicted-class shares (class indices 0..n_classes-1)."""
    return _psi(np.bincount(reference, minlength=n_classes), np.bincount(current, minlength=n_classes))


def class_indices(values, classes: list) -> np.ndarray:
    """Index of each value in ``classes``; 1, 1.0, "1" and True are one class (KFP and CSV
    spell classes differently); -1 for a value that is not a class."""
    from components.model_io import label_key

    lookup = {label_key(c): i for i, c in enumerate(classes)}
    return np.array([lookup.get(label_key(v), -1) for v in values], dtype=np.int64)


def encode_labels(values, task: str, classes: list | None) -> np.ndarray:
    """Labels as the predictions are laid out: class indices (classifiers), floats (regression).

    Raises:
        ValueError: a label that is not among ``classes``.
    """
    if task == "regression":
        try:
            return np.asarray(list(values), dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"regression labels must be numbers: {exc}") from exc
    encoded = class_indices(values, classes or [0, 1])
    if (encoded < 0).any():
        unknown = sorted({str(v) for v, e in zip(values, encoded, strict=True) if e < 0})[:5]
        raise ValueError(f"labels {unknown} are not among the model's classes {classes}")
    return encoded


def _psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    ref = np.maximum(ref_counts / max(ref_counts.sum(), 1), _PSI_FLOOR)
    cur = np.maximum(cur_counts / max(cur_counts.sum(), 1), _PSI_FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def live(task: str, y: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """The task's LIVE_METRICS on labelled rows (as evaluate_model computes them: threshold
    0.5 for binary accuracy); NaN where undefined (ROC AUC with one class)."""
    from sklearn import metrics as skm

    if task == "regression":
        return {"rmse": float(np.sqrt(np.mean((predictions - y) ** 2)))}
    if task == "multiclass":
        return {"accuracy": float(np.mean(np.argmax(predictions, axis=1) == y))}
    p = np.clip(predictions, 0.0, 1.0)
    auc = float(skm.roc_auc_score(y, p)) if len(np.unique(y)) == 2 else math.nan
    return {"roc_auc": auc, "accuracy": float(np.mean((p >= 0.5).astype(int) == y))}


def reference_metrics(task: str, y: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """LIVE_METRICS on the evaluation-time predictions (when the blessing holds none).
    Multiclass references hold the predicted class only, so ``predictions`` are indices."""
    if task == "multiclass":
        return {"accuracy": float(np.mean(predictions == y))}
    return live(task, y, predictions)


def drop(metric: str, registered: float, value: float) -> float:
    """How much worse ``value`` is than ``registered``: absolute for scores, relative for rmse."""
    if HIGHER_IS_BETTER[metric]:
        return registered - value
    return (value - registered) / abs(registered) if registered else math.inf * (value > registered)


def bound(metric: str, registered: float, max_drop: float) -> float:
    """The worst value still accepted."""
    if HIGHER_IS_BETTER[metric]:
        return registered - max_drop
    return registered * (1 + max_drop)


# --- Confidence-based performance estimation (CBPE) ---------------------------------------
#
# As NannyML's CBPE: calibrate the model's scores on reference data with labels (the
# evaluation predictions stored at registration), then read the expected confusion matrix of
# unlabelled production rows off the calibrated probabilities. Valid under covariate shift
# (inputs move, P(label | inputs) does not); a change of concept needs labels to be seen.


def calibrator(scores: np.ndarray, outcomes: np.ndarray):
    """Isotonic map from a score to the probability of the outcome, fit on reference rows."""
    from sklearn.isotonic import IsotonicRegression

    return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, outcomes)


def expected_accuracy(p1: np.ndarray, calibrated: np.ndarray) -> float:
    """Binary: the expected share of correct answers at threshold 0.5."""
    return float(np.mean(np.where(p1 >= 0.5, calibrated, 1.0 - calibrated)))


def expected_roc_auc(p1: np.ndarray, calibrated: np.ndarray) -> float:
    """Binary: the ROC AUC of the expected confusion matrices at every threshold of ``p1``."""
    order = np.argsort(-p1, kind="stable")
    scores, positive = p1[order], calibrated[order]
    tp, fp = np.cumsum(positive), np.cumsum(1.0 - positive)
    if tp[-1] <= 0 or fp[-1] <= 0:
        return math.nan
    last_of_tie = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1]
    tpr = np.r_[0.0, tp[last_of_tie] / tp[-1]]
    fpr = np.r_[0.0, fp[last_of_tie] / fp[-1]]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoids


def cbpe(
    task: str, reference_scores: np.ndarray, reference_outcomes: np.ndarray, current: np.ndarray,
    *, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Estimated metrics of unlabelled rows: ``{metric: {"value", "low", "high"}}`` with a 95 %
    bootstrap interval over the window's rows.

    Binary: ``reference_scores`` are P(class 1) on the evaluation rows, ``reference_outcomes``
    their labels (0/1), ``current`` the window's P(class 1); estimates roc_auc and accuracy.
    Multiclass: scores are the predicted class's probability, outcomes whether that class was
    right, ``current`` the window's probability rows; estimates accuracy.
    """
    fitted = calibrator(reference_scores, reference_outcomes)
    if task == "binary":
        p1 = np.clip(np.asarray(current, dtype=np.float64), 0.0, 1.0)
        calibrated = fitted.predict(p1)

        def estimate(index):
            return {
                "roc_auc": expected_roc_auc(p1[index], calibrated[index]),
                "accuracy": expected_accuracy(p1[index], calibrated[index]),
            }
    elif task == "multiclass":
        calibrated = fitted.predict(np.max(current, axis=1))

        def estimate(index):
            return {"accuracy": float(np.mean(calibrated[index]))}
    else:
        raise ValueError(f"performance cannot be estimated without labels for a {task} model")

    n = len(calibrated)
    point = estimate(np.arange(n))
    rng = np.random.default_rng(seed)
    draws = [estimate(rng.integers(0, n, n)) for _ in range(samples)]
    out = {}
    for metric, value in point.items():
        values = np.array([d[metric] for d in draws], dtype=np.float64)
        values = values[np.isfinite(values)]
        low, high = (np.percentile(values, INTERVAL) if len(values) else (math.nan, math.nan))
        out[metric] = {"value": value, "low": float(low), "high": float(high)}
    return out
