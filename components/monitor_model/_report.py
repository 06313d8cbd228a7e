"""The monitor's Markdown report: what to do and why first, then the evidence."""

from __future__ import annotations

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
