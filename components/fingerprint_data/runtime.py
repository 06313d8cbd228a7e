"""fingerprint_data: identifies the version of the data a run trains on.

KFP and Vertex key a cached step on its component and input values. A step that reads a fixed
URI (``.../latest/train.parquet``) would then reuse yesterday's results for today's file. This
step is never cached; it fingerprints the data through the URI layer (content hash for local
files, the object's ETag or generation in object stores) and hands later steps the data's
location *and* its fingerprint as inputs, so an unchanged file is a cache hit and a changed
file at the same URI is a miss.
"""

from __future__ import annotations

import logging
import os

from components import interface, uris

logger = logging.getLogger(__name__)


@interface.defaults_from(__file__)
def run(*, data_uri, snapshot_uri) -> dict:
    """Fingerprints ``data_uri``; with ``snapshot_uri``, copies it once to an immutable,
    content-addressed location and points later steps there. Parameters are documented on the
    component (component.py).

    Returns:
        data_uri (what later steps read), source_uri (what was given), fingerprint, method,
        size_bytes, snapshot (bool).

    Raises:
        ValueError: no data_uri, or the data does not exist (FileNotFoundError).
        components.uris.UriError: an unknown scheme or an unreachable store.
    """
    if not (data_uri or "").strip():
        raise ValueError("data_uri is required: the training data as a path or URI")
    data_uri = data_uri.strip()
    found = uris.fingerprint(data_uri)
    result = {
        "data_uri": data_uri,
        "source_uri": data_uri,
        "fingerprint": found.value,
        "method": found.method,
        "size_bytes": found.size,
        "snapshot": False,
    }
    if snapshot_uri:
        result.update(data_uri=_snapshot(data_uri, snapshot_uri, found.value), snapshot=True)
    logger.info(
        "data %s: %s (%s, %d bytes)%s",
        data_uri, found.value, found.method, found.size,
        f"; snapshot at {result['data_uri']}" if result["snapshot"] else "",
    )
    return result


def _snapshot(data_uri: str, snapshot_uri: str, fingerprint: str) -> str:
    """``<snapshot_uri>/<fingerprint>/<file name>``: written once, never overwritten."""
    if os.path.isdir(uris.local_path(data_uri) or ""):
        raise ValueError(f"snapshot_uri needs a single data file; {data_uri!r} is a folder")
    name = data_uri.rstrip("/").rsplit("/", 1)[-1]
    target = uris.join(snapshot_uri, fingerprint.replace(":", "-"), name)
    if uris.exists(target):
        logger.info("snapshot %s exists: reused", target)
    else:
        uris.write_bytes(target, uris.read_bytes(data_uri))
    return target
