"""A sink for KServe's inference logger: its CloudEvents in, prediction-log records out.

An InferenceService with ``spec.predictor.logger: {mode: all, url: <this service>}`` has
KServe's agent POST two CloudEvents per request (binary mode, from ``pkg/logger`` in
kserve/kserve): the request body (``ce-type: org.kubeflow.serving.inference.request``) before
it is proxied to the model server and the response body (``...inference.response``) after.
Both carry ``ce-id`` (the request's ``Ce-Id`` header, else a fresh UUID), ``ce-time`` (when
the agent *sent* the event), ``ce-source`` (the pod), ``ce-inferenceservicename``,
``ce-namespace``, ``ce-component``, ``ce-endpoint``; the HTTP ``content-type`` is the
client's, or absent when the client sent none, so bodies are read as JSON whatever it says.

This server pairs the two halves by ``ce-id`` (in either order), turns each pair into one
record with ``prediction_log.from_cloudevents`` and appends it with ``prediction_log.Writer``
to ``--log-dir``, where ``prediction_log.read`` (and so the monitor) finds it as it finds the
local model server's records. It answers 200 at once: the agent counts any other status as a
failed delivery (it checks for exactly 200), and it does not retry.

Halves that never find their counterpart within ``--pair-timeout-s`` (or that are pushed out
when more than ``--max-pending`` are waiting):

- a lone *request* is written as a failed request (``status`` 0: unknown, ``error`` says why).
  This is the normal fate of every request the model server refuses: KServe's agent logs a
  response only when its status is 200, so a 400 for a wrongly typed value arrives as a
  request alone. Dropping these would hide every refused request from the error rate.
- a lone *response* is dropped with a warning: its request (the inputs) was lost, and a row
  without inputs would read as a burst of missing values in the serving statistics.

A half arriving after its partner was written as unpaired is dropped with a warning, so no
request is counted twice. Calls without a request body (``GET`` readiness or metadata through
the same agent) are not predictions and are skipped. v2 (Open Inference Protocol) JSON bodies
and TF Serving's columnar ``inputs`` are read into the v1 row format first; binary tensors
cannot be read and are dropped with a warning.

Pairing is in memory: run one replica (the manifests do), so both halves of a request reach
the same process. Each record also carries ``endpoint`` (``ce-endpoint``: which of the
service's endpoints answered, e.g. default or canary).

    python -m components.prediction_log_sink --log-dir /logs --port 8080 [--host 0.0.0.0]

Runs in the runtime image; never imports kfp or TensorFlow.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import signal
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from components import prediction_log

logger = logging.getLogger(__name__)

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
KINDS = {REQUEST_TYPE: "request", RESPONSE_TYPE: "response"}
UNANSWERED_STATUS = 0
"""``status`` of a request whose response was never logged: its real status is unknown (not 200)."""
DEFAULT_HOST = "127.0.0.1"
MAX_BODY_BYTES = 64 * 1024 * 1024


class EventError(ValueError):
    """An HTTP request that is not one of KServe's inference-logger CloudEvents (HTTP 400)."""


@dataclass
class Event:
    kind: str  # "request" or "response"
    headers: dict[str, str]  # lower-case names
    body: bytes
    arrived: float  # monotonic seconds


def parse_event(headers: dict[str, str], body: bytes, now: float) -> Event:
    """One logger event from an HTTP POST: binary mode (KServe's), or structured mode."""
    headers = {k.lower(): v for k, v in headers.items()}
    if headers.get("content-type", "").split(";")[0].strip() == "application/cloudevents+json":
        try:
            envelope = json.loads(body)
        except ValueError as exc:
            raise EventError(f"a structured CloudEvent must be a JSON object: {exc}") from exc
        if "data_base64" in envelope:
            body = base64.b64decode(envelope["data_base64"])
        else:
            data = envelope.get("data")
            body = (
                b"" if data is None else data.encode() if isinstance(data, str) else json.dumps(data).encode()
            )
        headers = {f"ce-{k}": str(v) for k, v in envelope.items() if k not in ("data", "data_base64")}
    kind = KINDS.get(headers.get("ce-type", ""))
    if kind is None:
        raise EventError(
            f"ce-type {headers.get('ce-type')!r} is not an inference-logger event "
            f"(expected {REQUEST_TYPE!r} or {RESPONSE_TYPE!r})"
        )
    for name in ("ce-id", "ce-inferenceservicename"):
        if not headers.get(name):
            raise EventError(f"the {name} header is missing: pairing and the log folder need it")
    model = headers["ce-inferenceservicename"]
    if "/" in model or "\\" in model or model.startswith("."):
        raise EventError(f"ce-inferenceservicename {model!r} is not an InferenceService name")
    return Event(kind, headers, body, now)


def _v1(body: bytes) -> dict:
    """The body as a v1 request (``instances``) or response (``predictions``, ``flags``)."""
    payload = json.loads(body)  # Python's json reads the NaN tokens TF Serving clients send
    if not isinstance(payload, dict):
        raise ValueError(f"expected a JSON object, got {type(payload).__name__}")
    inputs = payload.get("inputs")
    if "instances" not in payload and isinstance(inputs, dict):  # TF Serving's columnar format
        payload = {"instances": _rows({k: v if isinstance(v, list) else [v] for k, v in inputs.items()})}
    elif "instances" not in payload and isinstance(inputs, list):  # v2 tensors, one per feature
        payload = {"instances": _rows({t["name"]: _flat(t.get("data", [])) for t in inputs})}
    elif "predictions" not in payload and isinstance(payload.get("outputs"), list) and payload["outputs"]:
        outputs = payload["outputs"]
        chosen = next((t for t in outputs if t.get("name") == "predictions"), outputs[0])
        flags = (payload.get("parameters") or {}).get("flags")
        payload = {"predictions": _flat(chosen.get("data", []))}
        if flags:
            payload["flags"] = json.loads(flags) if isinstance(flags, str) else flags
    return payload


def _flat(data) -> list:
    return [v for item in data for v in _flat(item)] if isinstance(data, list) else [data]


def _rows(columns: dict[str, list]) -> list[dict]:
    length = max((len(v) for v in columns.values()), default=0)
    return [{k: v[i] if i < len(v) else None for k, v in columns.items()} for i in range(length)]


class Pairer:
    """Pairs request and response events by ``ce-id`` and writes one record per pair.

    Holds at most ``max_pending`` unpaired halves, each for at most ``pair_timeout_s``
    (``expire`` enforces it; the server calls it every second); see the module docstring for
    what happens to halves that time out.
    """

    def __init__(
        self, writer: prediction_log.Writer, pair_timeout_s: float = 120.0, max_pending: int = 10000
    ):
        if pair_timeout_s <= 0:
            raise ValueError(f"pair_timeout_s must be > 0 seconds, got {pair_timeout_s!r}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending!r}")
        self.writer = writer
        self.pair_timeout_s = pair_timeout_s
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, Event] = OrderedDict()  # oldest first
        self._closed: OrderedDict[str, None] = OrderedDict()  # ids written unpaired, newest last

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def add(self, event: Event) -> None:
        key = event.headers["ce-id"]
        evicted: list[Event] = []
        pair = None
        with self._lock:
            if key in self._closed:
                logger.warning(
                    "dropped the %s of %s: it came after its partner was written as unpaired "
                    "(raise --pair-timeout-s if this is frequent)",
                    event.kind,
                    key,
                )
                return
            other = self._pending.get(key)
            if other is not None and other.kind != event.kind:
                del self._pending[key]
                pair = (other, event) if other.kind == "request" else (event, other)
            else:
                if other is not None:  # the same id twice (a client reusing its Ce-Id header)
                    logger.warning(
                        "a second %s with ce-id %s: the first one is written unpaired", event.kind, key
                    )
                    evicted.append(self._pending.pop(key))
                self._pending[key] = event
                while len(self._pending) > self.max_pending:
                    evicted.append(self._pending.popitem(last=False)[1])
            self._close([e.headers["ce-id"] for e in evicted if e.headers["ce-id"] != key])
        for half in evicted:
            self._write_unpaired(half, f"more than {self.max_pending} events were waiting for their partner")
        if pair is not None:
            self._write_pair(*pair)

    def expire(self, now: float | None = None) -> int:
        """Writes (or drops) the halves older than ``pair_timeout_s``; returns how many."""
        now = time.monotonic() if now is None else now
        with self._lock:
            old = []
            while self._pending:
                key, event = next(iter(self._pending.items()))
                if now - event.arrived < self.pair_timeout_s:
                    break
                old.append(self._pending.popitem(last=False)[1])
            self._close([e.headers["ce-id"] for e in old])
        for half in old:
            self._write_unpaired(half, f"its partner did not arrive within {self.pair_timeout_s:g} s")
        return len(old)

    def flush(self) -> int:
        """Writes every waiting half as unpaired (at shutdown)."""
        return self.expire(now=float("inf"))

    def _close(self, keys: list[str]) -> None:
        for key in keys:
            self._closed[key] = None
        while len(self._closed) > self.max_pending:
            self._closed.popitem(last=False)

    def _write_pair(self, request: Event, response: Event) -> None:
        if not request.body.strip():
            logger.debug(
                "skipped %s: no request body (a readiness or metadata call)", request.headers["ce-id"]
            )
            return
        try:
            request_body, response_body = _v1(request.body), _v1(response.body)
        except ValueError as exc:
            logger.warning(
                "dropped %s of %s: its body is not a JSON v1/v2 request or response (%s)",
                request.headers["ce-id"],
                request.headers["ce-inferenceservicename"],
                exc,
            )
            return
        entry = prediction_log.from_cloudevents(
            (request.headers, request_body), (response.headers, response_body)
        )
        self._write(entry, request)

    def _write_unpaired(self, half: Event, why: str) -> None:
        key, model = half.headers["ce-id"], half.headers["ce-inferenceservicename"]
        if half.kind == "response":
            logger.warning("dropped the response of %s (%s): %s; nothing to pair it with", key, model, why)
            return
        if not half.body.strip():
            return  # a readiness or metadata call that was not answered with 200
        try:
            request_body = _v1(half.body)
        except ValueError:
            request_body = {}  # the server refused it for the same reason; the error says so
        error = (
            f"no response was logged: {why}. KServe's logger logs only responses with status "
            "200, so the model server refused or failed this request (see its log for the reason)"
        )
        answered = {k: v for k, v in half.headers.items() if k != "ce-time"}  # no latency to measure
        entry = prediction_log.from_cloudevents((half.headers, request_body), (answered, {"error": error}))
        entry["status"] = UNANSWERED_STATUS
        logger.info(
            "request %s to %s had no logged response: written with status %d", key, model, entry["status"]
        )
        self._write(entry, half)

    def _write(self, entry: dict, request: Event) -> None:
        entry["endpoint"] = request.headers.get("ce-endpoint", "")
        self.writer.write(entry)


def make_server(pairer: Pairer, host: str, port: int) -> ThreadingHTTPServer:
    """The HTTP server (not started): POST any path with an event, GET /healthz."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the agent sends two events per request

        def _answer(self, status: int, text: str = "") -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("content-type", "text/plain; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 - http.server's naming
            if self.path.rstrip("/") in ("/healthz", ""):
                self._answer(200, f"ok, {pairer.pending()} events waiting for their partner\n")
            else:
                self._answer(404, "POST inference-logger CloudEvents to any path; GET /healthz\n")

        def do_POST(self):  # noqa: N802
            try:
                length = int(self.headers.get("content-length") or 0)
            except ValueError:
                self._answer(400, "bad content-length\n")
                return
            if length > MAX_BODY_BYTES:
                self.close_connection = True  # the body is not read
                logger.warning("refused an event of %d bytes from %s", length, self.client_address[0])
                self._answer(413, f"events larger than {MAX_BODY_BYTES} bytes are not logged\n")
                return
            body = self.rfile.read(length)
            try:
                event = parse_event(dict(self.headers.items()), body, time.monotonic())
                pairer.add(event)
            except EventError as exc:
                logger.warning("refused a POST from %s: %s", self.client_address[0], exc)
                self._answer(400, f"{exc}\n")
                return
            except Exception as exc:  # noqa: BLE001 - the agent only logs our status; say why here
                logger.exception("could not log event %s", self.headers.get("ce-id"))
                self._answer(500, f"could not log the event: {exc}\n")
                return
            self._answer(200)

        def log_message(self, format, *args):  # noqa: A002 - one stderr line per event is too much
            logger.debug("%s " + format, self.client_address[0], *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def serve(
    *,
    log_dir: str,
    port: int,
    host: str = DEFAULT_HOST,
    pair_timeout_s: float = 120.0,
    max_pending: int = 10000,
) -> None:
    """Serves until SIGTERM/SIGINT, then writes what is still waiting as unpaired."""
    writer = prediction_log.Writer(log_dir)
    pairer = Pairer(writer, pair_timeout_s=pair_timeout_s, max_pending=max_pending)
    server = make_server(pairer, host, port)
    stopping = threading.Event()

    def expire_loop():
        while not stopping.wait(min(1.0, pair_timeout_s / 4)):
            try:
                pairer.expire()
            except Exception:  # noqa: BLE001 - keep expiring; the next round retries
                logger.exception("could not write expired events")

    def stop(signum, _frame):
        logger.info("signal %d: stopping", signum)
        stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    expirer = threading.Thread(target=expire_loop, name="expire", daemon=True)
    expirer.start()
    logger.info(
        "prediction-log sink on %s:%d writing to %s (pairs wait %g s, at most %d)",
        host,
        port,
        log_dir,
        pair_timeout_s,
        max_pending,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        stopping.set()
        server.server_close()
        written = pairer.flush()
        writer.close()
        logger.info("stopped; %d unpaired events written or dropped at shutdown", written)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (the Deployment in manifests/prediction-log-sink passes it)."""
    parser = argparse.ArgumentParser(
        prog="python -m components.prediction_log_sink",
        description="Receive KServe inference-logger CloudEvents and write prediction-log records.",
    )
    parser.add_argument("--log-dir", required=True, help="folder for the records (prediction_log layout)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST}; 0.0.0.0: all)"
    )
    parser.add_argument(
        "--pair-timeout-s",
        type=float,
        default=120.0,
        help="how long a request waits for its response (and the reverse) before it is written unpaired",
    )
    parser.add_argument("--max-pending", type=int, default=10000, help="most unpaired events held in memory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(
        log_dir=args.log_dir,
        port=args.port,
        host=args.host,
        pair_timeout_s=args.pair_timeout_s,
        max_pending=args.max_pending,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
