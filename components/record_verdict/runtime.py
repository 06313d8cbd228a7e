"""Copies a gate's verdict into the run record, where the run summary finds it."""

from __future__ import annotations

import json
import logging

from components import run_records

logger = logging.getLogger(__name__)


def run(*, report_path: str, report_uri: str, record_dir: str, gate: str) -> dict:
    """Records the verdict JSON at ``report_path`` (a Verdict.to_json document) as ``gate``.

    Returns the record: gate, passed, summary, the failed checks and the report's URI.
    """
    with open(report_path) as f:
        report = json.load(f)
    if "passed" not in report:
        raise ValueError(f"{report_uri} is not a verdict report (no 'passed' field)")
    record = {
        "gate": gate,
        "passed": bool(report["passed"]),
        "summary": report.get("summary", ""),
        "failures": [
            {k: c.get(k) for k in ("name", "subject", "reason", "value", "threshold")}
            for c in report.get("checks", [])
            if c.get("status") == "fail"
        ],
        "notes": report.get("notes", []),
        "report_uri": report_uri,
    }
    where = run_records.write(record_dir, gate, record)
    logger.info("recorded %s (passed=%s) at %s", gate, record["passed"], where)
    return record
