"""Smoke requests: evaluation rows sent over real HTTP to a served model, compared offline.

``Ready`` only says the pods are up; a smoke request proves the server answers with the
predictions this model gives offline (``model_io.predict``): the right model, the right
signature, the same preprocessing.

Bodies are ones TF Serving's REST API accepts (the runtime of a KServe TensorFlow predictor),
so the same requests work on a cluster and on the local server. TF Serving refuses JSON
``null``; a missing value is sent as the model's own marker (``model_io`` contract): ``NaN``
for a float feature (the bare token; TF Serving parses ``NaN``/``Infinity`` as numbers, and the
model imputes any non-finite value), ``""`` for a string and ``-1`` for an integer-coded
category. Values are typed by the signature (an int64 feature goes as a JSON integer, never
``3.0``, which TF Serving refuses for int64). The README's "Serve a model" section says the same
for clients.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

_V2_TYPES = {"float32": "FP32", "int64": "INT64", "string": "BYTES"}


class SmokeTestError(RuntimeError):
    """The served model could not be asked (HTTP error, bad response)."""


@dataclass
class SmokeResult:
    ok: bool
    url: str
    rows: int
    max_abs_diff: float | None
    reason: str


def encode(frame: pd.DataFrame, dtypes: dict[str, str] | None = None) -> dict[str, list]:
    """``{feature: [value, ...]}`` as JSON-ready Python values typed by the signature.

    Args:
        frame: Raw feature columns.
        dtypes: ``{feature: "float32" | "int64" | "string"}`` from the serving signature. Without
            it each column's type is guessed from pandas (strings, integers, else floats), which
            is right unless an integer-coded column holds missing values (pandas reads it as
            float, TF Serving then refuses its ``NaN``); pass the signature's types.

    Missing values become the model's markers (``NaN``, ``-1``, ``""``), never ``None``.
    """
    from components import model_io

    dtypes = _types(frame, dtypes)
    columns = {}
    for name in frame.columns:
        values = model_io.column_values(frame[name], dtypes[name])
        if dtypes[name] == "float32":
            columns[name] = [float(v) for v in values]
        elif dtypes[name] == "int64":
            columns[name] = [int(v) for v in values]
        else:
            columns[name] = [str(v) for v in values]
    return columns


def _types(frame: pd.DataFrame, dtypes: dict[str, str] | None) -> dict[str, str]:
    """``dtypes``, or a guess from pandas when the caller has no signature to hand."""
    if dtypes:
        return dtypes
    guessed = {}
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
            guessed[name] = "string"
        else:
            guessed[name] = "int64" if pd.api.types.is_integer_dtype(column) else "float32"
    return guessed


def instances(frame: pd.DataFrame, dtypes: dict[str, str] | None = None) -> list[dict]:
    """v1 row format: one ``{feature: value}`` object per row (see ``encode``)."""
    columns = encode(frame, dtypes)
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def v2_inputs(frame: pd.DataFrame, dtypes: dict[str, str] | None = None) -> list[dict]:
    """v2 tensors: one ``[n]`` tensor per feature, typed from the signature (see ``encode``)."""
    dtypes = _types(frame, dtypes)
    columns = encode(frame, dtypes)
    return [
        {"name": name, "shape": [len(frame)], "datatype": _V2_TYPES[dtypes[name]], "data": data}
        for name, data in columns.items()
    ]


def post_json(url: str, body: dict | None, timeout: float = 30.0) -> dict:
    """POSTs JSON and returns the decoded answer; raises SmokeTestError saying what failed."""
    # allow_nan: a missing float goes as the bare NaN token, which TF Serving and the local
    # server parse (JSON null is refused by TF Serving).
    data = b"" if body is None else json.dumps(body, allow_nan=True).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:500]
        raise SmokeTestError(f"POST {url} answered HTTP {exc.code}: {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise SmokeTestError(f"POST {url} failed: {exc}") from exc
    except ValueError as exc:
        raise SmokeTestError(f"POST {url} did not answer JSON: {exc}") from exc


def predict_v1(
    base_url: str, name: str, frame: pd.DataFrame, dtypes: dict[str, str] | None = None, timeout: float = 30.0
) -> np.ndarray:
    answer = post_json(
        f"{base_url.rstrip('/')}/v1/models/{name}:predict", {"instances": instances(frame, dtypes)}, timeout
    )
    if "predictions" not in answer:
        raise SmokeTestError(f"v1 answer from {base_url} has no 'predictions': {str(answer)[:300]}")
    return np.asarray(answer["predictions"], dtype=np.float64)


def predict_v2(
    base_url: str, name: str, frame: pd.DataFrame, dtypes: dict[str, str] | None = None, timeout: float = 30.0
) -> np.ndarray:
    answer = post_json(
        f"{base_url.rstrip('/')}/v2/models/{name}/infer", {"inputs": v2_inputs(frame, dtypes)}, timeout
    )
    outputs = {o.get("name"): o for o in answer.get("outputs", [])}
    if "predictions" not in outputs:
        raise SmokeTestError(f"v2 answer from {base_url} has no 'predictions' output: {str(answer)[:300]}")
    out = outputs["predictions"]
    return np.asarray(out["data"], dtype=np.float64).reshape(out["shape"])


def smoke(
    base_url: str,
    name: str,
    frame: pd.DataFrame,
    offline: np.ndarray,
    tolerance: float,
    *,
    protocol: str = "v1",
    dtypes: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> SmokeResult:
    """Sends ``frame`` (features only) to ``base_url`` and compares with ``offline``."""
    endpoint = f"{base_url} ({protocol})"
    try:
        if protocol == "v2":
            served = predict_v2(base_url, name, frame, dtypes, timeout)
        else:
            served = predict_v1(base_url, name, frame, dtypes, timeout)
    except SmokeTestError as exc:
        return SmokeResult(False, base_url, len(frame), None, str(exc))
    expected = np.asarray(offline, dtype=np.float64)
    if served.shape != expected.shape:
        return SmokeResult(
            False,
            base_url,
            len(frame),
            None,
            f"{endpoint} answered predictions of shape {served.shape}, offline gives {expected.shape}",
        )
    diff = float(np.max(np.abs(served - expected))) if served.size else 0.0
    if not np.isfinite(diff) or diff > tolerance:
        return SmokeResult(
            False,
            base_url,
            len(frame),
            diff,
            f"{endpoint}: served predictions differ from offline ones by up to {diff:.3g} "
            f"(tolerance {tolerance:g}) on {len(frame)} rows: the server does not serve this model",
        )
    return SmokeResult(
        True,
        base_url,
        len(frame),
        diff,
        f"{endpoint}: {len(frame)} rows served, max |served - offline| = {diff:.3g} <= {tolerance:g}",
    )


def wait_until_ready(base_url: str, name: str, timeout: float, process=None) -> None:
    """Polls ``GET /v1/models/<name>`` until the model says ready.

    Raises:
        SmokeTestError: the process exited or the timeout passed.
    """
    deadline = time.monotonic() + timeout
    url = f"{base_url.rstrip('/')}/v1/models/{name}"
    last = ""
    while True:
        if process is not None and process.poll() is not None:
            raise SmokeTestError(
                f"the model server exited with code {process.returncode} before {name} was ready"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if json.loads(response.read()).get("ready"):
                    return
        except (OSError, ValueError) as exc:
            last = str(exc)
        if time.monotonic() > deadline:
            raise SmokeTestError(f"{url} was not ready within {timeout:.0f} s ({last})")
        time.sleep(0.25)
