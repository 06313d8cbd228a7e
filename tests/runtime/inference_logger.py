"""KServe's inference logger, as its agent sidecar behaves in front of one predictor pod: every
request goes to the sink as a request CloudEvent (binary mode, built with the CloudEvents SDK,
the pod's metadata annotations in ``ce-annotations``), is forwarded to the model server, and
its response goes to the sink only when the status is 200 (so the sink writes a refused or
failed request as unanswered). The request id is the client's ``Ce-Id`` header, else a new one.

``InferenceLogger(upstream, sink_url, service, annotations, fail=None)``: ``fail(request_id)``
true answers 500 without forwarding (a predictor that fails under live traffic).
"""

from __future__ import annotations

import json
import threading
import urllib.request
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from relay import _forward, reply

from components import prediction_log_sink

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"  # Go's nanoseconds


class InferenceLogger:
    def __init__(self, upstream: str, sink_url: str, service: str, annotations: dict, fail=None):
        logger = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request_id = self.headers.get("Ce-Id") or uuid.uuid4().hex  # as KServe's handler
                logged = self.command == "POST" and self.path.endswith(":predict")
                if logged:
                    logger._event(prediction_log_sink.REQUEST_TYPE, request_id, body)
                if logged and fail and fail(request_id):
                    status, answer = 500, b'{"error": "predictor failed"}'
                else:
                    status, answer = _forward(upstream, self.command, self.path, body or None, self.headers)
                if logged and status == 200:
                    logger._event(prediction_log_sink.RESPONSE_TYPE, request_id, answer)
                reply(self, status, answer)

            do_GET = do_POST = _handle

        self.sink_url, self.service, self.annotations = sink_url, service, annotations
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def _event(self, kind: str, request_id: str, body: bytes) -> None:
        attributes = {
            "type": kind,
            "source": f"http://{self.service}-predictor:9081/",
            "id": request_id,
            "time": _now(),
            "inferenceservicename": self.service,
            "namespace": "models",
            "component": "predictor",
            "endpoint": "",
            "metadata": "{}",
            "annotations": json.dumps(self.annotations),
            "datacontenttype": "application/json",
        }
        headers, payload = to_binary(CloudEvent(attributes, body))
        request = urllib.request.Request(self.sink_url, data=payload, headers=headers, method="POST")
        with _DIRECT.open(request, timeout=10) as response:
            response.read()

    def __enter__(self) -> InferenceLogger:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
