"""A gate's verdict as data: every check with its value, threshold, outcome and a sentence.

Shared by the data gate (validate_data), the model gate (evaluate_model) and deployment
(deploy_model). A verdict renders to JSON (machine-readable), Markdown (KFP Markdown
artifact, PR comments) and a self-contained HTML page (no scripts, no network).
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from typing import Any

PASS, FAIL, WARN = "pass", "fail", "warn"
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
"""The HTML pages' policy: no scripts, no fonts, no fetches, images only inline."""


@dataclass
class Check:
    """One check. ``status`` is pass, fail or warn (warn never blocks)."""

    name: str  # e.g. "drift", "schema", "auc_min"
    subject: str  # the feature or metric checked ("" for dataset-level checks)
    status: str
    reason: str  # a sentence a person understands
    value: Any = None
    threshold: Any = None
    kind: str = ""  # finer type, e.g. TFDV anomaly type or "absolute"/"change"

    def __post_init__(self):
        if self.status not in (PASS, FAIL, WARN):
            raise ValueError(f"status must be pass, fail or warn, got {self.status!r}")


@dataclass
class Verdict:
    """The outcome of a gate: ``passed`` is False as soon as one check failed."""

    gate: str  # "data-is-valid", "model-is-blessed", "deployment-is-healthy"
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. the first-run policy applied
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    def add(self, *args, **kwargs) -> Check:
        check = Check(*args, **kwargs)
        self.checks.append(check)
        return check

    def summary(self) -> str:
        if self.passed:
            warns = sum(c.status == WARN for c in self.checks)
            return f"{self.gate}: PASSED ({len(self.checks)} checks, {warns} warnings)"
        reasons = "; ".join(
            f"{c.subject + ': ' if c.subject else ''}{c.reason}" for c in self.failures
        )
        return f"{self.gate}: FAILED ({len(self.failures)} of {len(self.checks)} checks): {reasons}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "passed": self.passed,
            "summary": self.summary(),
            "notes": self.notes,
            "checks": [asdict(c) for c in self.checks],
            "details": self.details,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=_plain)

    def to_markdown(self, title: str = "") -> str:
        lines = [f"# {title or self.gate}", "", f"**{self.summary()}**", ""]
        lines += [f"> {note}" for note in self.notes]
        if self.notes:
            lines.append("")
        lines += ["| status | check | subject | value | threshold | reason |", "|---|---|---|---|---|---|"]
        for c in sorted(self.checks, key=_failures_first):
            cells = [c.status.upper(), c.name, c.subject, _fmt(c.value), _fmt(c.threshold), c.reason]
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        return "\n".join(lines) + "\n"

    def to_html(self, title: str = "", figures: str = "", appendix: str = "") -> str:
        """The page: summary and notes, ``figures`` (HTML, e.g. components.svg charts), the
        checks, then ``appendix`` (HTML). CONTENT_SECURITY_POLICY forbids scripts and any
        request, so a browser shows it exactly as written, offline."""
        rows = "\n".join(
            f'<tr class="{c.status}"><td>{c.status.upper()}</td><td>{_e(c.name)}</td>'
            f"<td>{_e(c.subject)}</td><td>{_e(_fmt(c.value))}</td><td>{_e(_fmt(c.threshold))}</td>"
            f"<td>{_e(c.reason)}</td></tr>"
            for c in sorted(self.checks, key=_failures_first)
        )
        notes = "".join(f"<p class=note>{_e(n)}</p>" for n in self.notes)
        state = "passed" if self.passed else "failed"
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">
<title>{_e(title or self.gate)}</title>
<style>
body{{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse;width:100%}} td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}
tr.fail td{{background:#fde2e2}} tr.warn td{{background:#fff4d6}} tr.pass td{{background:#e6f5e6}}
.summary.failed{{color:#a00}} .summary.passed{{color:#070}} .note{{color:#555;font-style:italic}}
.charts{{display:flex;flex-wrap:wrap;gap:12px}} figure.chart{{margin:0;border:1px solid #ddd;padding:4px}}
figcaption{{font-size:12px;color:#555;max-width:440px}}
</style></head><body>
<h1>{_e(title or self.gate)}</h1>
<p class="summary {state}"><b>{_e(self.summary())}</b></p>{notes}
{figures}
<h2>Checks</h2>
<table><thead><tr><th>status</th><th>check</th><th>subject</th><th>value</th><th>threshold</th>
<th>reason</th></tr></thead><tbody>
{rows}
</tbody></table>
{appendix}</body></html>
"""


def _failures_first(check: Check) -> tuple:
    return ({FAIL: 0, WARN: 1, PASS: 2}[check.status], check.name, check.subject)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _e(text: str) -> str:
    return html.escape(str(text))


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars and arrays."""
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
