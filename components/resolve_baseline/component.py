"""KFP interface of resolve_baseline."""

from typing import NamedTuple

from kfp import dsl

from components import images


@dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
def resolve_baseline(
    mlflow_tracking_uri: str = "",
    registered_model_name: str = "",
    alias: str = "production",
    schema_uri: str = "",
    statistics_uri: str = "",
) -> NamedTuple("Baseline", schema_uri=str, statistics_uri=str, source=str):
    """Finds the schema and training statistics of the model in production.

    Explicit URIs win; otherwise they come from the tags register_model put on the MLflow model
    version that ``alias`` points at. Empty outputs mean a first run (no baseline yet).

    Args:
        mlflow_tracking_uri: MLflow tracking URI; "" uses MLFLOW_TRACKING_URI when set.
        registered_model_name: The MLflow registered model.
        alias: The alias that marks production.
        schema_uri: A curated schema (text proto) to use instead of production's.
        statistics_uri: Baseline statistics to use instead of production's.

    Returns:
        schema_uri: The schema to validate against ("" on a first run).
        statistics_uri: The statistics to measure drift against ("" on a first run).
        source: Where they came from, for the report.
    """
    import logging
    from collections import namedtuple

    from components import interface
    from components.resolve_baseline import runtime

    logging.basicConfig(level=logging.INFO)
    result = interface.call(runtime.run, locals())
    return namedtuple("Baseline", ["schema_uri", "statistics_uri", "source"])(*result)
