"""An HTTP relay for tests: what stands between a client and a real server on a cluster (the
cluster's DNS, a network partition, TF Serving's stricter parser), in one small server.

``Relay(route, intercept=None)`` forwards each request to ``route(host, path)`` (a base URL;
"" answers 502 "no such host"). It takes origin-form requests (``POST /v1/...``) and, as an
HTTP proxy, absolute-form ones (``POST http://svc.ns.svc.cluster.local/v1/...``: ``host`` is
the URL's). ``intercept(method, path, body)`` may answer first with ``(status, bytes)``.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP_BY_HOP = {"host", "content-length", "connection", "keep-alive", "proxy-connection", "transfer-encoding"}
# Straight to the upstream: the relay must not go through the proxy it may itself be.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Relay:
    def __init__(self, route, intercept=None):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _relay(self):
                target = urllib.parse.urlsplit(self.path)
                host = target.hostname or (self.headers.get("Host") or "").split(":")[0]
                path = target.path + (f"?{target.query}" if target.query else "")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                answer = intercept(self.command, path, body) if intercept else None
                if answer is None:
                    answer = _forward(route(host, path), self.command, path, body, self.headers)
                reply(self, *answer)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _relay

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Relay:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def reply(handler: BaseHTTPRequestHandler, status: int, payload: bytes) -> None:
    """Answers ``handler``'s request with a JSON body (every fake server here speaks JSON)."""
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


def _forward(base: str, method: str, path: str, body: bytes | None, headers) -> tuple[int, bytes]:
    if not base:
        return 502, b'{"error": "no such host"}'
    # A proxy passes the client's headers on (request ids, Ce-Id), not the hop-by-hop ones.
    passed = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
    passed["Content-Type"] = headers.get("Content-Type") or "application/json"
    request = urllib.request.Request(base + path, data=body, method=method, headers=passed)
    try:
        with _DIRECT.open(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
