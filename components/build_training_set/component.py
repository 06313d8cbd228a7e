"""KFP interface of build_training_set."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Output

from components import images


@dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
def build_training_set(
    repository: str,
    entity_table_uri: str,
    training_set: Output[Dataset],
    features: list = [],  # noqa: B006 - KFP defaults are compiled, never mutated
    feature_service: str = "",
    event_timestamp_column: str = "event_timestamp",
) -> NamedTuple("TrainingSet", data_uri=str):
    """Builds a point-in-time correct training set from a Feast feature store.

    Each row of the entity table (entity keys, an event time, labels) gets the feature values
    as they were at its event time (Feast's ``get_historical_features``): a value written
    after the event never reaches its row, and a value older than its feature view's TTL is
    missing. Run it uncached: the offline store changes under a fixed repository.

    Args:
        repository: The Feast feature repository (the folder with feature_store.yaml) as a
            local path, gs://, /gcs/, s3:// or minio:// URI; a remote one is copied first.
        entity_table_uri: CSV or Parquet with the entity key columns, the event time column
            and the labels (every other column is carried into the training set as it is).
        training_set: Output; Parquet with the labels, the features under their plain names
            and the event time column (entity keys are dropped: a model must not learn ids).
            The lineage record (repository, project, feature refs, entity keys, registry
            version) is in the file's Parquet metadata under "feast" and in the artifact's
            metadata, with the row count and the features' missing-value counts.
        features: Feature references "<feature view>:<feature>"; give these or feature_service.
        feature_service: A Feast FeatureService naming the features; give this or features.
        event_timestamp_column: The entity table's event time column (timestamps; ISO 8601 text
            in CSV; no time zone means UTC).

    Returns:
        data_uri: The training set's URI, for resolve_inputs (the data gate's path, unchanged).
    """
    import logging
    from collections import namedtuple

    from components import interface
    from components.build_training_set import runtime

    logging.basicConfig(level=logging.INFO)
    training_set.uri += ".parquet"  # the file says what it is to every reader
    training_set.metadata.update(interface.call(runtime.run, locals(), output_path=training_set.path))
    return namedtuple("TrainingSet", ["data_uri"])(training_set.uri)
