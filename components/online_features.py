"""Feast online features for a served model: what the model server looks up per request.

A model trained on a Feast training set carries the record of where its features came from
(``train_model`` writes it to ``<version>/assets.extra/feature_store.json``, beside the request
contract, so every copy of the version folder keeps it: MLflow's registered folder, KServe's
``storageUri``, Vertex): the repository, the feature references (``view:feature``, the ones the
model uses) and the entity keys. ``OnlineFeatures`` opens that repository (or the one the
server is told to use: production's online store is whatever its ``feature_store.yaml``
names), checks every reference against the registry when the model loads, and completes a
request whose rows carry only entity keys (and any request-time features): one
``get_online_features`` call per request, however many rows it has (the server joins
concurrent requests into one call, as it joins their model calls).

Every value the store did not deliver as current is served but flagged, in the same per-row
flag lists the request contract uses (``{"feature", "flag", "value", "expected"}``):

- ``not_found``: the store has no row for the entity (the model imputes the missing value);
- ``null_value``: the store has the entity but a null value (imputed too);
- ``outside_max_age``: the value is older than its feature view's ``ttl``; Feast's own lookup
  returns such values with the status PRESENT (only its precomputed path says
  OUTSIDE_MAX_AGE), so the age is judged here, from the value's event time.

Runs in the runtime image; Feast is imported when a store is opened, never at import time.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time

logger = logging.getLogger(__name__)

RECORD_FILE = os.path.join("assets.extra", "feature_store.json")
NOT_FOUND, NULL_VALUE, OUTSIDE_MAX_AGE = "not_found", "null_value", "outside_max_age"


class EntityKeyError(ValueError):
    """A row that needs online features lacks an entity key, or its key has the wrong type."""


def write_record(version_dir: str, record: dict) -> str:
    """Writes the model's feature-store record into its version folder; returns the path."""
    path = os.path.join(version_dir, RECORD_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(record, stream, indent=1, sort_keys=True)
    return path


def read_record(version_dir: str) -> dict | None:
    """The feature-store record of a model version folder, or None (not trained from Feast)."""
    path = os.path.join(version_dir, RECORD_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as stream:
        return json.load(stream)


class OnlineFeatures:
    """The online lookup of one model: its feature references, entity keys and store.

    Not safe to call from several threads at once: Feast's SQLite store shares one connection
    (concurrent calls fail with ``sqlite3.InterfaceError``); the model server makes one lookup
    at a time.

    Args:
        record: The model's feature-store record (``read_record``).
        repository: The Feast repository (path or URI) to read from instead of the record's.

    Raises:
        ValueError: the record names no feature or entity key; a reference the registry does
            not know (named, with the known ones); two features share a name.
    """

    def __init__(self, record: dict, repository: str = ""):
        from components import feature_store

        self.refs = list(record.get("feature_refs") or [])
        self.entity_keys = list(record.get("entity_keys") or [])
        if not self.refs or not self.entity_keys:
            raise ValueError(
                f"a feature-store record needs feature_refs and entity_keys, got {self.refs!r} "
                f"and {self.entity_keys!r}"
            )
        self.repository = repository or record["repository"]
        self.store = feature_store.open_store(self.repository)
        feature_store.resolve_features(self.store, self.refs, "")
        views = {view.name: view for view in feature_store.views_of(self.store, self.refs)}
        self.names = [feature_store.parse_ref(ref)[1] for ref in self.refs]
        duplicates = sorted({n for n in self.names if self.names.count(n) > 1})
        if duplicates:
            raise ValueError(f"features {duplicates} come from more than one view in {self.refs}")
        self.ref_of = dict(zip(self.names, self.refs, strict=True))
        # A ttl of 0 (or none) means the view's values never go stale, as in Feast.
        ttls = {view: (v.ttl.total_seconds() if v.ttl else 0.0) or None for view, v in views.items()}
        self.max_age_s = {name: ttls[feature_store.parse_ref(ref)[0]] for name, ref in self.ref_of.items()}
        self.key_types = _key_types(views.values())
        logger.info(
            "online features %s by %s from %s", self.refs, self.entity_keys, self.repository
        )

    def lookup(self, entities: dict[str, list]) -> tuple[dict[str, list], list[list[dict]]]:
        """The features of every row of ``entities`` (``{entity key: values}``), in one call.

        Returns:
            ``{feature name: values}`` (None where missing) and the flags per row.
        """
        from feast.protos.feast.serving.ServingService_pb2 import FieldStatus

        rows = len(next(iter(entities.values())))
        response = self.store.get_online_features(features=self.refs, entity_rows=entities)
        values = response.to_dict(include_event_timestamps=True)
        names = response.proto.metadata.feature_names.val
        statuses = {name: v.statuses for name, v in zip(names, response.proto.results, strict=True)}
        now = time.time()
        flags: list[list[dict]] = [[] for _ in range(rows)]
        for name in self.names:
            column, stamps, status = values[name], values[f"{name}__ts"], statuses[name]
            max_age = self.max_age_s[name]
            for row in range(rows):
                value = column[row]
                if status[row] == FieldStatus.NOT_FOUND:
                    flags[row].append(self._flag(name, NOT_FOUND, None, self.ref_of[name]))
                elif value is None or (isinstance(value, float) and math.isnan(value)):
                    flags[row].append(self._flag(name, NULL_VALUE, None, self.ref_of[name]))
                elif status[row] == FieldStatus.OUTSIDE_MAX_AGE or (
                    max_age is not None and now - stamps[row] > max_age
                ):
                    age = round(now - stamps[row])
                    flags[row].append(
                        self._flag(name, OUTSIDE_MAX_AGE, value, {"max_age_s": max_age, "age_s": age})
                    )
        return {name: values[name] for name in self.names}, flags

    @staticmethod
    def _flag(name: str, flag: str, value, expected) -> dict:
        return {"feature": name, "flag": flag, "value": value, "expected": expected}

    def lookup_rows(self, entities: dict) -> list[tuple[dict, list[dict]]]:
        """``lookup`` per row: ``({feature: value}, flags)`` for every row of ``entities``
        (``{entity key: array}``, as the model server's ``Batcher`` joins concurrent requests)."""
        values, flags = self.lookup({key: keys.tolist() for key, keys in entities.items()})
        return [({name: values[name][i] for name in self.names}, flags[i]) for i in range(len(flags))]

    def wanted(self, rows: list[dict] | None, columns: dict[str, list] | None) -> tuple[list[int], dict]:
        """What a request (v1 ``rows``, or ``columns``: v2 tensors, v1 columnar) lacks: the
        indices of the rows to complete and their entity keys ``{key: array}``; no rows when
        it carries every online feature. A row lacks a feature it does not name; columns
        lack the features they have no column for.

        Raises:
            EntityKeyError: a row to complete lacks an entity key or has a wrong-typed one.
        """
        import numpy as np

        if rows is not None:
            needy = [i for i, row in enumerate(rows) if any(name not in row for name in self.names)]
            present = [{k for k in self.entity_keys if k in rows[i]} for i in needy]
        else:
            count = len(next(iter(columns.values()), []))
            needy = list(range(count)) if any(name not in columns for name in self.names) else []
            present = [{k for k in self.entity_keys if k in columns}] * len(needy)
        if not needy:  # every feature is in the request: no lookup, no key needed
            return [], {}
        entities = {}
        for key in self.entity_keys:
            missing = [i for i, keys in zip(needy, present, strict=True) if key not in keys]
            if missing:
                raise EntityKeyError(
                    f"row {missing[0]}: entity key {key!r} is missing; a request that does not carry "
                    f"every feature {self.names} needs {self.entity_keys} to look them up"
                )
            values = [rows[i][key] for i in needy] if rows is not None else columns[key]
            entities[key] = np.array(self._keys(key, values, needy))
        return needy, entities

    def fill(self, rows, columns, needy: list[int], fetched: list) -> tuple:
        """The request completed with ``fetched`` (``lookup_rows`` of ``wanted``'s keys):
        ``(rows, columns, flags per row)``; what the request carries is kept as sent, and
        only the values filled in are flagged."""
        if rows is not None:
            flags: list[list[dict]] = [[] for _ in rows]
            completed = list(rows)
            for (values, found), i in zip(fetched, needy, strict=True):
                absent = {name for name in self.names if name not in rows[i]}
                completed[i] = {**{name: values[name] for name in self.names if name in absent}, **rows[i]}
                flags[i] = [flag for flag in found if flag["feature"] in absent]
            return completed, None, flags
        if not needy:
            return None, columns, [[] for _ in next(iter(columns.values()), [])]
        absent = [name for name in self.names if name not in columns]
        added = {name: [values[name] for values, _ in fetched] for name in absent}
        flags = [[flag for flag in found if flag["feature"] in absent] for _, found in fetched]
        return None, {**columns, **added}, flags

    def _keys(self, key: str, values: list, rows) -> list:
        """Entity key values as Feast takes them (the key's type), or EntityKeyError."""
        kind = self.key_types.get(key)
        if kind is None:  # a type Feast infers or we do not check: Feast judges the values
            return list(values)
        out = []
        for row, value in zip(rows, values, strict=True):
            if kind == "int" and isinstance(value, float) and value.is_integer():
                value = int(value)  # JSON numbers and v2 FP tensors
            if isinstance(value, bytes):
                value = value.decode("utf-8")
            integer = isinstance(value, int) and not isinstance(value, bool)
            if not (integer if kind == "int" else isinstance(value, str)):
                expected = "an integer" if kind == "int" else "a string"
                raise EntityKeyError(f"row {row}: entity key {key!r} must be {expected}, got {value!r}")
            out.append(value)
        return out



def _key_types(views) -> dict[str, str]:
    """``{join key: "int" | "string"}`` of the views' entity columns (which ``feast apply``
    types from the sources); other types are not checked here."""
    from feast.value_type import ValueType

    kinds = {ValueType.INT64: "int", ValueType.INT32: "int", ValueType.STRING: "string"}
    types = {}
    for view in views:
        for column in view.entity_columns:
            kind = kinds.get(column.dtype.to_value_type())
            if kind:
                types[column.name] = kind
    return types
