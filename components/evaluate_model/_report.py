"""The reports: the gate's checks, then candidate and baseline side by side, as Markdown and
as an HTML page with pictures (ROC, precision-recall, calibration and confusion matrices for
classifiers, residuals for regression), candidate drawn over production."""

from __future__ import annotations

import html
import math

import numpy as np

from components import svg
from components.evaluate_model import _metrics
from components.evaluate_model._metrics import higher_is_better
from components.verdict import Verdict

_COMPARISON = "Candidate vs baseline"
_MAX_POINTS = 800  # dots in a residual plot: enough to see the shape, a page that stays small


def markdown(verdict: Verdict, candidate: dict, baseline: dict | None, slices: dict) -> str:
    parts = [verdict.to_markdown(title="Model evaluation: model-is-blessed")]
    for heading, header, rows in _tables(candidate, baseline, slices):
        parts += ["", f"## {heading}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        parts += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        if baseline is None and heading == _COMPARISON:
            parts += ["", "_No baseline model: the candidate is judged on absolute checks only._"]
    return "\n".join(parts) + "\n"


def html_page(verdict: Verdict, candidate: dict, baseline: dict | None, slices: dict, *, task: str,
              y: np.ndarray, candidate_pred: np.ndarray, baseline_pred: np.ndarray | None,
              classes: list | None) -> str:
    """The page: the charts (candidate over the baseline when one was evaluated), the checks,
    then the Markdown report's comparison and slice tables."""
    models = [("candidate", candidate_pred)]
    if baseline_pred is not None:
        version = (verdict.details.get("baseline") or {}).get("version")
        models.append((f"production v{version}" if version else "baseline", baseline_pred))
    if task == "binary":
        charts = _binary_charts(y, models, classes)
    elif task == "multiclass":
        charts = [_confusion(task, y, pred, classes, name) for name, pred in models]
    else:
        charts = _regression_charts(y, models)
    figures = f'<h2>Candidate vs production</h2><div class="charts">{"".join(charts)}</div>'
    return verdict.to_html(title="Model evaluation: model-is-blessed", figures=figures,
                           appendix=_html_tables(candidate, baseline, slices))


def _binary_charts(y, models, classes) -> list[str]:
    from sklearn import metrics as skm

    rocs, prs, calibration = [], [], []
    for name, pred in models:
        roc = _metrics.roc_curve(y, pred)
        if roc is not None:
            rocs.append((f"{name} (AUC {skm.roc_auc_score(y, pred):.3f})", roc["fpr"], roc["tpr"]))
            precision, recall, _ = skm.precision_recall_curve(y, np.clip(pred, 0.0, 1.0))
            keep = _thin(len(recall))
            prs.append((f"{name} (AP {skm.average_precision_score(y, pred):.3f})",
                        recall[keep].tolist(), precision[keep].tolist()))
        bins = _metrics.reliability(y, np.clip(pred, 0.0, 1.0))
        calibration.append((f"{name} (ECE {_metrics.expected_calibration_error(y, pred):.3f})",
                            [b[0] for b in bins], [b[1] for b in bins]))
    positive = _metrics.display(classes[1]) if classes else "1"
    charts = []
    if rocs:
        charts.append(svg.curves("ROC curve", rocs, x_label="false positive rate",
                                 y_label="true positive rate", x_range=(0, 1), y_range=(0, 1), diagonal=True))
        charts.append(svg.curves("Precision-recall curve", prs, x_label=f"recall (class {positive})",
                                 y_label="precision", x_range=(0, 1), y_range=(0, 1)))
    charts.append(svg.curves("Calibration", calibration, x_label="mean predicted probability",
                             y_label=f"observed rate of class {positive}", x_range=(0, 1), y_range=(0, 1),
                             diagonal=True, caption="10 equal-width probability bins; the diagonal is "
                                                    "perfect calibration."))
    charts += [_confusion("binary", y, pred, classes, name) for name, pred in models]
    return charts


def _confusion(task, y, pred, classes, name) -> str:
    matrix = _metrics.confusion_matrix(task, y, pred, classes)
    return svg.matrix(f"Confusion matrix: {name}", matrix["categories"], matrix["categories"],
                      matrix["matrix"], caption="Rows are the true classes; shading is each row's share"
                      + (" (threshold 0.5)." if task == "binary" else "."))


def _regression_charts(y, models) -> list[str]:
    keep = _thin(len(y))
    points = [(name, pred[keep].tolist(), (y - pred)[keep].tolist()) for name, pred in models]
    residuals = [y - pred for _, pred in models]
    low = min(float(np.min(r)) for r in residuals)
    high = max(float(np.max(r)) for r in residuals)
    edges = np.linspace(low, high if high > low else low + 1.0, 21)
    shares = [(name, (np.histogram(r, bins=edges)[0] / len(r)).tolist())
              for (name, _), r in zip(models, residuals, strict=True)]
    return [
        svg.curves("Residuals against predictions", points, x_label="prediction",
                   y_label="label - prediction", zero_line=True, points=True,
                   caption=f"{len(keep)} of {len(y)} evaluation rows."),
        svg.histogram("Residuals", edges.tolist(), shares, x_label="label - prediction"),
    ]


def _thin(n: int) -> np.ndarray:
    """At most _MAX_POINTS evenly spaced indices of n (deterministic)."""
    return np.unique(np.linspace(0, n - 1, min(n, _MAX_POINTS)).round().astype(int))


def _tables(candidate: dict, baseline: dict | None, slices: dict) -> list[tuple[str, list, list]]:
    """(heading, header, rows of cells) of both reports' tables: the comparison, then slices."""
    rows = []
    for metric, value in candidate.items():
        base = (baseline or {}).get(metric)
        delta = value - base if _finite(value) and _finite(base) else None
        rows.append([metric, _fmt(value), _fmt(base) if baseline else "n/a", _fmt(delta, signed=True),
                     "higher" if higher_is_better(metric) else "lower"])
    tables = [(_COMPARISON, ["metric", "candidate", "baseline", "delta", "better"], rows)]
    for column, entries in slices.items():
        if not entries:
            continue
        names = [k for k in entries[0] if k not in ("slice", "column", "value", "rows")]
        tables.append((f"Slices by `{column}`", ["slice", "rows", *names],
                       [[str(e["value"]), str(e["rows"])] + [_fmt(e[n]) for n in names] for e in entries]))
    return tables


def _html_tables(candidate: dict, baseline: dict | None, slices: dict) -> str:
    out = []
    for heading, header, rows in _tables(candidate, baseline, slices):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
        out.append(f"<h2>{html.escape(heading.replace('`', ''))}</h2>"
                   f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    return "".join(out)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _fmt(value, signed: bool = False) -> str:
    if not _finite(value):
        return "" if value is None else "undefined"
    return f"{value:+.4f}" if signed else f"{value:.4f}"
