"""The model gate's checks: each adds one ``Check`` with value, threshold, outcome and a sentence."""

from __future__ import annotations

import math

from components.evaluate_model._metrics import higher_is_better
from components.verdict import FAIL, PASS, WARN, Verdict


def absolute(verdict: Verdict, metric: str, value: float, bound: float) -> None:
    higher = higher_is_better(metric)
    if value is None or not math.isfinite(value):
        verdict.add(
            "absolute", metric, FAIL,
            f"{metric} could not be computed on the evaluation data (e.g. only one class "
            f"present), so the bound {bound:.4g} cannot be shown to hold.",
            None, bound, "absolute",
        )
        return
    ok = value >= bound if higher else value <= bound
    word = "at least" if higher else "at most"
    if ok:
        reason = f"{metric} is {value:.4g}, {word} the required {bound:.4g}."
    else:
        side = "below the required minimum" if higher else "above the allowed maximum"
        reason = f"{metric} is {value:.4g}, {side} {bound:.4g}."
    verdict.add("absolute", metric, PASS if ok else FAIL, reason, value, bound, "absolute")


def change(
    verdict: Verdict, metric: str, candidate: float, baseline: float, max_degradation: float
) -> None:
    """Fails when the candidate is worse than the baseline by more than ``max_degradation``."""
    higher = higher_is_better(metric)
    if not (_finite(candidate) and _finite(baseline)):
        verdict.add(
            "change", metric, FAIL,
            f"{metric} could not be compared: candidate {_fmt(candidate)}, baseline "
            f"{_fmt(baseline)} (undefined on this evaluation data).",
            None, max_degradation, "change",
        )
        return
    degradation = (baseline - candidate) if higher else (candidate - baseline)
    better = "higher" if higher else "lower"
    both = f"candidate {candidate:.4g} vs baseline {baseline:.4g}"
    if degradation <= max_degradation + 1e-12:
        if degradation <= 0:
            reason = f"{metric} did not degrade: {both} ({better} is better)."
        else:
            reason = (
                f"{metric} degraded by {degradation:.4g} ({both}), within the allowed "
                f"{max_degradation:.4g}."
            )
        status = PASS
    else:
        reason = (
            f"{metric} degraded by {degradation:.4g} ({both}; {better} is better), more than "
            f"the allowed {max_degradation:.4g}."
        )
        status = FAIL
    verdict.add("change", metric, status, reason, degradation, max_degradation, "change")


def degenerate(
    verdict: Verdict, task: str, std: float, min_std: float, predicted: int, present: int
) -> None:
    """Near-constant predictions, or a classifier that predicts one class where labels have more."""
    if std < min_std:
        verdict.add(
            "degenerate", "predictions", FAIL,
            f"predictions are near-constant: their standard deviation {std:.3g} is below "
            f"{min_std:.3g}; the model ignores its inputs.",
            std, min_std, "degenerate",
        )
    elif task != "regression" and predicted < 2 <= present:
        verdict.add(
            "degenerate", "predictions", FAIL,
            f"the model predicts a single class for every example while the evaluation data "
            f"has {present} classes.",
            std, min_std, "degenerate",
        )
    else:
        detail = f", {predicted} classes predicted" if task != "regression" else ""
        verdict.add(
            "degenerate", "predictions", PASS,
            f"predictions vary (standard deviation {std:.3g} >= {min_std:.3g}{detail}).",
            std, min_std, "degenerate",
        )


def latency(verdict: Verdict, p95_ms: float, max_ms: float, calls: int) -> None:
    ok = p95_ms <= max_ms
    verdict.add(
        "latency", "serving_default", PASS if ok else FAIL,
        f"p95 single-example latency of the serving signature is {p95_ms:.3g} ms over "
        f"{calls} calls, {'within' if ok else 'above'} the limit of {max_ms:.4g} ms.",
        p95_ms, max_ms, "latency",
    )


def robustness(
    verdict: Verdict, task: str, agreement: float, floor: float, noise: float, tolerance: float
) -> None:
    ok = agreement >= floor
    if task == "regression":
        what = f"predictions that moved by at most {tolerance:.3g} (relative)"
    else:
        what = "examples whose predicted class did not change"
    verdict.add(
        "robustness", "gaussian_noise", PASS if ok else FAIL,
        f"with Gaussian noise of {noise:.3g} x each numeric feature's standard deviation, "
        f"{agreement:.1%} of {what}; the floor is {floor:.1%}.",
        agreement, floor, "robustness",
    )


def fairness(verdict: Verdict, column: str, metric: str, slices: list[dict], max_gap: float) -> None:
    """The largest gap in ``metric`` between the slices of ``column``."""
    scored = [s for s in slices if _finite(s.get(metric))]
    if len(scored) < 2:
        verdict.add(
            "fairness", column, WARN,
            f"fewer than two slices of {column} are large enough to compare {metric}.",
            None, max_gap, "fairness",
        )
        return
    best = max(scored, key=lambda s: s[metric])
    worst = min(scored, key=lambda s: s[metric])
    gap = best[metric] - worst[metric]
    ok = gap <= max_gap
    verdict.add(
        "fairness", column, PASS if ok else FAIL,
        f"{metric} ranges from {worst[metric]:.4g} ({worst['slice']}, {worst['rows']} rows) to "
        f"{best[metric]:.4g} ({best['slice']}, {best['rows']} rows): a gap of {gap:.4g}, "
        f"{'within' if ok else 'above'} the limit {max_gap:.4g}.",
        gap, max_gap, "fairness",
    )


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _fmt(value) -> str:
    return f"{value:.4g}" if _finite(value) else "undefined"
