"""deploy_model target="local": a real KServe model server on localhost, then a pointer.

The candidate is served by ``components.model_server`` in a subprocess on a free
loopback port and smoke-tested over HTTP (v1 and v2). Only then is it "promoted": its files are
copied into ``<local_serving_dir>/<service>/<version>/`` and the pointer
``<local_serving_dir>/<service>.json`` is replaced atomically (the old one kept as
``<service>.previous.json``). A persistent server (``--serving-dir``) at ``local_endpoint`` is
told to reload it and smoke-tested too; if that fails, the previous pointer comes back.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from components.deploy_model import _smoke
from components.model_server import POINTER_SUFFIX, PREVIOUS_SUFFIX, inside

logger = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """``python -m components.model_server --model-dir ...`` as a context manager.

    ``start()`` launches the process without waiting, so the server's start-up (TensorFlow,
    KServe, the model) can overlap the caller's own work; entering waits until it is ready.
    Without ``log_path`` the server logs into a temporary folder removed by ``stop()``.
    """

    def __init__(self, model_dir: str, name: str, start_timeout: float, log_path: str | None = None, args=()):
        self.model_dir, self.name, self.start_timeout = model_dir, name, start_timeout
        self.args = list(args)  # further model_server options, e.g. ["--log-dir", DIR]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_dir = None if log_path else tempfile.mkdtemp(prefix="ct-serve-")
        self.log_path = log_path or os.path.join(self._log_dir, "server.log")
        self.process: subprocess.Popen | None = None
        self._log = None

    def start(self) -> LocalServer:
        if self.process is None:
            self._log = open(self.log_path, "w")
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "components.model_server",
                    "--model-dir",
                    self.model_dir,
                    "--model-name",
                    self.name,
                    "--http-port",
                    str(self.port),
                    *self.args,
                ],
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
        return self

    def __enter__(self) -> LocalServer:
        self.start()
        try:
            _smoke.wait_until_ready(self.url, self.name, self.start_timeout, self.process)
        except _smoke.SmokeTestError as exc:
            tail = Path(self.log_path).read_text()[-1500:]
            self.stop()
            raise _smoke.SmokeTestError(f"{exc}; server log ends with:\n{tail}") from exc
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self) -> None:
        """Ends the server (again: a no-op)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
        if self._log_dir:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None


def endpoint_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/v2/health/live", timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


def _write_atomic(path: Path, payload: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
    os.replace(tmp, path)


def promote(serving_dir: str, name: str, model_dir: str, model_version: str, model_uri: str) -> dict:
    """Copies the model into the serving folder and swaps the pointer atomically."""
    root = Path(serving_dir)
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc)
    folder = f"{model_version or 'v'}-{stamp.strftime('%Y%m%dT%H%M%S%fZ')}"
    target = inside(root, name, folder)
    pointer_path = inside(root, f"{name}{POINTER_SUFFIX}")
    shutil.copytree(model_dir, target)
    if pointer_path.exists():
        os.replace(pointer_path, root / f"{name}{PREVIOUS_SUFFIX}")
    pointer = {
        "model_dir": f"{name}/{folder}",  # relative: the folder can be mounted anywhere
        "model_version": model_version,
        "model_uri": model_uri,
        "deployed_at": stamp.isoformat(timespec="seconds"),
    }
    _write_atomic(pointer_path, pointer)
    return pointer


def restore_previous(serving_dir: str, name: str) -> bool:
    """Puts ``<name>.previous.json`` back as the pointer; False when there was none."""
    root = Path(serving_dir)
    previous = root / f"{name}{PREVIOUS_SUFFIX}"
    if previous.exists():
        os.replace(previous, root / f"{name}{POINTER_SUFFIX}")
        return True
    (root / f"{name}{POINTER_SUFFIX}").unlink(missing_ok=True)
    return False


def reload(endpoint: str, name: str) -> None:
    _smoke.post_json(f"{endpoint.rstrip('/')}/v2/repository/models/{name}/load", None, timeout=120)


def deploy(
    *,
    model_dir: str,
    name: str,
    frame,
    offline,
    dtypes: dict[str, str],
    tolerance: float,
    start_timeout: float,
    serving_dir: str,
    endpoint: str,
    model_version: str,
    model_uri: str,
    verdict,
    server: LocalServer | None = None,
) -> dict:
    """Runs the local target; every step is a check in ``verdict``. Returns the outcome.

    ``server``: the candidate's server, already started on ``model_dir`` (``LocalServer.start``)
    so that its start-up overlapped the caller's work; None starts one here."""
    outcome = {
        "name": name,
        "namespace": "local",
        "mode": "local",
        "model_uri": model_uri,
        "url": "",
        "revision": "",
        "traffic": [],
        "action": "",
        "healthy": False,
        "rolled_back": False,
        "previous_model_uri": None,
        "pointer": None,
    }
    where = f"local:{name}"
    try:
        with server or LocalServer(model_dir, name, start_timeout) as server:
            verdict.add("serve", where, "pass", f"KServe model server ready at {server.url}")
            results = [
                _smoke.smoke(server.url, name, frame, offline, tolerance, protocol="v1", dtypes=dtypes),
                _smoke.smoke(server.url, name, frame, offline, tolerance, protocol="v2", dtypes=dtypes),
            ]
    except _smoke.SmokeTestError as exc:
        verdict.add("serve", where, "fail", f"the model server did not start: {exc}")
        outcome["action"] = "failed"
        return outcome
    for protocol, result in zip(("v1", "v2"), results, strict=True):
        verdict.add(
            f"smoke-test-{protocol}",
            where,
            "pass" if result.ok else "fail",
            result.reason,
            value=result.max_abs_diff,
            threshold=tolerance,
        )
    if not all(r.ok for r in results):
        verdict.add("promote", where, "fail", "not promoted: the pointer is untouched")
        outcome["action"] = "not-promoted"
        return outcome
    if not serving_dir:
        verdict.add("promote", where, "warn", "no local_serving_dir: smoke-tested only, nothing promoted")
        outcome.update(action="smoke-tested", healthy=True)
        return outcome

    previous = Path(serving_dir) / f"{name}{POINTER_SUFFIX}"
    if previous.exists():
        outcome["previous_model_uri"] = json.loads(previous.read_text()).get("model_uri")
    pointer = promote(serving_dir, name, model_dir, model_version, model_uri)
    outcome.update(pointer=pointer, revision=pointer["model_dir"], action="promoted", healthy=True)
    verdict.add("promote", where, "pass", f"pointer {previous} now names {pointer['model_dir']}")

    if endpoint:
        if not endpoint_answers(endpoint):
            verdict.add("reload", where, "warn", f"local_endpoint {endpoint} does not answer: not reloaded")
            return outcome
        try:
            reload(endpoint, name)
            result = _smoke.smoke(endpoint, name, frame, offline, tolerance, protocol="v1", dtypes=dtypes)
            reason, ok = result.reason, result.ok
        except _smoke.SmokeTestError as exc:
            reason, ok = f"reload failed: {exc}", False
        verdict.add("reload", where, "pass" if ok else "fail", f"persistent server {endpoint}: {reason}")
        if ok:
            outcome["url"] = endpoint
            return outcome
        had_previous = restore_previous(serving_dir, name)
        outcome.update(healthy=False, rolled_back=True, action="rolled-back", pointer=None)
        try:
            if had_previous:
                reload(endpoint, name)
                message = "previous pointer restored and reloaded"
            else:
                _smoke.post_json(f"{endpoint.rstrip('/')}/v2/repository/models/{name}/unload", None)
                message = "no previous pointer: pointer removed and the model unloaded"
            verdict.add("rollback", where, "pass", message)
        except _smoke.SmokeTestError as exc:
            verdict.add("rollback", where, "fail", f"previous pointer restored, reload failed: {exc}")
    return outcome
