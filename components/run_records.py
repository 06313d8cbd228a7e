"""The run record: one folder per pipeline run where each gate leaves its verdict, so the exit
handler (which may not depend on other tasks) can summarise the run.

The folder is any URI of ``components.uri``: a local path (kfp.local), gs:// or /gcs/ (Vertex),
s3://, or KFP's minio:// (with the credentials of KFP's mlpipeline-minio-artifact secret).
"""

from __future__ import annotations

import json
from typing import Any

from components import uris


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
