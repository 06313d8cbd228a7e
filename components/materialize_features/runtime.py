"""materialize_features: Feast's materialization, and a report of what it wrote.

Feast loads the online store (``materialize_incremental`` / ``materialize``) and records each
feature view's materialized interval in its registry, but says nothing of how much it wrote.
The report reads that interval back from the registry and counts what the offline store holds
for it, with the same query materialization runs (the latest row per entity in the interval):
the entities written and the newest event time among them, which is how fresh serving is.
"""

from __future__ import annotations

import datetime as dt
import logging

from components import feature_store, interface, uris

logger = logging.getLogger(__name__)


@interface.defaults_from(__file__)
def run(*, repository, end, start, feature_views) -> dict:
    """Materializes ``repository``'s feature views. Parameters are documented on the component
    (component.py).

    Returns:
        repository, project, mode (incremental or range), end, online_store (its type),
        entities (total), views: [{name, start, end, entities, newest_event_time}].

    Raises:
        ValueError: ``start``/``end`` not ISO 8601 or ``start`` not before ``end``; an unknown
            or offline-only feature view; a copied (remote) repository whose registry or online
            store is a file inside it (what is materialized into a copy is lost).
    """
    end_at = _moment(end, "end") or dt.datetime.now(dt.timezone.utc)
    start_at = _moment(start, "start")
    if start_at is not None and start_at >= end_at:
        raise ValueError(f"start {start!r} must be before end {end or end_at.isoformat()!r}")
    store = feature_store.open_store(repository)
    inside = feature_store.repository_files(store)
    if uris.local_path(repository.strip()) is None and inside:
        raise ValueError(
            f"repository {repository!r} is remote and its {' and '.join(inside)} are files inside it: this "
            "step would fill a copy and lose it. Mount the repository as a volume, or name a shared "
            "registry and online store (e.g. gs://.../registry.db, Redis) in its feature_store.yaml"
        )
    names = _views(store, feature_views)

    if start_at is None:
        logger.info("materializing %s incrementally up to %s", names, end_at.isoformat())
        store.materialize_incremental(end_date=end_at, feature_views=names)
    else:
        logger.info("materializing %s from %s to %s", names, start_at.isoformat(), end_at.isoformat())
        store.materialize(start_date=start_at, end_date=end_at, feature_views=names)

    store.refresh_registry()
    views = [_written(store, store.get_feature_view(name)) for name in names]
    result = {
        "repository": repository.strip(),
        "project": store.project,
        "mode": "incremental" if start_at is None else "range",
        "end": end_at.isoformat(),
        "online_store": store.config.online_store.type,
        "entities": sum(v["entities"] for v in views),
        "views": views,
    }
    for view in views:
        logger.info(
            "%s: %d entities from %s to %s, newest event %s",
            view["name"], view["entities"], view["start"], view["end"], view["newest_event_time"] or "-",
        )
    return result


def _moment(text: str, what: str) -> dt.datetime | None:
    """An ISO 8601 moment as an aware UTC datetime (naive means UTC); None for ""."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{what} {text!r} is not an ISO 8601 time (e.g. 2026-12-01T00:00:00Z)") from exc
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


def _views(store, requested: list) -> list[str]:
    """The feature views to materialize: the requested ones (checked), else every online one."""
    online = sorted(v.name for v in store.list_feature_views() if v.online)
    requested = [name.strip() for name in (requested or []) if name.strip()]
    if not requested:
        if not online:
            raise ValueError(
                f"project {store.project!r} has no online feature views to materialize "
                "(run `feast apply` first)"
            )
        return online
    unknown = [name for name in requested if name not in online]
    if unknown:
        raise ValueError(
            f"feature views {unknown} are not online feature views of {store.project!r}; those are {online}"
        )
    return list(dict.fromkeys(requested))


def _written(store, view) -> dict:
    """What materialization wrote for ``view`` in its last interval: the latest row per entity
    in [start, end], counted with the offline store's own materialization query."""
    from feast import utils
    from feast.infra.offline_stores.offline_utils import get_offline_store_from_config

    start, end = view.materialization_intervals[-1]
    entities = [store.get_entity(name) for name in view.entities]
    join_keys, feature_names, timestamp_field, created_column = utils._get_column_names(view, entities)
    offline = get_offline_store_from_config(store.config.offline_store)
    table = offline.pull_latest_from_table_or_query(
        config=store.config,
        data_source=view.batch_source,
        join_key_columns=join_keys,
        feature_name_columns=feature_names,
        timestamp_field=timestamp_field,
        created_timestamp_column=created_column,
        start_date=start,
        end_date=end,
    ).to_arrow()
    newest = None
    if table.num_rows:
        import pyarrow.compute as pc

        newest = pc.max(table.column(timestamp_field)).as_py()
    return {
        "name": view.name,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "entities": table.num_rows,
        "newest_event_time": newest.isoformat() if newest is not None else "",
    }
