"""Prediction logs: one JSON record per served request, written by the serving side and read
back as a table by the monitor.

A record (one line of ``<log_dir>/<model>/<YYYY-MM-DD>/<HH>-<writer>.jsonl``, UTC):

    {"id": request id (the client's ``x-request-id``, else generated; answered in that header),
     "time": ISO-8601 UTC, "model": name, "version": registered version ("" when unknown),
     "status": HTTP status, "latency_ms": float, "error": message or null,
     "inputs": [{feature: value}, ...] one object per row, as the model got them (a request's values,
                completed from the online store for a model with online features),
     "outputs": [prediction, ...] one per row (P(class 1), class probabilities or a value),
     "flags": [[{"feature", "flag", "value", "expected"}, ...], ...] one list per row}

The local model server writes records directly (``Writer``). On a cluster, KServe's inference
logger sends every request and response as CloudEvents to a URL; ``from_cloudevents`` pairs
them (by ``ce-id``) into the same record, so one reader serves both. Paths go through the URI
layer, so logs may live on gs://, s3:// or minio:// as well as on a local folder.

Runs in the runtime image; never imports kfp or TensorFlow.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
ROW_COLUMNS = ("request_id", "row", "time", "model", "version", "status", "latency_ms", "error")
"""The columns ``read`` puts before the features; then ``prediction``, ``flags``, ``flagged``."""


def new_request_id() -> str:
    return uuid.uuid4().hex


def record(
    *,
    request_id: str,
    model: str,
    version: str,
    inputs: list[dict],
    outputs: list,
    flags: list[list[dict]] | None = None,
    status: int = 200,
    latency_ms: float = 0.0,
    error: str | None = None,
    time: datetime | None = None,
) -> dict[str, Any]:
    """One log record (see the module docstring)."""
    return {
        "id": request_id,
        "time": (time or datetime.now(timezone.utc)).isoformat(timespec="milliseconds"),
        "model": model,
        "version": version,
        "status": status,
        "latency_ms": round(float(latency_ms), 3),
        "error": error,
        "inputs": inputs,
        "outputs": outputs,
        "flags": flags if flags is not None else [[] for _ in inputs],
    }


class Writer:
    """Appends records to hourly JSON-lines files under ``log_dir`` (a local folder).

    One file per writer process and hour, so several server workers never interleave lines;
    each line is flushed when written, so a killed server loses at most the line in flight; a
    file or folder removed under it (rotation, cleanup) is created again.
    """

    def __init__(self, log_dir: str):
        if not log_dir:
            raise ValueError("log_dir must name a folder for the prediction logs")
        self.log_dir = log_dir
        self.writer = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._lock = threading.Lock()
        self._path = ""
        self._file = None
        self._hour: tuple[str, str, str] = ("", "", "")  # (model, hour, file): checked once an hour

    def path_for(self, model: str, when: datetime) -> str:
        from components.model_server import inside  # the one guard against names leaving a folder

        return str(inside(self.log_dir, model, when.strftime("%Y-%m-%d"), f"{when:%H}-{self.writer}.jsonl"))

    def write(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, default=_plain, allow_nan=True) + "\n"
        model, hour = entry["model"], entry["time"][:13]  # ISO time up to the hour
        if self._hour[:2] != (model, hour):
            self._hour = (model, hour, self.path_for(model, datetime.fromisoformat(entry["time"])))
        path = self._hour[2]
        with self._lock:
            if path != self._path or self._deleted():
                self.close()
                os.makedirs(os.path.dirname(path), exist_ok=True)
                self._file, self._path = open(path, "a", encoding="utf-8"), path  # noqa: SIM115
            self._file.write(line)
            self._file.flush()

    def _deleted(self) -> bool:
        """The open file was removed (a cleanup or rotation job): write a new one, not into it."""
        return self._file is not None and os.fstat(self._file.fileno()).st_nlink == 0

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file, self._path = None, ""


def _plain(value):
    """numpy scalars and arrays as JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def from_cloudevents(request: tuple[dict, Any], response: tuple[dict, Any], version: str = "") -> dict:
    """The record for one request/response pair of KServe's inference logger.

    Each side is ``(headers, body)``: CloudEvents binary mode, ``ce-id`` the request id shared
    by both, ``ce-time`` when it was sent, ``ce-inferenceservicename`` the service,
    ``ce-annotations`` the predictor pod's annotations that the logger's metadataAnnotations
    name (JSON; the model version comes from there unless ``version`` is given); the body is
    the v1 request (``instances``) and response (``predictions``).
    """
    request_headers = {k.lower(): v for k, v in request[0].items()}
    version = version or _annotated_version(request_headers.get("ce-annotations", ""))
    response_headers = {k.lower(): v for k, v in response[0].items()}
    request_body, response_body = _json(request[1]), _json(response[1])
    sent = request_headers.get("ce-time")
    answered = response_headers.get("ce-time")
    latency = 0.0
    if sent and answered:
        latency = (_parse_time(answered) - _parse_time(sent)).total_seconds() * 1000
    inputs = request_body.get("instances") or []
    error = None if "predictions" in response_body else str(response_body.get("error") or response_body)
    return record(
        request_id=request_headers.get("ce-id") or new_request_id(),
        model=request_headers.get("ce-inferenceservicename", ""),
        version=version,
        inputs=inputs,
        outputs=response_body.get("predictions") or [],
        flags=response_body.get("flags"),
        status=200 if error is None else 500,
        latency_ms=latency,
        error=error,
        time=_parse_time(sent) if sent else None,
    )


def _annotated_version(annotations: str) -> str:
    from components.kserve import VERSION_LABEL

    try:
        return str((json.loads(annotations) if annotations else {}).get(VERSION_LABEL) or "")
    except (ValueError, AttributeError):
        logger.warning("ce-annotations %r is not a JSON object: the record has no model version", annotations)
        return ""


def _json(body) -> dict:
    if isinstance(body, (bytes, bytearray)):
        body = body.decode()
    return json.loads(body) if isinstance(body, str) else (body or {})


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def read(log_uri: str, model: str, start: datetime | None = None, end: datetime | None = None):
    """The records of ``model`` with ``start <= time < end`` as a pandas DataFrame, one row per
    served row: ROW_COLUMNS, every input feature, ``prediction``, ``flags`` (a list) and
    ``flagged`` (bool). A request that failed (no outputs) is one row with its status and error.

    ``log_uri`` is the writer's ``log_dir`` or a copy of it on any scheme the URI layer knows;
    only the day folders the window touches are read.
    """
    import pandas as pd

    from components import uris

    rows = []
    for path in _day_files(log_uri, model, start, end):
        for entry in _records(path, uris.read_bytes(path)):
            when = _parse_time(entry["time"])
            if (start and when < start) or (end and when >= end):
                continue
            rows.extend(_rows(entry, when))
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=[*ROW_COLUMNS, "prediction", "flags", "flagged"])
    return frame.sort_values(["time", "request_id", "row"], kind="stable").reset_index(drop=True)


def _records(path: str, data: bytes):
    """The complete records of one file. A writer appends while servers run, so the bytes after
    the last newline are a line still in flight (or one a killed writer never finished): not a
    record yet (the writer escapes non-ASCII, so splitting the bytes never cuts a character)."""
    lines = data.split(b"\n")
    for number, line in enumerate(lines[:-1], start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError as error:
            raise ValueError(f"{path} line {number} is not a prediction-log record: {error}") from None


def _rows(entry: dict, when: datetime) -> list[dict]:
    base = {
        "request_id": entry["id"],
        "time": when,
        "model": entry["model"],
        "version": entry.get("version", ""),
        "status": entry.get("status", 200),
        "latency_ms": entry.get("latency_ms", 0.0),
        "error": entry.get("error"),
    }
    inputs, outputs = entry.get("inputs") or [], entry.get("outputs") or []
    flags = entry.get("flags") or [[] for _ in inputs]
    if not outputs:
        return [{**base, "row": 0, "prediction": None, "flags": [], "flagged": False}]
    return [
        {
            **base,
            "row": i,
            **(inputs[i] if i < len(inputs) else {}),
            "prediction": output,
            "flags": flags[i] if i < len(flags) else [],
            "flagged": bool(flags[i]) if i < len(flags) else False,
        }
        for i, output in enumerate(outputs)
    ]


def models(log_uri: str) -> list[str]:
    """The models that have records under ``log_uri``."""
    from components import uris

    files = [p for p in uris.list_files(log_uri) if p.endswith(".jsonl")]
    return sorted({p.rstrip("/").split("/")[-3] for p in files})


def _day_files(log_uri: str, model: str, start: datetime | None, end: datetime | None) -> list[str]:
    from components import uris

    root = uris.join(log_uri, model)
    if not uris.exists(root):
        return []
    files = [f for f in uris.list_files(root) if f.endswith(".jsonl")]
    if start is None and end is None:
        return sorted(files)
    first = (start or datetime.min.replace(tzinfo=timezone.utc)).date()
    last = ((end or datetime.max.replace(tzinfo=timezone.utc)) - timedelta(microseconds=1)).date()

    def day(path: str):
        try:
            return datetime.strptime(path.rstrip("/").split("/")[-2], "%Y-%m-%d").date()
        except ValueError:
            return None

    return sorted(f for f in files if (d := day(f)) is not None and first <= d <= last)


def join_labels(rows, labels, label: str, key: str = "request_id"):
    """The label of each logged row, from a table of late labels: (label values, row mask).

    ``rows`` is ``read``'s table; ``labels`` holds ``key`` and ``label`` (and ``row`` to label
    the rows of multi-row requests one by one). A corrected label (a later line for the same
    key) wins. Returns the labels of the labelled rows and a boolean mask into ``rows``.

    Raises:
        ValueError: ``labels`` lacks ``key`` or ``label``, ``rows`` lacks ``key``, or a
            request-id join is ambiguous (multi-row requests, labels without ``row``).
    """
    from components import model_io

    for column, what in ((key, "join key"), (label, "label")):
        if not column or column not in labels.columns:
            raise ValueError(f"the labels have no {what} column {column!r} (columns: {list(labels.columns)})")
    if key not in rows.columns:
        raise ValueError(f"join key {key!r} is neither 'request_id' nor a logged input column")
    keys = [key]
    if key == "request_id" and "row" in labels.columns:
        keys.append("row")
    elif key == "request_id" and len(rows) and rows["row"].max() > 0:
        raise ValueError("some requests hold several rows: give the labels a 'row' column to join on")
    labels = labels[labels[label].notna()].drop_duplicates(keys, keep="last")
    left, right = rows[keys].copy(), labels[[*keys, label]].copy()
    for column in keys:  # one spelling for the key: CSV reads ids as numbers, JSON logs as strings
        left[column] = left[column].map(model_io.label_key)
        right[column] = right[column].map(model_io.label_key)
    joined = left.merge(right, on=keys, how="left")
    mask = joined[label].notna().to_numpy()
    return joined.loc[mask, label], mask
