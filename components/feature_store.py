"""The one home of Feast access: opening a feature repository, feature references, lineage.

- ``open_store``: a ``feast.FeatureStore`` for a repository given as a path or any URI of
  ``components.uris`` (a remote repository is copied to a local folder first; Feast resolves
  the relative paths in ``feature_store.yaml`` and ``FileSource`` against it);
- ``parse_ref`` / ``resolve_features``: feature references as Feast writes them,
  ``"<feature view>:<feature>"``, checked against the registry up front, so an unknown one is
  a ``ValueError`` that names it and lists what the registry knows;
- ``FeatureStoreRecord``: the lineage of a training set (repository, project, feature refs,
  entity keys, event timestamp column, registry version). It travels inside the training
  set's Parquet file, in the key-value metadata under ``METADATA_KEY`` (JSON), so every copy or
  snapshot of the file carries it; ``write_training_set`` / ``read_record`` write and read it.

Plain Python; Feast and pyarrow are imported inside the functions that use them, so importing
this module costs nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import tempfile

from components import uris

logger = logging.getLogger(__name__)

METADATA_KEY = b"feast"
"""Key of the lineage record (JSON) in a training set's Parquet key-value metadata."""
REPOSITORY_FILE = "feature_store.yaml"
"""What makes a folder a Feast feature repository (at its root)."""

_REF = re.compile(r"^(?P<view>[A-Za-z0-9_.-]+):(?P<feature>[A-Za-z0-9_.-]+)$")


@dataclasses.dataclass(frozen=True)
class FeatureStoreRecord:
    """Where a training set's features came from: enough to fetch the same features again.

    Attributes:
        repository: The feature repository as given (path or URI).
        project: The Feast project.
        feature_refs: ``"<view>:<feature>"``, in the order of the training set's columns.
        entity_keys: The join keys the rows were looked up by (dropped from the training set).
        event_timestamp_column: The column holding each row's event time.
        registry_version: ``sha256:<digest>`` of the definitions the features were read with
            (the feature views' specs): the same definitions give the same version.
    """

    repository: str
    project: str
    feature_refs: list
    entity_keys: list
    event_timestamp_column: str
    registry_version: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FeatureStoreRecord:
        """The record from ``to_dict``'s output; keys a later version adds are ignored."""
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [name for name in names if name not in data]
        if missing:
            raise ValueError(f"feature store record lacks {', '.join(missing)}; it has {sorted(data)}")
        return cls(**{name: data[name] for name in names})

    @property
    def feature_names(self) -> list[str]:
        """The features' column names in the training set (the part after the colon)."""
        return [parse_ref(ref)[1] for ref in self.feature_refs]


def parse_ref(ref: str) -> tuple[str, str]:
    """``"view:feature"`` -> ``("view", "feature")``.

    Raises:
        ValueError: ``ref`` is not of that form.
    """
    match = _REF.match(ref.strip()) if isinstance(ref, str) else None
    if not match:
        raise ValueError(
            f"feature reference {ref!r} is not '<feature view>:<feature>' (e.g. 'customer_daily:sessions_7d')"
        )
    return match["view"], match["feature"]


def open_store(repository: str):
    """A ``feast.FeatureStore`` for the feature repository at ``repository``.

    A local path (or ``file://``, or ``gs://`` on a FUSE mount) is opened in place; any other
    URI is copied to a new local folder first (kept for the life of the process), which is
    right for reading. The registry and online store named in ``feature_store.yaml`` are used as
    they are; a registry or SQLite store that is a file inside a copied repository is a copy
    (``repository_files`` tells which).

    Raises:
        ValueError: ``repository`` is empty, or has no ``feature_store.yaml`` at its root.
        components.uris.UriError: an unknown scheme or an unreachable store.
    """
    import feast

    if not (repository or "").strip():
        raise ValueError(
            "repository is required: a Feast feature repository (a folder with feature_store.yaml)"
        )
    repository = repository.strip()
    path = uris.local_path(repository)
    if path is None:
        if not uris.exists(uris.join(repository, REPOSITORY_FILE)):
            raise ValueError(
                f"repository {repository!r} has no {REPOSITORY_FILE}: it is not a Feast feature repository"
            )
        path = tempfile.mkdtemp(prefix="feast-repository-")
        count = uris.download_dir(repository, path)
        logger.info("copied feature repository %s (%d files) to %s", repository, count, path)
    elif not os.path.isfile(os.path.join(path, REPOSITORY_FILE)):
        raise ValueError(
            f"repository {repository!r} has no {REPOSITORY_FILE} at its root: it is not a Feast feature "
            "repository (`feast init` creates one)"
        )
    return feast.FeatureStore(repo_path=path)


def apply_definitions(repository: str):
    """Registers the repository's definitions, as ``feast apply`` does, and returns its store.

    Every ``*.py`` file of the repository (Feast's convention; hidden folders and ``data/``
    skipped) is run on its own (``runpy``, so two repositories' ``features.py`` never share a
    module), and the Feast objects it defines are applied: the registry is updated and the
    online store's tables created. Unlike the CLI, objects deleted from the files stay
    registered.

    Raises:
        ValueError: as ``open_store``; no Feast object in the repository's Python files.
    """
    import runpy
    from pathlib import Path

    import feast

    store = open_store(repository)
    root = Path(store.repo_path)
    kinds = (feast.Entity, feast.FeatureView, feast.OnDemandFeatureView, feast.FeatureService)
    found: dict[int, object] = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if any(part.startswith(".") for part in parts) or parts[0] == "data":
            continue
        for value in runpy.run_path(str(path)).values():
            if isinstance(value, kinds):
                found.setdefault(id(value), value)
    if not found:
        raise ValueError(f"repository {repository!r} defines no Feast objects in its Python files")
    store.apply(list(found.values()))
    logger.info("applied %d definitions of %s to project %s", len(found), repository, store.project)
    return store


def repository_files(store) -> dict[str, str]:
    """The registry and online store of ``store`` that are files inside its repository folder,
    by role ("registry", "online_store"); empty when both live elsewhere (a shared registry,
    Redis, ...)."""
    root = os.path.realpath(str(store.repo_path))
    found = {}
    registry = getattr(store.config.registry, "path", "") or ""
    online_path = getattr(store.config.online_store, "path", "") or ""
    for role, path in (("registry", registry), ("online_store", online_path)):
        if path and uris.is_local(path):
            full = os.path.realpath(os.path.join(root, path))
            if full.startswith(root + os.sep):
                found[role] = full
    return found


def known_refs(store) -> list[str]:
    """Every feature reference the registry knows (feature views and on-demand views), sorted."""
    views = [*store.list_feature_views(), *store.list_on_demand_feature_views()]
    return sorted(f"{view.name}:{feature.name}" for view in views for feature in view.features)


def resolve_features(store, features: list, feature_service: str):
    """The feature references to read, checked against the registry, and the argument for
    ``get_historical_features`` (the ``FeatureService`` itself, so Feast's own projection
    applies, or the list of references).

    Exactly one of ``features`` and ``feature_service`` is given.

    Raises:
        ValueError: neither or both given; a malformed or unknown reference (named, with the
            known ones); an unknown feature service (named, with the known ones).
    """
    features = [f.strip() for f in (features or []) if f.strip()]
    feature_service = (feature_service or "").strip()
    if bool(features) == bool(feature_service):
        raise ValueError(
            "give either features (e.g. ['customer_daily:sessions_7d']) or feature_service (a name), "
            f"not {'both' if features else 'neither'}; got features={features!r}, "
            f"feature_service={feature_service!r}"
        )
    known = known_refs(store)
    if feature_service:
        services = sorted(s.name for s in store.list_feature_services())
        if feature_service not in services:
            raise ValueError(
                f"feature service {feature_service!r} is not in project {store.project!r}; it has "
                f"{services or 'none (run `feast apply` in the repository)'}"
            )
        service = store.get_feature_service(feature_service)
        refs = [
            f"{projection.name_to_use()}:{feature.name}"
            for projection in service.feature_view_projections
            for feature in projection.features
        ]
        return refs, service
    for ref in features:
        parse_ref(ref)
    unknown = [ref for ref in features if ref not in known]
    if unknown:
        listed = ", ".join(known) if known else "none (run `feast apply` in the repository)"
        raise ValueError(
            f"unknown feature reference{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"in project {store.project!r}; known: {listed}"
        )
    duplicates = sorted({ref for ref in features if features.count(ref) > 1})
    if duplicates:
        raise ValueError(f"feature references {duplicates} are given more than once")
    return features, features


def views_of(store, refs: list[str]) -> list:
    """The feature views ``refs`` read from, in the order they first appear."""
    names = list(dict.fromkeys(parse_ref(ref)[0] for ref in refs))
    return [store.get_feature_view(name) for name in names]


def entity_keys(store, refs: list[str]) -> list[str]:
    """The join keys an entity table needs to look ``refs`` up, in first-seen order."""
    keys = [key for view in views_of(store, refs) for key in view.join_keys]
    return list(dict.fromkeys(keys))


def registry_version(store, refs: list[str]) -> str:
    """``sha256:<16 hex>`` of the specs of the feature views ``refs`` read from.

    Feast's own ``version_id`` is a random string that changes on every registry write
    (materializing included); this digest changes only when a definition that shaped the
    features does, so an unchanged training set keeps its fingerprint and cache key.
    """
    digest = hashlib.sha256()
    for view in sorted(views_of(store, refs), key=lambda v: v.name):
        spec = view.to_proto().spec
        for source in (spec.batch_source, spec.stream_source):
            source.ClearField("meta")  # apply times, not definitions
        digest.update(spec.SerializeToString(deterministic=True))
    return f"sha256:{digest.hexdigest()[:16]}"


def write_training_set(df, path: str, record: FeatureStoreRecord) -> None:
    """Writes ``df`` as Parquet to the local ``path`` with ``record`` in its key-value metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[METADATA_KEY] = json.dumps(record.to_dict(), sort_keys=True).encode()
    pq.write_table(table.replace_schema_metadata(metadata), path)


def read_record(uri: str) -> FeatureStoreRecord | None:
    """The lineage record in the Parquet file at ``uri`` (any URI), or None when it has none
    (a file that did not come from a feature store, or CSV)."""
    import pyarrow.parquet as pq

    if not uri.lower().endswith(".parquet"):
        return None
    filesystem, path = uris.filesystem_for(uri)
    metadata = pq.read_schema(path, filesystem=filesystem).metadata or {}
    if METADATA_KEY not in metadata:
        return None
    return FeatureStoreRecord.from_dict(json.loads(metadata[METADATA_KEY]))
