"""The run record: one folder per pipeline run where each gate leaves its verdict, so the exit
handler (which may not depend on other tasks) can summarise the run.

The folder is a URI: a local path (kfp.local), gs:// (Vertex mounts buckets at /gcs), s3:// or
KFP's minio:// (read through pyarrow with the S3 credentials in the environment, e.g. KFP's
mlpipeline-minio-artifact secret).
"""

from __future__ import annotations

import json
import os
from typing import Any

_FUSE_PREFIXES = {"gs://": "/gcs/"}


def _filesystem(uri: str):
    """(pyarrow filesystem or None for plain files, path) for a record URI."""
    for scheme, mount in _FUSE_PREFIXES.items():
        if uri.startswith(scheme) and os.path.isdir(mount):
            return None, mount + uri[len(scheme):]
    if "://" not in uri:
        return None, uri
    from pyarrow import fs

    if uri.startswith("minio://"):
        # KFP's default artifact store speaks S3; its endpoint comes from the environment.
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "http://minio-service.kubeflow:9000")
        scheme, _, host = endpoint.partition("://")
        s3 = fs.S3FileSystem(endpoint_override=host, scheme=scheme or "http")
        return s3, uri[len("minio://"):]
    return fs.FileSystem.from_uri(uri)


def write(record_dir: str, name: str, record: dict[str, Any]) -> str:
    """Writes ``record`` as ``<record_dir>/<name>.json``; returns the written location."""
    if not record_dir:
        raise ValueError("record_dir is empty: pass the run record folder URI")
    filesystem, path = _filesystem(record_dir.rstrip("/") + f"/{name}.json")
    data = json.dumps(record, indent=2, sort_keys=True).encode()
    if filesystem is None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    else:
        filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with filesystem.open_output_stream(path) as f:
            f.write(data)
    return path


def read_all(record_dir: str) -> dict[str, dict[str, Any]]:
    """Every record in the folder, by name; empty when the folder does not exist."""
    filesystem, path = _filesystem(record_dir.rstrip("/"))
    records = {}
    if filesystem is None:
        if not os.path.isdir(path):
            return {}
        for entry in sorted(os.listdir(path)):
            if entry.endswith(".json"):
                with open(os.path.join(path, entry), "rb") as f:
                    records[entry[: -len(".json")]] = json.loads(f.read())
        return records
    from pyarrow import fs

    infos = filesystem.get_file_info(fs.FileSelector(path, allow_not_found=True))
    for info in sorted(infos, key=lambda i: i.path):
        if info.path.endswith(".json"):
            with filesystem.open_input_stream(info.path) as f:
                records[info.base_name[: -len(".json")]] = json.loads(f.read())
    return records
