"""build_training_set: entity table + Feast feature repository -> point-in-time correct Parquet.

The join is Feast's (``get_historical_features``): for each entity row, the latest feature
value at or before the row's event time, within the feature view's TTL. What this adds is what
a pipeline step needs around it: the inputs checked up front with errors that say what is wrong
(an unknown feature reference, an entity table without its timestamp column or key columns),
a deterministic file (rows sorted, entity keys dropped) so an unchanged training set keeps its
fingerprint, and the lineage record inside the file.
"""

from __future__ import annotations

import logging

import pandas as pd

from components import feature_store, interface, tfdv_io

logger = logging.getLogger(__name__)

FEAST_TIMESTAMP = "event_timestamp"
"""The column name Feast's point-in-time join looks for in an entity DataFrame."""


@interface.defaults_from(__file__)
def run(
    *, repository, entity_table_uri, features, feature_service, event_timestamp_column, output_path
) -> dict:
    """Writes the training set to the local ``output_path``. Parameters are documented on the
    component (component.py).

    Returns:
        The artifact's metadata: rows, columns, feature_refs, feature_service, entity_keys,
        repository, project, registry_version, event_timestamp_column, event_time_range,
        missing_values (per feature, only those with any), rows_without_features.

    Raises:
        ValueError: an unknown feature reference or service, neither or both given; an entity
            table that is empty, lacks the timestamp or an entity key column, or has values
            there that are not timestamps or are missing.
        components.tfdv_io.DataReadError: the entity table is missing or not CSV/Parquet.
    """
    column = (event_timestamp_column or "").strip()
    if not column:
        raise ValueError("event_timestamp_column is required: the entity table's event time column")
    entities = read_entity_table(entity_table_uri)
    store = feature_store.open_store(repository)
    refs, selection = feature_store.resolve_features(store, features, feature_service)
    keys = feature_store.entity_keys(store, refs)
    entities = _checked(entities, entity_table_uri, keys, column)
    names = [feature_store.parse_ref(ref)[1] for ref in refs]
    clashes = sorted(set(names) & set(entities.columns))
    if clashes:
        raise ValueError(
            f"entity table {entity_table_uri!r} already has columns named like features: {clashes}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"features {refs} repeat a feature name; the training set names columns by feature")

    try:
        joined = store.get_historical_features(
            entity_df=entities.rename(columns={column: FEAST_TIMESTAMP}), features=selection
        ).to_df()
    except (ValueError, TypeError) as exc:  # e.g. string keys against an int64 entity
        types = {key: str(entities[key].dtype) for key in keys}
        raise ValueError(
            f"Feast could not join entity table {entity_table_uri!r} (keys {types}): {exc}"
        ) from exc
    # Every entity row stays, with its features joined back by (keys, event time): Feast's file
    # offline store drops an entity row whose candidate rows all lie outside [event - TTL,
    # event] (a value only from after the event, or too old) instead of leaving it null, and
    # returns one row per repeated (keys, event time). A label without features is data the
    # gate must see, not a row to lose.
    on = [*keys, column]
    found = joined.rename(columns={FEAST_TIMESTAMP: column})
    found[column] = found[column].astype("datetime64[ns, UTC]")
    found = found.drop_duplicates(on)[[*on, *names]]
    entities[column] = entities[column].astype("datetime64[ns, UTC]")
    training = entities.merge(found, on=on, how="left", validate="many_to_one")
    carried = [c for c in entities.columns if c not in on]
    # Sorted and in a fixed column order: the same inputs give the same bytes, so an unchanged
    # training set keeps its fingerprint (and the steps after it their cache hits).
    training = training.sort_values([column, *keys, *carried], kind="stable").reset_index(drop=True)
    training = training[[column, *carried, *names]]
    without = int(training[names].isna().all(axis=1).sum())

    record = feature_store.FeatureStoreRecord(
        repository=repository.strip(),
        project=store.project,
        feature_refs=refs,
        entity_keys=keys,
        event_timestamp_column=column,
        registry_version=feature_store.registry_version(store, refs),
    )
    feature_store.write_training_set(training, output_path, record)
    missing = {name: int(n) for name, n in training[names].isna().sum().items() if n}
    stamps = training[column]
    summary = {
        **record.to_dict(),
        "rows": len(training),
        "columns": list(training.columns),
        "feature_service": (feature_service or "").strip(),
        "event_time_range": [stamps.min().isoformat(), stamps.max().isoformat()],
        "missing_values": missing,
        "rows_without_features": without,
    }
    logger.info(
        "training set: %d rows x %d features from %s (%s), %s; %d rows without any feature value "
        "as of their event time; missing values: %s",
        len(training), len(names), repository, store.project, record.registry_version, without,
        missing or "none",
    )
    return summary


def read_entity_table(uri: str) -> pd.DataFrame:
    """The entity table as a DataFrame, column types as stored (Parquet) or inferred (CSV:
    pyarrow's inference, ISO 8601 text becomes timestamps)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    if not (uri or "").strip():
        raise ValueError(
            "entity_table_uri is required: a CSV or Parquet file of entity keys, event times and labels"
        )
    data = tfdv_io.locate_data(uri.strip())
    try:
        with data.filesystem.open_input_file(data.path) as handle:
            table = pq.read_table(handle) if data.format == "parquet" else pcsv.read_csv(handle)
    except (pa.ArrowException, OSError) as exc:
        raise tfdv_io.DataReadError(f"cannot read entity table {uri!r}: {exc}") from exc
    return table.to_pandas()


def _checked(entities: pd.DataFrame, uri: str, keys: list[str], column: str) -> pd.DataFrame:
    """The entity table with UTC timestamps in ``column``, or a ValueError naming the problem."""
    if entities.empty:
        raise ValueError(f"entity table {uri!r} has no rows")
    columns = list(entities.columns)
    if column not in columns:
        raise ValueError(
            f"entity table {uri!r} has no event timestamp column {column!r} (columns: {columns}); "
            "set event_timestamp_column to the column holding each row's event time"
        )
    missing_keys = [key for key in keys if key not in columns]
    if missing_keys:
        raise ValueError(
            f"entity table {uri!r} lacks the entity key column{'s' if len(missing_keys) > 1 else ''} "
            f"{missing_keys} the features are looked up by (columns: {columns})"
        )
    if FEAST_TIMESTAMP in columns and column != FEAST_TIMESTAMP:
        raise ValueError(
            f"entity table {uri!r} has a column {FEAST_TIMESTAMP!r} besides the event timestamp column "
            f"{column!r}: Feast would take it for the event time; rename or drop it"
        )
    for key in keys:
        if entities[key].isna().any():
            raise ValueError(f"entity table {uri!r}: {int(entities[key].isna().sum())} rows have no {key!r}")
    entities = entities.copy()
    entities[column] = _timestamps(entities[column], uri, column)
    return entities


def _timestamps(values: pd.Series, uri: str, column: str) -> pd.Series:
    """``values`` as UTC timestamps (naive ones are UTC), or a ValueError naming a bad one."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    elif pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise ValueError(
            f"entity table {uri!r}: event timestamp column {column!r} holds {values.dtype} values (e.g. "
            f"{values.iloc[0]!r}), not timestamps; give a timestamp column (ISO 8601 text in CSV)"
        )
    else:
        parsed = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
        bad = parsed.isna() & values.notna()
        if bad.any():
            raise ValueError(
                f"entity table {uri!r}: event timestamp column {column!r} has {int(bad.sum())} values "
                f"that are not timestamps, e.g. {values[bad].iloc[0]!r} (row {int(bad.idxmax())})"
            )
    if parsed.isna().any():
        raise ValueError(
            f"entity table {uri!r}: {int(parsed.isna().sum())} rows have no event time in {column!r}; "
            "a point-in-time join needs one per row"
        )
    return parsed.dt.tz_localize("UTC") if parsed.dt.tz is None else parsed.dt.tz_convert("UTC")
