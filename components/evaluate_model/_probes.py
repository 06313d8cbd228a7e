"""Probes that call the model itself: serving latency and robustness to input noise."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from components import model_io
from components.evaluate_model._metrics import predicted_classes

_WARMUP_CALLS = 3


def latency_p95_ms(loaded, frame: pd.DataFrame, calls: int) -> float:
    """p95 wall time (ms) of one ``serving_default`` call on a single example.

    Inputs are built before timing (one row each, cycling through ``frame``), so the figure is
    the model's own serving cost, as TF Serving pays it per single-example request.
    """
    signature = loaded.signatures[model_io.SIGNATURE]
    inputs = model_io.serving_inputs(loaded)
    rows = [
        model_io.to_tensors(frame.iloc[[i % len(frame)]], inputs)
        for i in range(min(calls, len(frame)))
    ]
    for i in range(_WARMUP_CALLS):  # the first calls trace and optimise the graph
        _call(signature, rows[i % len(rows)])
    times = []
    for i in range(calls):
        start = time.perf_counter()
        _call(signature, rows[i % len(rows)])
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.percentile(times, 95))


def _call(signature, tensors) -> None:
    signature(**tensors)[model_io.OUTPUT_KEY].numpy()  # .numpy() waits for the result


def noisy_copy(
    frame: pd.DataFrame, loaded, noise: float, seed: int = 0
) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` with Gaussian noise (``noise`` x the column's std) on the float features.

    Integer inputs are integer-coded categories in the serving contract, so only float32
    inputs are perturbed; missing values stay missing.
    """
    rng = np.random.default_rng(seed)
    noisy = frame.copy()
    perturbed = []
    for name, dtype in model_io.serving_inputs(loaded).items():
        if dtype.name != "float32":
            continue
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
        std = float(np.nanstd(values)) if np.isfinite(values).any() else 0.0
        if std <= 0:
            continue
        noisy[name] = values + rng.normal(0.0, noise * std, len(values))
        perturbed.append(name)
    return noisy, perturbed


def agreement(
    task: str, clean: np.ndarray, noisy: np.ndarray, tolerance: float
) -> float:
    """Classification: share of unchanged predicted classes. Regression: share of predictions
    whose change relative to the prediction (or to the predictions' spread, for values near
    zero) is at most ``tolerance``."""
    if task == "regression":
        scale = np.maximum(np.abs(clean), max(float(np.std(clean)), 1e-12))
        return float(np.mean(np.abs(noisy - clean) / scale <= tolerance))
    return float(np.mean(predicted_classes(task, clean) == predicted_classes(task, noisy)))


def spread(task: str, predictions: np.ndarray, y: np.ndarray) -> float:
    """How much predictions vary: std of the probabilities (mean over classes for multiclass);
    for regression, std of the predictions relative to the label's std (scale-free)."""
    if task == "multiclass":
        return float(np.mean(np.std(predictions, axis=0)))
    std = float(np.std(predictions))
    if task == "regression":
        label_std = float(np.std(y))
        return std / label_std if label_std > 0 else std
    return std
