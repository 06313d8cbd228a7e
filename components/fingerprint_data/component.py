"""KFP interface of fingerprint_data."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Output

from components import images


@dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
def fingerprint_data(
    data_uri: str,
    data: Output[Dataset],
    snapshot_uri: str = "",
) -> NamedTuple("Fingerprint", data_uri=str, fingerprint=str):
    """Fingerprints the training data; run it uncached, first, and feed later steps its outputs.

    Cached steps that read the data take ``data_uri`` and ``fingerprint`` from here instead of
    the pipeline parameter, so a changed file at the same URI is a cache miss and an unchanged
    one a hit.

    Args:
        data_uri: The data as a local path, gs://, /gcs/, s3:// or minio:// URI.
        data: Output; a reference to the data for lineage: a JSON file and metadata with
            data_uri, source_uri, fingerprint, method (sha256, etag or generation),
            size_bytes, snapshot.
        snapshot_uri: When set, the data is copied once to
            ``<snapshot_uri>/<fingerprint>/<file name>`` (never overwritten) and every later
            step reads that immutable copy, so a model can be reproduced from its lineage.

    Returns:
        data_uri: Where later steps read the data (the snapshot when one was taken).
        fingerprint: "<method>:<digest>" of this version of the data.
    """
    import json
    import logging
    from collections import namedtuple

    from components import interface
    from components.fingerprint_data import runtime

    logging.basicConfig(level=logging.INFO)
    result = interface.call(runtime.run, locals())
    with open(data.path, "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
    data.metadata.update(result)
    return namedtuple("Fingerprint", ["data_uri", "fingerprint"])(result["data_uri"], result["fingerprint"])
