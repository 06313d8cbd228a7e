"""The Markdown report: the gate's checks, then candidate and baseline side by side."""

from __future__ import annotations

import math

from components.evaluate_model._metrics import higher_is_better
from components.verdict import Verdict


def markdown(verdict: Verdict, candidate: dict, baseline: dict | None, slices: dict) -> str:
    parts = [verdict.to_markdown(title="Model evaluation: model-is-blessed")]
    parts += ["", "## Candidate vs baseline", ""]
    parts += ["| metric | candidate | baseline | delta | better |", "|---|---|---|---|---|"]
    for metric, value in candidate.items():
        base = (baseline or {}).get(metric)
        delta = value - base if _finite(value) and _finite(base) else None
        parts.append(
            f"| {metric} | {_fmt(value)} | {_fmt(base) if baseline else 'n/a'} | "
            f"{_fmt(delta, signed=True)} | {'higher' if higher_is_better(metric) else 'lower'} |"
        )
    if baseline is None:
        parts += ["", "_No baseline model: the candidate is judged on absolute checks only._"]
    for column, entries in slices.items():
        if not entries:
            continue
        names = [k for k in entries[0] if k not in ("slice", "column", "value", "rows")]
        parts += ["", f"## Slices by `{column}`", ""]
        parts.append("| slice | rows | " + " | ".join(names) + " |")
        parts.append("|---|---|" + "---|" * len(names))
        for entry in entries:
            cells = [str(entry["value"]), str(entry["rows"])] + [_fmt(entry[n]) for n in names]
            parts.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(parts) + "\n"


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _fmt(value, signed: bool = False) -> str:
    if not _finite(value):
        return "" if value is None else "undefined"
    return f"{value:+.4f}" if signed else f"{value:.4f}"
