"""What a served model accepts: each feature's type, its training range or categories.

``train_model`` writes the contract beside the SavedModel (``<version>/assets.extra/
request_contract.json``: TF Serving ignores ``assets.extra``, so the model folder still
serves unchanged there) from the rows it trained on; the model server checks every request
against it before predicting:

- a value of the wrong type (``"forty"`` for a float, ``2.5`` for an integer-coded category,
  a number for a string) is refused: ``RequestError`` names the row, feature, value and the
  expected type (HTTP 400), as TF Serving would refuse it;
- a missing required feature is refused (HTTP 400);
- a value outside the training range, a category never seen in training and a field the model
  does not know are served but flagged: one list of ``{"feature", "flag", "value",
  "expected"}`` per row.

Missing values (``null``, ``NaN``, ``""``, ``-1`` for integer codes) are not flagged: the model
imputes them, and the monitor's serving statistics see their rate. Plain Python on the hot
path: no TFDV, no pandas per row. Never imports kfp.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from typing import Any

FILE = os.path.join("assets.extra", "request_contract.json")
MAX_CATEGORIES = 1000  # larger vocabularies are not listed (nothing is flagged as unseen)
OUT_OF_RANGE, UNSEEN, UNEXPECTED = "out_of_range", "unseen_category", "unexpected_feature"


class RequestError(ValueError):
    """A request the model cannot answer (HTTP 400): the message names what and where."""


def build(frame, kinds: dict[str, str]) -> dict[str, Any]:
    """The contract from the training rows: ``kinds`` is {feature: float|int|string}."""
    from components import model_io

    features = {}
    for name, kind in kinds.items():
        column = frame[name]
        entry: dict[str, Any] = {"type": kind}
        if kind == "float":
            values = column.astype("float64")
            values = values[values.notna() & values.map(math.isfinite)]
            if len(values):
                entry.update(min=float(values.min()), max=float(values.max()))
        else:
            present = column[column.notna()]
            if kind == "int":
                present = present.astype("int64")
                present = present[present != model_io.MISSING_INT]
            else:
                present = present.astype(str)
                present = present[present != ""]
            categories = sorted(present.unique().tolist())
            if len(categories) <= MAX_CATEGORIES:
                entry["categories"] = categories
        features[name] = entry
    return {"features": features}


def write(version_dir: str, contract: dict) -> str:
    path = os.path.join(version_dir, FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # "_" keys are in-memory lookups built by check(), not part of the contract.
    features = {
        n: {k: v for k, v in e.items() if not k.startswith("_")} for n, e in contract["features"].items()
    }
    with open(path, "w", encoding="utf-8") as stream:
        json.dump({**contract, "features": features}, stream, indent=1, sort_keys=True)
    return path


def load(version_dir: str) -> dict | None:
    """The contract of a model version folder, or None for a model exported before contracts."""
    path = os.path.join(version_dir, FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as stream:
        return json.load(stream)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _type_error(kind: str, value) -> str:
    """Why ``value`` cannot be a ``kind`` tensor element, or "" when it can (numpy scalars
    count as the numbers they are; booleans are not numbers here, as in TF Serving)."""
    if _missing(value):
        return ""
    boolean = isinstance(value, bool) or type(value).__name__ == "bool_"
    if kind == "float":
        return "" if isinstance(value, numbers.Real) and not boolean else "expected a number (float)"
    if kind == "int":
        integral = isinstance(value, numbers.Integral) or (isinstance(value, float) and value.is_integer())
        return "" if integral and not boolean else "expected an integer category code (int64)"
    return "" if isinstance(value, str) else "expected a string"


def check(rows: list[dict], contract: dict) -> list[list[dict]]:
    """Checks v1 rows (``{feature: value}``) against the contract; returns the flags per row.

    Raises:
        RequestError: a missing feature or a value of the wrong type (the first one found).
    """
    features = contract["features"]
    flags: list[list[dict]] = []
    for index, row in enumerate(rows):
        missing = sorted(set(features) - set(row))
        if missing:
            raise RequestError(
                f"row {index}: missing features {missing} (the model needs {sorted(features)})"
            )
        row_flags = []
        for name, value in row.items():
            entry = features.get(name)
            if entry is None:
                row_flags.append({"feature": name, "flag": UNEXPECTED, "value": value, "expected": None})
                continue
            problem = _type_error(entry["type"], value)
            if problem:
                raise RequestError(f"row {index}: feature {name!r}: {problem}, got {value!r}")
            row_flags.extend(_flags(name, entry, value))
        flags.append(row_flags)
    return flags


def check_columns(columns: dict[str, list], contract: dict) -> list[list[dict]]:
    """The same flags for columnar data (v2 tensors, already typed by their datatype)."""
    features = contract["features"]
    n = len(next(iter(columns.values()))) if columns else 0
    flags: list[list[dict]] = [[] for _ in range(n)]
    for name, values in columns.items():
        entry = features.get(name)
        for index, value in enumerate(values):
            if entry is None:
                flags[index].append({"feature": name, "flag": UNEXPECTED, "value": value, "expected": None})
            else:
                flags[index].extend(_flags(name, entry, value))
    return flags


def _flags(name: str, entry: dict, value) -> list[dict]:
    from components import model_io

    if _missing(value) or value == "" or (entry["type"] == "int" and value == model_io.MISSING_INT):
        return []
    if entry["type"] == "float":
        low, high = entry.get("min"), entry.get("max")
        if low is not None and not low <= value <= high:
            return [{"feature": name, "flag": OUT_OF_RANGE, "value": value, "expected": [low, high]}]
        return []
    categories = entry.get("categories")
    if categories is None:
        return []
    if entry["type"] == "int":
        value = int(value)
    known = entry.get("_known")
    if known is None:  # O(1) membership, built once per loaded contract
        known = entry["_known"] = frozenset(categories)
    if value not in known:
        return [
            {"feature": name, "flag": UNSEEN, "value": value, "expected": f"{len(categories)} categories"}
        ]
    return []
