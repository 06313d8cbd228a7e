"""Copies a gate's verdict into the run record, where the run summary finds it."""

from __future__ import annotations

import json
import logging

from components import interface, run_records

logger = logging.getLogger(__name__)


@interface.defaults_from(__file__)
def run(*, verdict_path: str, verdict_uri: str, record_dir, gate) -> dict:
    """Records the verdict JSON at ``verdict_path`` (a Verdict.to_json document) as ``gate``.
    Parameters are documented on the component (component.py); ``verdict_uri`` names the
    verdict in errors and in the record.

    Returns the record: gate, passed, summary, the failed checks and the verdict's URI.
    """
    with open(verdict_path) as f:
        verdict = json.load(f)
    if "passed" not in verdict:
        raise ValueError(f"{verdict_uri} is not a verdict (no 'passed' field)")
    record = {
        "gate": gate,
        "passed": bool(verdict["passed"]),
        "summary": verdict.get("summary", ""),
        "failures": [
            {k: c.get(k) for k in ("name", "subject", "reason", "value", "threshold")}
            for c in verdict.get("checks", [])
            if c.get("status") == "fail"
        ],
        "notes": verdict.get("notes", []),
        "verdict_uri": verdict_uri,
    }
    where = run_records.write(record_dir, gate, record)
    logger.info("recorded %s (passed=%s) at %s", gate, record["passed"], where)
    return record
