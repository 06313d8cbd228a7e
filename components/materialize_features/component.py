"""KFP interface of materialize_features."""

from kfp import dsl
from kfp.dsl import Artifact, Metrics, Output

from components import images


@dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
def materialize_features(
    repository: str,
    report: Output[Artifact],
    metrics: Output[Metrics],
    end: str = "",
    start: str = "",
    feature_views: list = [],  # noqa: B006 - KFP defaults are compiled, never mutated
):
    """Loads a Feast feature store's online store from its offline store, for serving.

    Incremental by default (Feast's ``materialize_incremental``): each feature view from where
    its last materialization ended (the first time: its TTL before now) up to ``end``. With
    ``start``, exactly [start, end] (Feast's ``materialize``), e.g. a backfill. Run it uncached
    (on a schedule, or before a deployment): the offline store changes under a fixed repository.

    Args:
        repository: The Feast feature repository (the folder with feature_store.yaml) as a
            local path or mounted volume; a gs://, s3:// or minio:// repository works when its
            feature_store.yaml names a registry and online store outside the folder.
        report: Output; JSON: per feature view the range materialized, the entities written
            and the newest event time among them, the online store's type, the registry.
        metrics: Output; per view "<view>_entities" and the total "entities".
        end: ISO 8601 end of the range (no time zone means UTC); "" means now.
        start: ISO 8601 start of the range; "" materializes incrementally.
        feature_views: Views to materialize; empty means every view that is online.
    """
    import json
    import logging

    from components import interface
    from components.materialize_features import runtime

    logging.basicConfig(level=logging.INFO)
    result = interface.call(runtime.run, locals())
    with open(report.path, "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
    report.metadata.update(result)
    for view in result["views"]:
        metrics.log_metric(f"{view['name']}_entities", view["entities"])
    metrics.log_metric("entities", result["entities"])
