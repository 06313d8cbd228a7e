"""Local KServe model server for our TensorFlow SavedModels (v1 and v2 protocols).

A ``kserve.Model`` subclass loads a SavedModel in the TF-Serving layout through
``components.model_io`` (so it is fed exactly as evaluation feeds it) and answers the KServe
v1 protocol (``/v1/models/<name>:predict``, the same as TF Serving's REST API on a cluster)
and the v2 / Open Inference Protocol (``/v2/models/<name>/infer``, model metadata with every
input's and output's datatype and shape at ``GET /v2/models/<name>``).

A missing value is sent as TF Serving takes it, so one request works on both: the bare token
``NaN`` for a float feature (not valid strict JSON, but TF Serving's parser and this server
accept it; ``Infinity`` too, the model treats any non-finite float as missing), ``""`` for a
string, ``-1`` for an integer-coded category. JSON ``null`` is accepted here too (read as
missing) but TF Serving refuses it: clients that must work on a cluster never send it.

A model trained from a Feast training set (its version folder holds ``assets.extra/
feature_store.json``, see ``online_features``) also takes rows that carry only the entity
keys: what a row lacks comes from the online store (``--feature-repo`` names the repository,
default the recorded one), and values missing or older than their view's ttl are flagged.

Three ways to say what to serve::

    # a model folder (<dir>/<version>/saved_model.pb)
    python -m components.model_server --model-dir /models/churn --model-name churn --http-port 8080
    # a registered MLflow version (alias or version number), downloaded first
    python -m components.model_server --registered-model churn --alias production \\
        --tracking-uri http://127.0.0.1:5000 --http-port 8080
    # every pointer <name>.json in a serving folder, as written by deploy_model(target="local");
    # deploy_model tells the server to re-read a pointer with POST /v2/repository/models/<name>/load
    python -m components.model_server --serving-dir /srv/ct-serving --http-port 8080

Calling it::

    curl localhost:8080/v1/models/churn                      # {"name": "churn", "ready": true}
    curl -X POST localhost:8080/v1/models/churn:predict -H 'content-type: application/json' \\
      -d '{"instances": [{"age": 41, "tenure_months": 12, "monthly_charges": 70.5,
           "total_charges": NaN, "support_calls": 3, "plan": "basic", "region": "north",
           "payment_method": "card", "contract_type": 0}]}'
    # -> {"predictions": [0.73]}
    curl -X POST localhost:8080/v2/models/churn/infer -H 'content-type: application/json' \\
      -d '{"inputs": [{"name": "age", "shape": [1], "datatype": "FP32", "data": [41]},
                      {"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["basic"]}, ...]}'
    # -> {"model_name": "churn", "outputs": [{"name": "predictions", "shape": [1],
    #     "datatype": "FP32", "data": [0.73]}], ...}
    curl localhost:8080/v2/models/churn    # {"inputs": [{"name": "age", "datatype": "FP32",
                                           #   "shape": [-1]}, ...], "outputs": [...]}
    curl -X POST localhost:8080/v2/repository/models/churn/load   # re-read churn.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

POINTER_SUFFIX = ".json"
PREVIOUS_SUFFIX = ".previous.json"


class UnsafePathError(ValueError):
    """A name or version would lead out of the serving folder."""


def inside(serving_dir: str | os.PathLike, *parts: str) -> Path:
    """``<serving_dir>/<parts...>``, refusing any part (a model name from a request URL, a
    version string) that would lead out of the serving folder (``..``, absolute paths)."""
    root = Path(serving_dir).resolve()
    path = root.joinpath(*parts).resolve()
    if path != root and root not in path.parents:
        raise UnsafePathError(f"{'/'.join(parts)!r} leads out of the serving folder {root}")
    return path


def read_pointer(serving_dir: str | os.PathLike, name: str) -> dict[str, Any]:
    """The pointer ``<serving_dir>/<name>.json``; its ``model_dir`` made absolute.

    Raises:
        FileNotFoundError: naming the pointer, when there is none.
        UnsafePathError: the name or the pointer's folder leads out of the serving folder.
    """
    path = inside(serving_dir, f"{name}{POINTER_SUFFIX}")
    if not path.is_file():
        raise FileNotFoundError(f"no model pointer {path} (deploy_model target='local' writes it)")
    pointer = json.loads(path.read_text())
    # Relative to the serving folder, so it can be mounted anywhere.
    return {**pointer, "model_dir": str(inside(serving_dir, pointer["model_dir"]))}


def pointer_names(serving_dir: str | os.PathLike) -> list[str]:
    """Names with a current pointer in ``serving_dir`` (``.previous.json`` files excluded)."""
    return sorted(
        p.name[: -len(POINTER_SUFFIX)]
        for p in Path(serving_dir).glob(f"*{POINTER_SUFFIX}")
        if not p.name.endswith(PREVIOUS_SUFFIX) and not p.name.startswith(".")
    )


V2_DATATYPES = {"float32": "FP32", "int64": "INT64", "string": "BYTES"}
"""Open Inference Protocol datatype of each signature dtype the model contract allows."""


_METRICS: dict = {}


def _metric(name: str):
    """Our Prometheus metrics (kserve's server exposes them at /metrics), made once per process:
    ``flags`` counts values served but flagged; ``batch_rows`` observes the rows of each model
    call, so its count is the number of calls and its sum the rows they answered."""
    if not _METRICS:
        from prometheus_client import Counter, Histogram

        _METRICS["flags"] = Counter(
            "kfp_ct_request_flags", "Request values served but flagged", ["model", "feature", "flag"]
        )
        _METRICS["batch_rows"] = Histogram(
            "kfp_ct_batch_rows",
            "Rows per model call (concurrent requests batched together)",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
        )
    return _METRICS[name]


DEFAULT_MAX_BATCH_ROWS = 128
"""Rows one model call answers at most when concurrent requests are batched."""
DEFAULT_MAX_BATCH_WAIT_MS = 0.0
"""How long a batch that is not full waits for more requests: none by default, a lone request
goes at once; batches form from the requests that arrive while the model is busy."""


INLINE_ROWS = 16
"""A lone request of at most this many rows is predicted on the event loop itself."""


class Batcher:
    """Concurrent requests answered by one model call (``predict``: arrays -> predictions).

    A call takes the request that waits longest and every other waiting one, in order, up to
    ``max_rows`` rows (a larger request goes alone, never split); when the batch is not full it
    waits up to ``max_wait_s`` for more. One call runs at a time, in a thread (TensorFlow
    releases the GIL), while the event loop reads the next requests. If a batched call fails,
    each of its requests is retried alone, so an error reaches only the request that caused it.
    ``observe(rows)`` is told the size of each call.
    """

    def __init__(self, predict, max_rows: int, max_wait_s: float, observe=None):
        if max_rows < 1:
            raise ValueError(f"max_batch_rows must be at least 1, got {max_rows}")
        if max_wait_s < 0:
            raise ValueError(f"max_batch_wait must not be negative, got {max_wait_s}")
        self._predict, self.max_rows, self.max_wait_s = predict, max_rows, max_wait_s
        self._observe = observe or (lambda rows: None)
        self._queue: asyncio.Queue = asyncio.Queue()
        self._worker: asyncio.Task | None = None

    async def predict(self, arrays: dict, rows: int):
        """The predictions for one request's ``{feature: array}`` of ``rows`` rows."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put_nowait((arrays, rows, future))
        # The worker runs only while requests wait: a replaced model leaves no task behind.
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        held = None  # the request that did not fit into the previous batch
        while held is not None or not self._queue.empty():
            batch = [held or self._queue.get_nowait()]
            held = None
            rows = batch[0][1]
            deadline = asyncio.get_running_loop().time() + self.max_wait_s
            while rows < self.max_rows:
                item = await self._next(deadline)
                if item is None:
                    break
                if rows + item[1] > self.max_rows:
                    held = item
                    break
                batch.append(item)
                rows += item[1]
            await self._answer(batch, rows)

    async def _next(self, deadline: float):
        """The next waiting request, waiting until ``deadline`` for one; None if none came."""
        if not self._queue.empty():
            return self._queue.get_nowait()
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return None
        try:
            return await asyncio.wait_for(self._queue.get(), remaining)
        except TimeoutError:
            return None

    async def _answer(self, batch: list, rows: int) -> None:
        loop = asyncio.get_running_loop()
        arrays = batch[0][0]
        if len(batch) > 1:
            import numpy as np

            arrays = {name: np.concatenate([item[0][name] for item in batch]) for name in arrays}
        try:
            self._observe(rows)
            if len(batch) == 1 and rows <= INLINE_ROWS and self._queue.empty():
                # Alone and small: a hop to a thread would cost a third of the model call, and
                # no other request waits to be read meanwhile.
                predictions = self._predict(arrays)
            else:
                predictions = await loop.run_in_executor(None, self._predict, arrays)
        except Exception as exc:  # noqa: BLE001 - handed to the requests that wait for it
            if len(batch) == 1:
                _settle(batch[0][2], error=exc)
                return
            for item in batch:  # alone, so that only the request at fault gets the error
                await self._answer([item], item[1])
            return
        start = 0
        for _, count, future in batch:
            _settle(future, predictions[start : start + count])
            start += count


def _settle(future: asyncio.Future, result=None, error: BaseException | None = None) -> None:
    if future.done():  # the client went away and its request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _model_classes(
    log_dir: str = "",
    check_requests: bool = True,
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
    max_batch_wait_ms: float = DEFAULT_MAX_BATCH_WAIT_MS,
    feature_repo: str = "",
):
    """The kserve classes, imported lazily (kserve parses sys.argv at import). ``log_dir``:
    where every request is logged (``prediction_log``); ``check_requests``: refuse wrongly
    typed values and flag unusual ones (``request_contract``) before predicting;
    ``max_batch_rows``/``max_batch_wait_ms``: how concurrent requests are batched (``Batcher``;
    1 row: every request is its own model call); ``feature_repo``: the Feast repository that
    models trained from Feast read their online features from (default: the one each model's
    record names, ``online_features``)."""
    import kserve
    import numpy as np
    from kserve.errors import InvalidInput

    from components import model_io, online_features, prediction_log, request_contract

    writer = prediction_log.Writer(log_dir) if log_dir else None

    def tensor_metadata(name: str, spec) -> dict:
        """One OIP metadata entry; -1 marks a variable-size dimension (the batch)."""
        shape = [-1 if d is None else int(d) for d in spec.shape.as_list()]
        datatype = V2_DATATYPES.get(spec.dtype.name, spec.dtype.name.upper())
        return {"name": name, "datatype": datatype, "shape": shape}

    class SavedModelModel(kserve.Model):
        """One SavedModel, served under ``name`` (v1 instances/inputs, v2 tensors by feature)."""

        def __init__(self, name: str, model_dir: str, version: str = ""):
            super().__init__(name, return_response_headers=True)  # x-request-id
            self.model_dir = model_dir
            self.version = version
            self.loaded = None
            self.ready = False

        def load(self) -> bool:
            self.loaded = model_io.load(self.model_dir)
            version_dir = model_io.version_dir(self.model_dir)
            self.contract = request_contract.load(version_dir) if check_requests else None
            self.inputs = model_io.serving_inputs(self.loaded)
            record = online_features.read_record(version_dir)
            # An unknown feature reference fails here, at load, not at the first request.
            self.online = online_features.OnlineFeatures(record, feature_repo) if record else None
            # Entity keys travel with a request (and into its log) but are not the model's inputs.
            self.keys_only = set(self.online.entity_keys) - set(self.inputs) if self.online else set()
            # Concurrent requests' lookups are joined into one store call, as their model calls are.
            wait_s = max_batch_wait_ms / 1000
            self.lookups = Batcher(self.online.lookup_rows, max_batch_rows, wait_s) if self.online else None
            signature = self.loaded.signatures[model_io.SIGNATURE]
            _, input_specs = signature.structured_input_signature
            self.input_types = [tensor_metadata(n, spec) for n, spec in input_specs.items()]
            self.output_types = [tensor_metadata(n, spec) for n, spec in signature.structured_outputs.items()]
            self.batcher = Batcher(
                lambda arrays: model_io.predict(self.loaded, arrays),
                max_batch_rows,
                max_batch_wait_ms / 1000,
                _metric("batch_rows").labels(self.name).observe,
            )
            self.ready = True
            return self.ready

        # The v2 metadata endpoint (GET /v2/models/<name>) lists these, so that generic Open
        # Inference Protocol clients can build requests.
        def get_input_types(self) -> list[dict]:
            return self.input_types

        def get_output_types(self) -> list[dict]:
            return self.output_types

        def _rows(self, payload) -> tuple[list[dict] | None, dict | None]:
            """The request as rows (v1 ``instances``) or columns (v2 tensors, v1 columnar)."""
            if isinstance(payload, kserve.InferRequest):
                columns = {}
                for tensor in payload.inputs:
                    data = tensor.data
                    if isinstance(data, np.ndarray):
                        data = data.reshape(-1).tolist()
                    columns[tensor.name] = [v[0] if isinstance(v, list) else v for v in data]
                return None, columns
            if not isinstance(payload, dict):
                raise InvalidInput("expected a JSON object with 'instances' or 'inputs'")
            if "instances" in payload:
                rows = payload["instances"]
                if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                    raise InvalidInput(
                        "'instances' must be a list of objects {feature: value} "
                        f"(features: {sorted(self.inputs)})"
                    )
                return rows, None
            if isinstance(payload.get("inputs"), dict):  # TF Serving's columnar format
                return None, payload["inputs"]
            raise InvalidInput("expected 'instances' (row format) or 'inputs' (columnar)")

        def _checked(self, rows, columns) -> list[list[dict]]:
            """Flags per row; RequestError (HTTP 400) for what the model cannot answer."""
            if self.contract is None:
                return [
                    []
                    for _ in range(len(rows) if rows is not None else len(next(iter(columns.values()), [])))
                ]
            if self.keys_only:
                if rows is not None:
                    rows = [{k: v for k, v in row.items() if k not in self.keys_only} for row in rows]
                else:
                    columns = {k: v for k, v in columns.items() if k not in self.keys_only}
            try:
                if rows is not None:
                    return request_contract.check(rows, self.contract)
                return request_contract.check_columns(columns, self.contract)
            except request_contract.RequestError as exc:
                raise InvalidInput(str(exc)) from exc

        def _arrays(self, rows, columns) -> tuple[dict, int]:
            """The request's ``{feature: array}`` and row count (its own errors stay its own:
            they are found here, before it joins a batch)."""
            if rows is not None:  # a feature absent from a row is missing there, as in a frame
                columns = {n: [row.get(n) for row in rows] for n in self.inputs if any(n in r for r in rows)}
            try:
                arrays = model_io.feature_arrays(columns, self.inputs)
            except ValueError as exc:  # FeatureMismatchError too
                raise InvalidInput(str(exc)) from exc
            count = len(next(iter(arrays.values()), ()))
            if count == 0:
                raise InvalidInput("no rows to predict")
            lengths = {name: len(values) for name, values in arrays.items()}
            if len(set(lengths.values())) > 1:
                raise InvalidInput(f"features differ in length: {lengths}")
            return arrays, count

        async def predict(self, payload, headers=None, response_headers=None):
            started = time.perf_counter()
            request_id = (
                (headers or {}).get(prediction_log.REQUEST_ID_HEADER)
                or (payload.id if isinstance(payload, kserve.InferRequest) else None)
                or prediction_log.new_request_id()
            )
            if response_headers is not None:  # the key a client joins late labels on
                response_headers[prediction_log.REQUEST_ID_HEADER] = request_id
            rows, columns = None, None
            try:
                rows, columns = self._rows(payload)
                if self.online is not None:  # what a request lacks, from the online store
                    rows, columns, found = await self._online_features(rows, columns)
                flags = self._checked(rows, columns)
                if self.online is not None:
                    flags = [a + b for a, b in zip(found, flags, strict=True)]
                try:
                    predictions = await self.batcher.predict(*self._arrays(rows, columns))
                except ValueError as exc:  # what the signature refuses is the request's fault
                    raise InvalidInput(str(exc)) from exc
            except InvalidInput as exc:
                self._log(request_id, started, rows, columns, [], None, 400, str(exc))
                raise
            self._log(request_id, started, rows, columns, predictions.tolist(), flags, 200, None)
            flagged = any(flags)
            if flagged:
                counter = _metric("flags")
                for row_flags in flags:
                    for flag in row_flags:
                        counter.labels(self.name, flag["feature"], flag["flag"]).inc()
            if isinstance(payload, kserve.InferRequest):
                return kserve.InferResponse(
                    model_name=self.name,
                    response_id=payload.id or request_id,
                    infer_outputs=[
                        kserve.InferOutput(
                            name=model_io.OUTPUT_KEY,
                            shape=list(predictions.shape),
                            datatype="FP32",
                            data=predictions.astype(np.float32).reshape(-1).tolist(),
                        )
                    ],
                    parameters={"flags": json.dumps(flags, default=str)} if flagged else None,
                )
            # TF Serving's answer, plus "flags" (one list per row) only when something was flagged.
            return {"predictions": predictions.tolist(), **({"flags": flags} if flagged else {})}

        async def _online_features(self, rows, columns):
            """The request completed from the online store, and the flags of what it delivered."""
            try:
                needy, entities = self.online.wanted(rows, columns)
            except online_features.EntityKeyError as exc:
                raise InvalidInput(str(exc)) from exc
            fetched = await self.lookups.predict(entities, len(needy)) if needy else []
            return self.online.fill(rows, columns, needy, fetched)

        def _log(self, request_id, started, rows, columns, outputs, flags, status, error) -> None:
            if writer is None:
                return
            if rows is None and columns:
                # strict=False: a refused request's columns may differ in length
                values = zip(*columns.values(), strict=False)
                rows = [dict(zip(columns, row, strict=True)) for row in values]
            writer.write(
                prediction_log.record(
                    request_id=request_id,
                    model=self.name,
                    version=self.version,
                    inputs=rows or [],
                    outputs=outputs,
                    flags=flags,
                    status=status,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    error=error,
                )
            )

    class ServingRepository(kserve.ModelRepository):
        """Models by name, from fixed folders or from pointers in a serving folder.

        ``load(name)`` (the v2 repository API) re-reads the pointer and swaps the model in only
        once the new one is loaded, so the old model keeps answering meanwhile.
        """

        def __init__(self, serving_dir: str = "", fixed: dict[str, str] | None = None):
            super().__init__(models_dir=serving_dir or tempfile.gettempdir())
            self.serving_dir = serving_dir
            self.fixed = dict(fixed or {})

        def model_dir(self, name: str) -> tuple[str, str]:
            if self.serving_dir and inside(self.serving_dir, f"{name}{POINTER_SUFFIX}").is_file():
                pointer = read_pointer(self.serving_dir, name)
                return pointer["model_dir"], str(pointer.get("model_version", ""))
            if name in self.fixed:
                return self.fixed[name], ""
            raise FileNotFoundError(
                f"no model named {name!r}"
                + (f": no pointer {name}{POINTER_SUFFIX} in {self.serving_dir}" if self.serving_dir else "")
            )

        def load_model(self, name: str) -> bool:
            model_dir, version = self.model_dir(name)
            model = SavedModelModel(name, model_dir, version)
            model.load()
            self.update(model)
            logger.info("serving %s from %s", name, model_dir)
            return model.ready

        async def load(self, name: str) -> bool:
            return await asyncio.get_running_loop().run_in_executor(None, self.load_model, name)

        def load_models(self):
            for name in pointer_names(self.serving_dir) if self.serving_dir else []:
                try:
                    self.load_model(name)
                except Exception:  # noqa: BLE001 - one broken pointer must not stop the others
                    logger.exception("cannot load %s from %s", name, self.serving_dir)
            for name in self.fixed:
                if name not in self.models:
                    self.load_model(name)

    return SavedModelModel, ServingRepository


def _data_plane_class():
    """kserve's DataPlane, reading JSON bodies the way TF Serving and generic v2 clients send them.

    - v1 bodies are parsed with Python's json, which (like TF Serving's parser) accepts the
      ``NaN``/``Infinity`` tokens a client sends for missing floats; kserve's orjson refuses them.
    - A v2 JSON body without a content-type header (tritonclient's JSON mode sends none) is
      read as JSON; kserve would take it for a binary request and refuse it for lacking the
      ``inference-header-content-length`` header.
    """
    from cloudevents.sdk.converters.util import has_binary_headers
    from kserve.constants.constants import INFERENCE_CONTENT_LENGTH_HEADER, PredictorProtocol
    from kserve.errors import InvalidInput
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.rest.v2_datamodels import InferenceRequest

    class JsonDataPlane(DataPlane):
        def decode(self, body, headers, protocol_version=PredictorProtocol.REST_V1.value, model_name=None):
            if isinstance(body, (bytes, bytearray)) and not (headers and has_binary_headers(headers)):
                v2 = protocol_version.lower() == PredictorProtocol.REST_V2.value
                if not v2 and _is_json(headers):
                    body = _loads(body)
                elif v2 and INFERENCE_CONTENT_LENGTH_HEADER not in (headers or {}):
                    try:
                        body = InferenceRequest.model_validate(_loads(body))
                    except ValueError as exc:
                        raise InvalidInput(f"invalid v2 inference request: {exc}") from exc
            return super().decode(body, headers, protocol_version, model_name)

    def _loads(body):
        try:
            return json.loads(body)
        except ValueError as exc:
            raise InvalidInput(f"Unrecognized request format: {exc}") from exc

    def _is_json(headers) -> bool:
        content_type = (headers or {}).get("content-type", "application/json")
        return content_type.split(";")[0].strip().lower() in ("application/json", "")

    return JsonDataPlane


DEFAULT_HOST = "127.0.0.1"
"""Where the local server listens unless told otherwise: this machine only."""


def serve(
    *,
    http_port: int,
    model_dir: str = "",
    model_name: str = "",
    serving_dir: str = "",
    host: str = DEFAULT_HOST,
    log_dir: str = "",
    check_requests: bool = True,
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
    max_batch_wait_ms: float = DEFAULT_MAX_BATCH_WAIT_MS,
    feature_repo: str = "",
) -> None:
    """Serves until stopped (SIGTERM/SIGINT) on ``host``. See the module docstring for the
    three modes; the other options as in ``_model_classes``."""
    import kserve

    class BoundModelServer(kserve.ModelServer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            # start() hands self.dataplane to the REST server.
            self.dataplane = _data_plane_class()(model_registry=self.registered_models)

        # kserve 0.21's REST server always binds 0.0.0.0; its uvicorn config is read only when
        # the event loop runs, which starts right after this hook.
        def setup_event_loop(self):
            if self._rest_server is not None:
                self._rest_server.config.host = host
                # kserve's one middleware here times every request for its trace log, which
                # drops it (the timings are INFO, kserve.trace logs WARNING and up): a route
                # match and a format per request for nothing. (Its other one, an access log, is
                # added only with an access log format.) Its Prometheus metrics stay.
                self._rest_server._add_middlewares = lambda app: None
            super().setup_event_loop()

    _, ServingRepository = _model_classes(
        log_dir, check_requests, max_batch_rows, max_batch_wait_ms, feature_repo
    )
    fixed = {model_name: model_dir} if model_dir else {}
    repository = ServingRepository(serving_dir=serving_dir, fixed=fixed)
    repository.load_models()
    models = list(repository.get_models().values())
    logger.info("serving %s on %s:%d", sorted(repository.get_models()) or "no models yet", host, http_port)
    server = BoundModelServer(
        http_port=http_port,
        enable_grpc=False,
        registered_models=repository,
        enable_latency_logging=False,  # one log line per request costs more than a small model
    )
    # start([]) is allowed: a pointer server may start before the first deployment.
    server.start(models)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m components.model_server",
        description="Serve TensorFlow SavedModels with KServe's model server (v1 and v2 protocols).",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-dir", help="model folder in the TF-Serving layout (<dir>/1/saved_model.pb)")
    source.add_argument("--serving-dir", help="folder of pointers <name>.json written by deploy_model")
    source.add_argument("--registered-model", help="MLflow registered model name")
    parser.add_argument(
        "--model-name", default="", help="name in the URL (default: folder or registered name)"
    )
    parser.add_argument("--alias", default="production", help="alias or version number of --registered-model")
    parser.add_argument(
        "--tracking-uri", default="", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI)"
    )
    parser.add_argument("--download-dir", default="", help="where to download a registered model")
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--log-dir", default="", help="log every request and prediction to this folder")
    parser.add_argument(
        "--no-request-check",
        action="store_true",
        help="skip the type check and the flags (the model's request contract) before predicting",
    )
    parser.add_argument(
        "--max-batch-rows",
        type=int,
        default=DEFAULT_MAX_BATCH_ROWS,
        help="rows one model call answers at most when concurrent requests are batched "
        f"(default {DEFAULT_MAX_BATCH_ROWS}; 1: one model call per request)",
    )
    parser.add_argument(
        "--max-batch-wait-ms",
        type=float,
        default=DEFAULT_MAX_BATCH_WAIT_MS,
        help="how long a batch that is not full waits for more requests "
        f"(default {DEFAULT_MAX_BATCH_WAIT_MS:g}: batches form while the model is busy)",
    )
    parser.add_argument(
        "--feature-repo",
        default="",
        help="Feast repository (path or URI) that models trained from Feast read their online "
        "features from (default: the one the model's feature_store.json names)",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST}; 0.0.0.0: all)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    model_dir, name = args.model_dir or "", args.model_name
    if args.registered_model:
        from components import registry

        tracking_uri = registry.resolve_tracking_uri(args.tracking_uri)
        dst = args.download_dir or tempfile.mkdtemp(prefix="ct-serve-")
        model_dir = registry.download_model(tracking_uri, args.registered_model, args.alias, dst)
        name = name or args.registered_model
        logger.info(
            "downloaded %s@%s from %s to %s", args.registered_model, args.alias, tracking_uri, model_dir
        )
    if model_dir:
        name = name or Path(model_dir.rstrip("/")).name
    # kserve parses sys.argv when imported; hide ours so its defaults apply.
    sys.argv = sys.argv[:1]
    serve(
        http_port=args.http_port,
        model_dir=model_dir,
        model_name=name,
        serving_dir=args.serving_dir or "",
        host=args.host,
        log_dir=args.log_dir,
        check_requests=not args.no_request_check,
        max_batch_rows=args.max_batch_rows,
        max_batch_wait_ms=args.max_batch_wait_ms,
        feature_repo=args.feature_repo,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
