"""The run record: one folder per pipeline run where each gate leaves its verdict, so the exit
handler (which may not depend on other tasks) can summarise the run.

The folder is any URI of ``components.uri``: a local path (kfp.local), gs:// or /gcs/ (Vertex),
s3://, or KFP's minio:// (with the credentials of KFP's mlpipeline-minio-artifact secret).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from components import uris

logger = logging.getLogger(__name__)


def write(record_dir: str, name: str, record: dict[str, Any]) -> str:
    """Writes ``record`` as ``<record_dir>/<name>.json``; returns the written location."""
    if not record_dir:
        raise ValueError("record_dir is empty: pass the run record folder URI")
    location = uris.join(record_dir, f"{name}.json")
    uris.write_bytes(location, json.dumps(record, indent=2, sort_keys=True).encode())
    return location


def read_all(record_dir: str) -> dict[str, dict[str, Any]]:
    """Every record in the folder, by name; empty when the folder does not exist."""
    filesystem, _ = uris.filesystem_for(record_dir)
    records = {}
    for path in uris.list_files(record_dir):
        if path.endswith(".json"):
            with filesystem.open_input_stream(path) as f:
                records[path.rsplit("/", 1)[-1][: -len(".json")]] = json.loads(f.read())
    return records


def record_verdict(record_dir: str, gate: str, verdict_path: str, verdict_uri: str = "") -> dict[str, Any]:
    """Records the gate's JSON verdict (a ``Verdict.to_json`` document at ``verdict_path``) as
    ``<record_dir>/<gate>.json``, where the run summary finds it; an empty ``gate`` is the
    verdict's own. ``verdict_uri`` (default: the path) names the verdict in errors and in the
    record.

    Returns the record: gate, passed, summary, the failed checks, notes and the verdict's URI.

    Raises:
        ValueError: the file is not a verdict (no ``passed`` field, or no gate given or named
            in it), or record_dir is empty.
    """
    verdict_uri = verdict_uri or verdict_path
    with open(verdict_path) as f:
        verdict = json.load(f)
    if "passed" not in verdict:
        raise ValueError(f"{verdict_uri} is not a verdict (no 'passed' field)")
    gate = gate or verdict.get("gate", "")
    if not gate:
        raise ValueError(f"{verdict_uri} names no gate and none was given")
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
    where = write(record_dir, gate, record)
    logger.info("recorded %s (passed=%s) at %s", gate, record["passed"], where)
    return record
