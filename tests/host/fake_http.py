"""What the fake API servers (fake_kfp, fake_vertex) share: a threaded HTTP server on
127.0.0.1 with a free port, and the record of every request, for tests to assert on."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any = None  # parsed JSON body
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # multipart uploads

    def param(self, name: str, default: str | None = None) -> str | None:
        return self.query.get(name, [default])[0]


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class RecordingServer:
    """Base of the fakes: ``with Fake() as fake`` serves until the block ends; subclasses
    implement ``_handle(handler)`` for every method and append to ``self.requests``."""

    def __init__(self):
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    @staticmethod
    def read(handler: BaseHTTPRequestHandler) -> tuple[Request, bytes]:
        """The request as a ``Request`` (no body yet) and its raw body."""
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        request = Request(
            method=handler.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in handler.headers.items()},
        )
        return request, handler.rfile.read(length) if length else b""

    @staticmethod
    def reply(handler: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        """Sends ``payload`` as a JSON response."""
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def __enter__(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):  # noqa: N802 - http.server's naming
                fake._handle(self)

            do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02})
        serve.daemon = True
        serve.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def calls(self, method: str | None = None, path: str | None = None) -> list[Request]:
        """Recorded requests, optionally filtered by method and a path regex."""
        return [
            r for r in self.requests
            if (method is None or r.method == method) and (path is None or re.search(path, r.path))
        ]

    def mutations(self) -> list[Request]:
        """Requests that change server state (everything but GET)."""
        return [r for r in self.requests if r.method != "GET"]

    def clear(self) -> None:
        self.requests.clear()
