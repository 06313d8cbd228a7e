"""The monitor's reports, Markdown and HTML: what to do and why first, then the evidence
(the HTML page draws it: serving's distribution of every skewed feature over training's, the
window's predictions over the evaluation-time ones, performance next to the registered one)."""

from __future__ import annotations

import html

import numpy as np

from components import svg
from components.verdict import FAIL

WORST_SKEW = 5


def markdown(result, action: str, reasons: list[str], production) -> str:
    details = result.details
    window = details["window"]
    metrics = details.get("metrics", {})
    lines = [
        f"# Monitoring: {details['model_name']}",
        "",
        f"**Action: {action}** - {_meaning(action)}",
        "",
        f"Window [{window['start']}, {window['end']}) ({window['hours']:g} h); production: "
        f"{production.describe()}.",
        "",
    ]
    if reasons:
        lines += ["Why:", ""] + [f"- {r}" for r in reasons] + [""]

    skew = details.get("skew") or {}
    if skew:
        worst = sorted(skew.items(), key=lambda kv: -kv[1]["value"] / max(kv[1]["threshold"], 1e-12))
        lines += ["## Worst skew (training vs serving)", "", "| feature | measure | value | threshold |",
                  "|---|---|---|---|"]
        lines += [f"| {f} | {s['metric']} | {s['value']:.4f} | {s['threshold']:g} |"
                  for f, s in worst[:WORST_SKEW]]
        lines.append("")

    live = details.get("live_performance")
    estimated = details.get("estimated_performance")
    if live or estimated:
        lines += ["## Performance", ""]
    if live:
        lines.append(f"Measured on **{live['labelled_rows']} labelled rows**:")
        lines += [""] + [f"- {m}: {v:.4f} (registered {_registered(production, m)})"
                         for m, v in live["metrics"].items()] + [""]
    if estimated:
        lines.append(
            f"**ESTIMATE** ({estimated['method']}), {estimated['rows']} rows, "
            f"{estimated['labelled_rows']} labelled so far. An estimate assumes that only the inputs "
            "moved, not how the label follows them; labels confirm it."
        )
        lines += [""] + [
            f"- estimated {m}: {e['value']:.4f} [95 % {e['low']:.4f}, {e['high']:.4f}] "
            f"(registered {_registered(production, m)})"
            for m, e in estimated["metrics"].items()
        ] + [""]

    serving = [("requests", "requests"), ("rows", "served rows"), ("error_rate", "error rate"),
               ("latency_p50_ms", "latency p50 (ms)"), ("latency_p95_ms", "latency p95 (ms)"),
               ("flagged_share", "flagged share")]
    lines += ["## Serving", "", "| measure | value |", "|---|---|"]
    lines += [f"| {label} | {metrics[key]:.4g} |" for key, label in serving if key in metrics]
    lines.append("")
    if details.get("top_flags"):
        lines += ["Top flags:", ""] + [f"- {f['feature']}: {f['flag']} ({f['rows']} rows)"
                                       for f in details["top_flags"]] + [""]

    if result.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in result.notes] + [""]
    failed = sum(c.status == FAIL for c in result.checks)
    lines += [f"## Checks: {result.gate}, {failed} of {len(result.checks)} failed", ""]
    rendered = result.to_markdown().splitlines()  # the verdict's own table, failures first
    lines += rendered[next(i for i, line in enumerate(rendered) if line.startswith("| status")):]
    return "\n".join(lines) + "\n"


def html_page(result, action: str, reasons: list[str], production, serving_statistics, predictions,
              all_features: bool = False) -> str:
    """The verdict page with the action and why first, then the charts.

    Args:
        serving_statistics: TFDV statistics of the window's inputs (None when not computed).
        predictions: The window's predictions in the reference's form (None when unknown).
        all_features: Draw every shared feature, not only the skewed ones.
    """
    details = result.details
    why = "".join(f"<li>{html.escape(r)}</li>" for r in reasons)
    head = (f"<p><b>Action: {html.escape(action)}</b> - {html.escape(_meaning(action))}</p>"
            + (f"<ul>{why}</ul>" if why else "")
            + f"<p>Production: {html.escape(production.describe())}.</p>")
    charts = _prediction_chart(production, predictions) + _performance_chart(details, production)
    skewed = [c for c in result.checks if c.name == "skew" and c.subject and c.status == FAIL]
    names = [c.subject for c in skewed]
    if all_features:
        names += sorted(f for f in (details.get("skew") or {}) if f not in names)
    if production.statistics is not None and serving_statistics is not None:
        reasons_by = {c.subject: c.reason for c in skewed}
        for name in names:
            charts += svg.feature_distribution(
                name, [("serving", serving_statistics), ("training", production.statistics)],
                caption=reasons_by.get(name, ""))
    figures = head + (f'<h2>Serving vs production</h2><div class="charts">{"".join(charts)}</div>'
                      if charts else "")
    return result.to_html(title=f"Monitoring: {details['model_name']}", figures=figures)


def _prediction_chart(production, predictions) -> list[str]:
    reference = production.reference_predictions
    if reference is None or predictions is None or not len(predictions):
        return []
    caption = f"{len(predictions)} served rows vs {len(reference)} evaluation-time predictions."
    if production.task == "multiclass":
        classes = [str(c) for c in production.classes or []]
        current = np.argmax(predictions, axis=1)
        shares = [(name, (np.bincount(v, minlength=len(classes))[:len(classes)] / len(v)).tolist())
                  for name, v in (("window", current), ("evaluation", np.asarray(reference, dtype=int)))]
        return [svg.bars("Predicted classes", classes, shares, caption=caption)]
    joined = np.concatenate([np.asarray(reference, dtype=float), np.asarray(predictions, dtype=float)])
    low, high = (0.0, 1.0) if production.task == "binary" else (float(joined.min()), float(joined.max()))
    edges = np.linspace(low, high if high > low else low + 1.0, 21)
    shares = [(name, (np.histogram(np.clip(v, low, high), bins=edges)[0] / len(v)).tolist())
              for name, v in (("window", predictions), ("evaluation", reference))]
    what = "P(class 1)" if production.task == "binary" else "prediction"
    return [svg.histogram("Predictions", edges.tolist(), shares, x_label=what, caption=caption)]


def _performance_chart(details, production) -> list[str]:
    live, estimated = details.get("live_performance"), details.get("estimated_performance")
    if live:
        measured = live["metrics"]
    else:
        measured = {m: e["value"] for m, e in (estimated or {}).get("metrics", {}).items()}
    registered = production.registered_metrics
    metrics = [m for m, v in measured.items() if v is not None and registered.get(m) is not None]
    if not metrics:
        return []
    name = "live" if live else "ESTIMATE (CBPE)"
    series = [(name, [measured[m] for m in metrics]),
              ("registered", [registered[m] for m in metrics])]
    caption = (f"Measured on {live['labelled_rows']} labelled rows." if live else
               "Estimated from the calibrated predicted probabilities; labels will confirm it.")
    return [svg.bars("Performance", metrics, series, y_label="value", percent=False, caption=caption)]


def _meaning(action: str) -> str:
    return {
        "none": "the model is healthy.",
        "retrain": "the model no longer fits what it serves (skew, prediction drift or performance).",
        "alert": "serving is unhealthy (errors, latency, flagged requests or too little traffic); "
                 "a new model would not fix it.",
    }[action]


def _registered(production, metric: str) -> str:
    value = production.registered_metrics.get(metric)
    return f"{value:.4f}" if value is not None else "none"
