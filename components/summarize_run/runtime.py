"""The run summary: final status, every gate's verdict and reasons, links to the reports.

Runs as the pipeline's exit handler, so it runs whether the pipeline succeeded, failed or
stopped at a gate; it reads the verdicts that record_verdict left in the run record folder.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
import urllib.request
from typing import Any

from components import interface, run_records

logger = logging.getLogger(__name__)

GATES = ("data-is-valid", "model-is-blessed", "deployment-is-healthy")


def build(status: dict[str, Any], records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The summary as data: status plus one entry per gate (reached or not).

    A gate without a record was not reached when the run succeeded. When it did not, the step
    that records it may be the one that failed (evaluate-model records the data gate's verdict
    too, for check-data, which is cached), so its verdict is unknown: "not recorded".
    """
    missing = "not reached" if status.get("state") == "SUCCEEDED" else "not recorded"
    gates = []
    for gate in (*GATES, *sorted(set(records) - set(GATES))):
        record = records.get(gate)
        if record is None:
            gates.append({"gate": gate, "verdict": missing, "summary": "", "failures": []})
        else:
            gates.append(
                {
                    "gate": gate,
                    "verdict": "passed" if record["passed"] else "failed",
                    "summary": record.get("summary", ""),
                    "failures": record.get("failures", []),
                    "verdict_uri": record.get("verdict_uri", ""),
                }
            )
    stopped_at = next((g["gate"] for g in gates if g["verdict"] == "failed"), None)
    return {
        "state": status.get("state", "UNKNOWN"),
        "pipeline_job": status.get("pipeline_job_resource_name", ""),
        "error": status.get("error_message", ""),
        "stopped_at_gate": stopped_at,
        "gates": gates,
    }


def to_markdown(summary: dict[str, Any]) -> str:
    lines = [
        "# Run summary",
        "",
        f"- **Final status:** {summary['state']}",
        f"- **Pipeline job:** {summary['pipeline_job'] or '-'}",
    ]
    if summary["stopped_at_gate"]:
        lines.append(f"- **Stopped at gate:** {summary['stopped_at_gate']}")
    if summary["error"]:
        lines.append(f"- **Error:** {summary['error']}")
    lines += ["", "| gate | verdict | summary | details |", "|---|---|---|---|"]
    for g in summary["gates"]:
        details = g.get("verdict_uri", "")
        lines.append(f"| {g['gate']} | {g['verdict']} | {g['summary']} | {details} |".replace("\n", " "))
    for g in summary["gates"]:
        if g["failures"]:
            lines += ["", f"## Why {g['gate']} failed", ""]
            lines += [
                f"- {f['subject'] + ': ' if f.get('subject') else ''}{f['reason']}" for f in g["failures"]
            ]
    return "\n".join(lines) + "\n"


def webhook_host(webhook_url: str) -> str:
    """``scheme://host`` of a webhook: what logs and summaries may show (the path and query of
    a webhook URL often carry its token).

    Raises:
        ValueError: not an http(s) URL with a host (naming the scheme, never the URL).
    """
    parts = urllib.parse.urlsplit(webhook_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"webhook_url must be an http:// or https:// URL with a host (got scheme "
            f"{parts.scheme or 'none'!r}); nothing was posted"
        )
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def post(webhook_url: str, summary: dict[str, Any], markdown: str, attempts: int = 3) -> None:
    """POSTs the summary as JSON ({"text": markdown, "summary": {...}}, Slack-compatible)."""
    body = json.dumps({"text": markdown, "summary": summary}).encode()
    delay = 1.0
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(
            webhook_url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                host = webhook_host(webhook_url)
                logger.info("posted the run summary to %s (HTTP %d)", host, response.status)
                return
        except OSError as exc:
            if attempt == attempts:
                raise
            logger.warning("webhook attempt %d/%d failed (%s); retrying", attempt, attempts, exc)
            time.sleep(delay)
            delay *= 2


@interface.defaults_from(__file__)
def run(*, status: dict[str, Any], record_dir, summary_path: str, webhook_url) -> dict:
    """Writes the Markdown summary to ``summary_path`` and posts it when a webhook is given.
    Parameters are documented on the component (component.py); ``status`` is its final
    status as a dict (state, pipeline_job_resource_name, error_message).

    A webhook that cannot be reached is logged and noted in the summary; it does not fail the
    run, whose outcome is already decided.
    """
    summary = build(status, run_records.read_all(record_dir))
    markdown = to_markdown(summary)
    bad_webhook = None
    if webhook_url:
        try:
            host = webhook_host(webhook_url)
            post(webhook_url, summary, markdown)
        except ValueError as exc:
            bad_webhook = exc
            markdown += f"\n> The run summary was not posted: {exc}\n"
        except OSError as exc:
            logger.error("could not post the run summary to %s: %s", host, exc)
            markdown += f"\n> The webhook at {host} could not be reached: {exc}\n"
    with open(summary_path, "w") as f:
        f.write(markdown)
    run_records.write(record_dir, "summary", summary)
    logger.info("\n%s", markdown)
    if bad_webhook is not None:  # the summary is written; the misconfiguration still fails the task
        raise bad_webhook
    return summary
