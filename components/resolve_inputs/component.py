"""KFP interface of resolve_inputs."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Output

from components import images


@dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
def resolve_inputs(
    data_uri: str,
    data: Output[Dataset],
    snapshot_uri: str = "",
    mlflow_tracking_uri: str = "",
    registered_model_name: str = "",
    alias: str = "production",
    schema_uri: str = "",
    statistics_uri: str = "",
) -> NamedTuple(
    "Inputs", data_uri=str, fingerprint=str, schema_uri=str, statistics_uri=str, baseline_source=str
):
    """What a run starts from, read live: this version of the data and production's baseline.

    fingerprint_data and resolve_baseline in one task: run it uncached, first, and feed later
    steps its outputs, so cached steps are keyed on the data's fingerprint and on the
    baseline's immutable URIs, never on a mutable data URI or on "whatever production is".

    Args:
        data_uri: The data as a local path, gs://, /gcs/, s3:// or minio:// URI.
        data: Output; a reference to the data for lineage (fingerprint_data's ``data``).
        snapshot_uri: When set, the data is copied once to
            ``<snapshot_uri>/<fingerprint>/<file name>`` and later steps read that copy.
        mlflow_tracking_uri: MLflow tracking URI; "" uses MLFLOW_TRACKING_URI when set.
        registered_model_name: The MLflow registered model; "" for no baseline from MLflow.
        alias: The alias that marks production.
        schema_uri: A curated schema (text proto) to use instead of production's.
        statistics_uri: Baseline statistics to use instead of production's.

    Returns:
        data_uri: Where later steps read the data (the snapshot when one was taken).
        fingerprint: "<method>:<digest>" of this version of the data.
        schema_uri: The schema to validate against ("" on a first run).
        statistics_uri: The statistics to measure drift against ("" on a first run).
        baseline_source: Where the baseline came from, for the report.
    """
    import json
    import logging
    from collections import namedtuple

    from components import interface
    from components.resolve_inputs import runtime

    logging.basicConfig(level=logging.INFO)
    result = interface.call(runtime.run, locals())
    with open(data.path, "w") as f:
        json.dump(result["data"], f, indent=2, sort_keys=True)
    data.metadata.update(result["data"])
    fields = ["data_uri", "fingerprint", "schema_uri", "statistics_uri", "baseline_source"]
    return namedtuple("Inputs", fields)(*(result[name] for name in fields))
