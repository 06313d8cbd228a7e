"""A local fake of the Kubernetes API server for KServe InferenceServices and Kubeflow Trainer
TrainJobs (tests only; the TrainJob part is described on ``FakeTrainer``).

It speaks the real REST API (``/apis/serving.kserve.io/v1beta1/namespaces/<ns>/
inferenceservices[/<name>]``: POST, GET, PATCH with merge-patch or json-patch, PUT, DELETE,
Kubernetes ``Status`` errors; the KServe config map), so the real kubernetes and kserve clients
run end to end against it. It is as strict as the real server where rollouts depend on it:

- ``resourceVersion`` changes on every write, status updates included (the controller writes
  status as it reconciles); a PUT, or a merge-patch that carries ``metadata.resourceVersion``,
  with a stale one is refused with 409 Conflict;
- every change of the predictor (other than ``canaryTrafficPercent``) creates a revision
  ``<name>-predictor-0000N``, which becomes Ready after ``ready_after`` reads (never, for a
  storage URI in ``never_ready``); ``observedGeneration`` catches up on the next read;
- Knative mode: a Ready revision is rolled out unless ``canaryTrafficPercent`` < 100, in which
  case traffic splits between the last rolled-out revision (tag ``prev``) and the latest
  (tag ``latest``); a revision that is not Ready never gets traffic;
- Standard mode (KServe >= 0.20): each named ``spec.canary`` entry gets its own deployment
  (``canaryStatuses``, condition ``CanaryPredictorReady``); a predictor that takes over a
  canary's name and spec reuses its deployment (no restart); otherwise the latest Ready
  revision serves;
- ``status.deploymentMode`` is the annotation's mode, else ``default_mode`` (also what the
  ``kserve/inferenceservice-config`` config map says);
- URLs: each revision's URL is ``servers[storage_uri]`` (a real model server the test
  started), so smoke requests are real HTTP inference; ``status.address.url`` is the serving
  one, ``status.url`` an external name that does not resolve (as from a pod). ``proxy_url`` is
  the cluster's DNS: an HTTP proxy that sends ``<service>.<ns>.svc.cluster.local`` to the
  server behind that predictor or canary Service;
- ``failures``: ``{"PATCH": 403, ...}`` answers that verb with that error every time;
  ``flaky``: ``{"GET": 2}`` answers the next two with 503; ``before_patch``: ``{n: fn}`` runs
  ``fn(fake)`` (under the lock) just before the n-th PATCH, as another writer would (see
  ``write`` and ``status_update``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from relay import Relay, reply

_CONFIG_MAP = "/api/v1/namespaces/kserve/configmaps/inferenceservice-config"
_PATH = re.compile(
    r"^/apis/serving\.kserve\.io/(?P<version>v1beta1)/namespaces/(?P<ns>[^/]+)/inferenceservices(?:/(?P<name>[^/?]+))?"
)
DEAD_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    422: "Invalid",
    500: "InternalError",
}


def merge_patch(target, patch):
    """RFC 7386 JSON merge-patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target, operations):
    """RFC 6902 JSON patch (add, replace, remove, test)."""
    doc = copy.deepcopy(target)
    for op in operations:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = parts[-1]
        if op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                parent.insert(len(parent) if last == "-" else int(last), op["value"])
            else:
                parent[last] = op["value"]
        elif op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        elif op["op"] == "test" and parent.get(last) != op["value"]:
            raise ValueError(f"test failed at {op['path']}")
    return doc


class _Revision:
    def __init__(self, name: str, storage_uri: str, template: dict, ready_after: int, never: bool):
        self.name, self.storage_uri, self.template = name, storage_uri, template
        self.reads_left, self.never, self.ready = ready_after, never, False


class FakeKube:
    """The fake API server. Use as a context manager; ``kubeconfig(path)`` writes a kubeconfig."""

    def __init__(
        self,
        servers: dict[str, str] | None = None,
        *,
        ready_after: int = 2,
        never_ready: set[str] | frozenset = frozenset(),
        failures: dict[str, int] | None = None,
        default_mode: str = "Standard",
        report_mode: bool = True,
        trainer: FakeTrainer | None = None,
        rbac: list[dict] | None = None,
    ):
        self.servers = dict(servers or {})
        self.ready_after = ready_after
        self.never_ready = set(never_ready)
        self.failures = dict(failures or {})
        self.flaky: dict[str, int] = {}
        self.before_patch: dict[int, object] = {}  # PATCH number (1-based) -> fn(fake)
        self.patches = 0
        self.default_mode = default_mode
        self.report_mode = report_mode  # False: a KServe that reports no status.deploymentMode
        self.objects: dict[tuple[str, str], dict] = {}
        self.state: dict[tuple[str, str], dict] = {}
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self._resource_version = 100
        self.trainer = trainer or FakeTrainer()
        self.trainer.bind(self)
        self.rbac = rbac  # a Role's rules: the API server's authorizer (None: everything allowed)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                with fake.lock:
                    fake.requests.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "content_type": self.headers.get("Content-Type", ""),
                            "body": body,
                        }
                    )
                    refused = fake.authorize(self.command, self.path)
                    if refused:
                        code, payload = refused
                    elif fake.trainer.serves(self.path):
                        code, payload = fake.trainer.handle(self.command, self.path, body)
                    else:
                        code, payload = fake.handle(self.command, self.path, self.headers, body)
                if isinstance(payload, LogStream):  # streamed outside the lock
                    payload.send(self)
                else:
                    reply(self, code, json.dumps(payload).encode())

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.proxy = Relay(lambda host, path: self.backend(host))  # the cluster's DNS
        self.proxy_url = self.proxy.url
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> FakeKube:
        self.thread.start()
        self.proxy.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self.trainer.stop()
        self.proxy.__exit__(*exc_info)
        self.httpd.shutdown()
        self.httpd.server_close()

    def kubeconfig(self, path: str | Path) -> str:
        import yaml

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [
                {"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": "default"}}
            ],
            "current-context": "fake",
        }
        Path(path).write_text(yaml.safe_dump(config))
        return str(path)

    # API ------------------------------------------------------------------------------------
    def next_resource_version(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    def authorize(self, method: str, path: str):
        """RBAC as the API server applies it: None when ``rbac`` allows the request, else the
        403 ``Status`` it answers."""
        if self.rbac is None:
            return None
        group, resource, verb, ns, name = request_attributes(method, path)
        for rule in self.rbac:
            if (
                group in rule.get("apiGroups", [])
                and resource in rule.get("resources", [])
                and verb in rule.get("verbs", [])
                and (not rule.get("resourceNames") or name in rule["resourceNames"])
            ):
                return None
        kind = resource.split("/")[0]
        return self._status(
            403,
            f'{kind}{"." + group if group else ""} "{name}" is forbidden: User '
            f'"system:serviceaccount:{ns}:kfp-ct-pipeline-runner" cannot {verb} resource '
            f'"{resource}" in API group "{group}" in the namespace "{ns}"',
        )

    def _status(self, code: int, message: str):
        reason = _REASONS.get(code, "Unknown")
        return code, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }

    def _conflict(self, name):
        return self._status(
            409,
            f"Operation cannot be fulfilled on inferenceservices.serving.kserve.io "
            f'"{name}": the object has been modified; please apply your changes '
            f"to the latest version and try again",
        )

    def _admission(self, obj) -> str:
        """KServe's validating webhook, for Standard-mode canaries (KServe 0.20+)."""
        entries = obj["spec"].get("canary") or []
        if not entries:
            return ""
        prefix = 'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the request: '
        if self._mode(obj) != "Standard":
            return prefix + "spec.canary is supported in Standard deployment mode only"
        names = [(e.get("predictor") or {}).get("name") for e in entries]
        if not all(names) or len(set(names)) != len(names):
            return prefix + f"every canary needs a unique predictor name, got {names}"
        if sum(int(e.get("trafficPercent") or 0) for e in entries) > 100:
            return prefix + "the canaries' trafficPercent add up to more than 100"
        for entry in entries:
            fields = sorted(
                set(entry["predictor"]) & {"maxReplicas", "scaleTarget", "scaleMetric", "autoScaling"}
            )
            if fields:
                return (
                    prefix + f"canary {entry['predictor']['name']} must not set autoscaling fields {fields}"
                )
        return ""

    def _config_map(self) -> dict:
        legacy = {"Knative": "Serverless", "Standard": "RawDeployment"}[self.default_mode]
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "inferenceservice-config", "namespace": "kserve"},
            "data": {"deploy": json.dumps({"defaultDeploymentMode": legacy})},
        }

    def handle(self, method: str, path: str, headers, body):
        if path.startswith(_CONFIG_MAP) and method == "GET":
            return 200, self._config_map()
        if method == "PATCH":
            self.patches += 1
            another_writer = self.before_patch.pop(self.patches, None)
            if another_writer:
                another_writer(self)
        if self.flaky.get(method):
            self.flaky[method] -= 1
            return self._status(503, "the server is currently unable to handle the request")
        match = _PATH.match(path)
        if not match:
            return self._status(404, f"the server could not find the requested resource ({path})")
        ns, name = match["ns"], match["name"]
        if method in self.failures:
            code = self.failures[method]
            what = {"GET": "get", "POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}[
                method
            ]
            if code == 403:
                return self._status(
                    403,
                    f'inferenceservices.serving.kserve.io "{name or ""}" is forbidden: '
                    f'User "system:serviceaccount:{ns}:kfp-ct-pipeline-runner" cannot '
                    f'{what} resource "inferenceservices" in API group "serving.kserve.io" '
                    f'in the namespace "{ns}"',
                )
            if code == 409:
                return self._conflict(name)
            return self._status(code, "injected failure")
        key = (ns, name)
        if method == "POST" and name is None:
            name = (body.get("metadata") or {}).get("name")
            key = (ns, name)
            if key in self.objects:
                return self._status(409, f'inferenceservices.serving.kserve.io "{name}" already exists')
            obj = copy.deepcopy(body)
            obj["metadata"].update(namespace=ns, generation=1, uid=f"uid-{name}")
            obj.pop("status", None)
            self.state[key] = {
                "revisions": [],
                "rolled_out": None,
                "previous": None,
                "observed": 0,
                "canaries": {},
                "seen": None,
            }
            self._store(key, obj, spec_changed=True)
            return 201, self._view(key)
        if name is None:
            if method == "GET":
                items = [self._view(k) for k in self.objects if k[0] == ns]
                return 200, {
                    "apiVersion": "serving.kserve.io/v1beta1",
                    "kind": "InferenceServiceList",
                    "items": items,
                    "metadata": {},
                }
            return self._status(405, "method not allowed")
        if key not in self.objects:
            return self._status(404, f'inferenceservices.serving.kserve.io "{name}" not found')
        current = self.objects[key]
        if method == "GET":
            self._reconcile(key)
            return 200, self._view(key)
        if method == "DELETE":
            del self.objects[key], self.state[key]
            return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}}
        if method == "PATCH":
            content_type = headers.get("Content-Type", "")
            try:
                if "json-patch" in content_type:
                    updated = json_patch(current, body)
                else:  # merge-patch (and strategic merge, which is a merge for custom resources)
                    sent = ((body or {}).get("metadata") or {}).get("resourceVersion")
                    if sent is not None and sent != current["metadata"]["resourceVersion"]:
                        return self._conflict(name)
                    updated = merge_patch(current, body)
            except (KeyError, IndexError, ValueError) as exc:
                return self._status(422, f"invalid patch: {exc}")
        elif method == "PUT":
            sent = (body.get("metadata") or {}).get("resourceVersion")
            if sent != current["metadata"]["resourceVersion"]:
                return self._conflict(name)
            updated = copy.deepcopy(body)
            for field in ("uid", "generation", "namespace", "name"):
                updated["metadata"][field] = current["metadata"][field]
        else:
            return self._status(405, "method not allowed")
        updated.pop("status", None)
        refusal = self._admission(updated)
        if refusal:
            return self._status(400, refusal)
        changed = updated.get("spec") != current.get("spec")
        if changed:
            updated["metadata"]["generation"] = current["metadata"]["generation"] + 1
        self._store(key, updated, spec_changed=changed)
        return 200, self._view(key)

    # controller imitation ---------------------------------------------------------------------
    def _store(self, key, obj, spec_changed: bool) -> None:
        self._resource_version += 1
        obj["metadata"]["resourceVersion"] = str(self._resource_version)
        self.objects[key] = obj
        if not spec_changed:
            return
        state = self.state[key]
        predictor = obj["spec"]["predictor"]
        template = {k: v for k, v in predictor.items() if k != "canaryTrafficPercent"}
        revisions = state["revisions"]
        if not revisions or revisions[-1].template != template:
            canary = state["canaries"].get(predictor.get("name"))
            if canary is not None and canary.template.get("model") == template.get("model"):
                revisions.append(canary)  # promotion: the canary's deployment becomes stable
            else:
                revisions.append(self._revision(f"{key[1]}-predictor-{len(revisions) + 1:05d}", template))
        wanted = {}
        for entry in obj["spec"].get("canary") or []:
            canary_predictor = entry["predictor"]
            known = state["canaries"].get(canary_predictor["name"])
            if known is None or known.template != canary_predictor:
                known = self._revision(f"{key[1]}-{canary_predictor['name']}-predictor", canary_predictor)
            wanted[canary_predictor["name"]] = known
        state["canaries"] = wanted

    def _revision(self, name: str, predictor: dict) -> _Revision:
        uri = (predictor.get("model") or {}).get("storageUri", "")
        return _Revision(name, uri, predictor, self.ready_after, uri in self.never_ready)

    def _mode(self, obj) -> str:
        mode = (obj["metadata"].get("annotations") or {}).get("serving.kserve.io/deploymentMode", "")
        if not mode:
            return self.default_mode
        return "Knative" if mode.lower() in ("knative", "serverless") else "Standard"

    @staticmethod
    def _tick(revision) -> None:
        if not revision.ready and not revision.never:
            revision.reads_left -= 1
            revision.ready = revision.reads_left <= 0

    def _reconcile(self, key) -> None:
        obj, state = self.objects[key], self.state[key]
        state["observed"] = obj["metadata"]["generation"]
        latest = state["revisions"][-1]
        self._tick(latest)
        for canary in state["canaries"].values():
            self._tick(canary)
        canary = obj["spec"]["predictor"].get("canaryTrafficPercent")
        if latest.ready and state["rolled_out"] is not latest:
            knative_canary = self._mode(obj) == "Knative" and canary is not None and canary < 100
            if state["rolled_out"] is None or not knative_canary:
                state["previous"], state["rolled_out"] = state["rolled_out"], latest
        # The controller writes status as it reconciles: every status change is a new version.
        status = self._status_of(key)
        if status != state["seen"]:
            state["seen"] = status
            self._resource_version += 1
            obj["metadata"]["resourceVersion"] = str(self._resource_version)

    def url_of(self, revision) -> str:
        return self.servers.get(revision.storage_uri, DEAD_URL) if revision else ""

    def _view(self, key) -> dict:
        obj = copy.deepcopy(self.objects[key])
        obj["status"] = self._status_of(key)
        return obj

    def _status_of(self, key) -> dict:
        obj, state = self.objects[key], self.state[key]
        latest, rolled_out = state["revisions"][-1], state["rolled_out"]
        mode = self._mode(obj)
        tags = (obj["metadata"].get("annotations") or {}).get(
            "serving.kserve.io/enable-tag-routing"
        ) == "true"
        canary = obj["spec"]["predictor"].get("canaryTrafficPercent")
        split = []
        if mode == "Knative" and rolled_out is not None:
            if latest is rolled_out or not latest.ready:
                split = [(rolled_out, 100, latest is rolled_out, "prev")]
            else:
                split = [(rolled_out, 100 - canary, False, "prev"), (latest, canary, True, "latest")]
        traffic = []
        for revision, percent, is_latest, tag in split:
            entry = {"revisionName": revision.name, "percent": percent, "latestRevision": is_latest}
            if tags:
                entry.update(tag="latest" if is_latest else tag, url=self.url_of(revision))
            traffic.append(entry)
        ready = latest.ready and state["observed"] >= obj["metadata"]["generation"]
        if ready:
            condition = {"type": "Ready", "status": "True"}
        elif latest.never:
            condition = {
                "type": "Ready",
                "status": "False",
                "reason": "RevisionFailed",
                "message": f'Revision "{latest.name}" failed with message: container "kserve-container" '
                f"is in CrashLoopBackOff",
            }
        else:
            condition = {
                "type": "Ready",
                "status": "False",
                "reason": "RevisionNotReady",
                "message": f'Revision "{latest.name}" is not ready yet',
            }
        url = self.url_of(rolled_out)
        # As on a cluster: the external URL is not reachable from here; the address is.
        meta = obj["metadata"]
        external = f"http://{meta['name']}.{meta.get('namespace', 'default')}.example.invalid"
        predictor = {
            "latestCreatedRevision": latest.name,
            "latestReadyRevision": next((r.name for r in reversed(state["revisions"]) if r.ready), None),
            "latestRolledoutRevision": rolled_out.name if rolled_out else None,
            "previousRolledoutRevision": state["previous"].name if state["previous"] else None,
            "url": external,
            "address": {"url": url},
        }
        if traffic:
            predictor["traffic"] = traffic
        conditions = [{"type": "PredictorReady", "status": condition["status"]}, condition]
        status = {
            "observedGeneration": state["observed"],
            "url": external,
            "address": {"url": url},
            "conditions": conditions,
            "components": {"predictor": {k: v for k, v in predictor.items() if v is not None}},
        }
        if self.report_mode:
            status["deploymentMode"] = mode
        if state["canaries"]:
            percents = {e["predictor"]["name"]: e.get("trafficPercent", 0) for e in obj["spec"]["canary"]}
            status["canaryStatuses"] = [
                {"name": name, "ready": c.ready, "trafficPercent": percents[name]}
                for name, c in state["canaries"].items()
            ]
            every = all(c.ready for c in state["canaries"].values())
            conditions.append(
                {
                    "type": "CanaryPredictorReady",
                    "status": "True" if every else "False",
                    "reason": "AllCanariesReady" if every else "CanaryNotReady",
                }
            )
        return status

    def write(self, namespace: str, name: str, patch: dict) -> None:
        """Another writer's merge-patch (call from ``before_patch``: the lock is held)."""
        key = (namespace, name)
        current = self.objects[key]
        updated = merge_patch(current, patch)
        changed = updated.get("spec") != current.get("spec")
        if changed:
            updated["metadata"]["generation"] = current["metadata"]["generation"] + 1
        self._store(key, updated, spec_changed=changed)

    def status_update(self, namespace: str, name: str) -> None:
        """The controller writing status: a new resourceVersion, the spec untouched."""
        self._resource_version += 1
        self.objects[(namespace, name)]["metadata"]["resourceVersion"] = str(self._resource_version)

    def backend(self, host: str) -> str:
        """The server behind ``<service>.<ns>.svc.cluster.local`` (the cluster's DNS), or ""."""
        with self.lock:
            for (ns, name), state in self.state.items():
                services = {f"{name}-predictor": state["rolled_out"]}
                services.update({c.name: c for c in state["canaries"].values()})
                for service, revision in services.items():
                    if revision is not None and host == f"{service}.{ns}.svc.cluster.local":
                        return self.url_of(revision)
        return ""

    # test helpers ----------------------------------------------------------------------------
    def serving(self, namespace: str, name: str) -> dict:
        """``{revision: percent}`` and the storage URI each serves, as the test sees it."""
        with self.lock:
            view = self._view((namespace, name))
        return view


# --- Kubeflow Trainer ------------------------------------------------------------------------

TRAINER_API = "trainer.kubeflow.org/v1alpha1"
_TRAINJOBS = re.compile(
    r"^/apis/trainer\.kubeflow\.org/v1alpha1/namespaces/(?P<ns>[^/]+)/trainjobs(?:/(?P<name>[^/?]+))?/?(?:\?|$)"
)
_PODS = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods(?:/(?P<name>[^/?]+)(?P<log>/log)?)?/?(?:\?|$)")
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_FATAL_WAIT = "CreateContainerConfigError"


def request_attributes(method: str, path: str) -> tuple[str, str, str, str, str]:
    """(API group, resource[/subresource], verb, namespace, name) of a request, as the API
    server's authorizer sees it (GET on a collection is list, or watch with ``watch=true``)."""
    url = urllib.parse.urlsplit(path)
    parts = url.path.strip("/").split("/")
    group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
    namespace = ""
    if rest[:1] == ["namespaces"] and len(rest) >= 2:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    if len(rest) > 2:
        resource += "/" + rest[2]
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, "get")
    if method == "GET" and not name:
        watch = urllib.parse.parse_qs(url.query).get("watch", [""])[0].lower() in ("true", "1")
        verb = "watch" if watch else "list"
    elif method == "DELETE" and not name:
        verb = "deletecollection"
    return group, resource, verb, namespace, name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class LogStream:
    """A pod's log as the kubelet serves it through the API server: plain text, and with
    ``follow`` a chunked stream that ends when the container has ended."""

    def __init__(self, node: _Node, follow: bool):
        self.node, self.follow = node, follow

    def send(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        try:
            with open(self.node.log_path, "rb") as log:
                while True:
                    ended = not self.follow or self.node.ended()
                    chunk = log.read(65536)
                    if chunk:
                        handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        handler.wfile.flush()
                    elif ended:
                        break
                    else:
                        time.sleep(0.05)
            handler.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):  # the client stopped following
            pass


class _Node:
    """One node of a TrainJob: its pod (as the JobSet's Indexed Job creates it) and the real
    local process running the job's command."""

    def __init__(self, pod: dict, argv: list[str], env: dict | str, log_path: Path, cwd: str | None):
        self.pod, self.log_path = pod, log_path
        self.disruption: tuple[str, str, str] | None = None  # (pod reason, message, condition reason)
        self.deleted = False
        self.waiting = env if isinstance(env, str) else ""  # why the container cannot start
        self.process = None
        env = None if self.waiting else env
        if env is not None:
            with open(log_path, "wb") as log:
                self.process = subprocess.Popen(
                    argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
        else:
            log_path.write_bytes(b"")
        self.finished_at = ""

    def ended(self) -> bool:
        return self.process is None or self.process.poll() is not None

    def phase(self) -> str:
        if self.process is None:
            return "Pending"
        code = self.process.poll()
        if code is None:
            return "Running"
        self.finished_at = self.finished_at or _now()
        return "Succeeded" if code == 0 else "Failed"

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait()

    def view(self) -> dict:
        pod = copy.deepcopy(self.pod)
        phase = self.phase()
        status: dict = {"phase": phase, "conditions": []}
        if phase == "Pending":
            state = {"waiting": {"reason": _FATAL_WAIT, "message": self.waiting}}
        elif phase == "Running":
            state = {"running": {"startedAt": pod["metadata"]["creationTimestamp"]}}
        else:
            code = self.process.returncode
            exit_code = code if code >= 0 else 128 - code  # killed by a signal: 128 + signal
            state = {
                "terminated": {
                    "exitCode": exit_code,
                    "reason": "Completed" if code == 0 else "Error",
                    "finishedAt": self.finished_at,
                }
            }
        if self.disruption:
            reason, message, condition = self.disruption
            status.update(phase="Failed", reason=reason, message=message)
            status["conditions"].append(
                {"type": "DisruptionTarget", "status": "True", "reason": condition, "message": message}
            )
        status["conditions"].append({"type": "Ready", "status": "True" if phase == "Running" else "False"})
        image = pod["spec"]["containers"][0]["image"]
        status["containerStatuses"] = [
            {"name": "node", "image": image, "imageID": f"{image}@sha256:{'0' * 64}",
             "ready": phase == "Running", "restartCount": 0, "state": state}
        ]
        pod["status"] = status
        return pod


class _Job:
    def __init__(self, obj: dict, nodes: list[_Node]):
        self.obj, self.nodes = obj, nodes
        self.outcome: tuple[str, str, str] | None = None  # (condition type, reason, message)
        self.created_at = self.ended_at = _now()
        self.seen: dict | None = None


class FakeTrainer:
    """The Kubeflow Trainer controller and the JobSet and kubelet under it, for ``FakeKube``.

    Serves ``/apis/trainer.kubeflow.org/v1alpha1/namespaces/<ns>/trainjobs[/<name>]`` (POST,
    GET, DELETE) and the pods it creates, ``/api/v1/namespaces/<ns>/pods[/<name>[/log]]`` (list
    with ``labelSelector``, get, the log with ``follow``). As strict as the real API where a
    launcher depends on it:

    - a TrainJob's name must be an RFC 1035 label of at most 63 characters and its label values
      valid label values (422 otherwise, as the CRD's validation); creating an existing name is
      409 AlreadyExists; ``runtimeRef`` must name a runtime in ``runtimes`` (the TrainingRuntime
      manifests the test applied; the webhook's 422 otherwise); ``status`` sent by a client is
      dropped: the controller alone writes it, and every change of it is a new
      ``resourceVersion``;
    - each node (``spec.trainer.numNodes``, else the runtime's ``mlPolicy.numNodes``) is a pod
      ``<job>-node-0-<i>-<suffix>`` with JobSet's labels (``jobset.sigs.k8s.io/jobset-name``,
      ``jobset.sigs.k8s.io/replicatedjob-name: node``, ``batch.kubernetes.io/job-completion-index``),
      hostname ``<job>-node-0-<i>`` and subdomain ``<job>`` (JobSet's headless service), running
      the job's ``command`` + ``args`` (else the runtime container's) as a real local process
      (the image is not pulled: the tests run in the same image). Its environment is the
      runtime container's env overlaid with the TrainJob's (``value``, ``secretKeyRef`` into
      ``secrets``, optional ones skipped, a missing one leaves the pod waiting with the kubelet's
      ``CreateContainerConfigError``; ``fieldRef`` to the pod's name, namespace or labels),
      ``JOB_COMPLETION_INDEX`` (as in every Indexed Job) and ``node_env`` (what the image
      itself provides: PATH and the like). Nothing of the launcher's own environment leaks in;
    - the cluster's DNS on loopback: in env values, ``<hostname>.<subdomain>[.<ns>.svc
      [.cluster.local]]:<port>`` of a node becomes ``127.0.0.1:<that node's own free port>``,
      so the nodes really reach each other;
    - status on every read: ``Created``, then ``Complete`` (reason ``AllJobsCompleted``) when
      every node exited 0, or ``Failed`` (reason ``FailedJobs``) as soon as one failed; then
      the other nodes are stopped and their pods removed, as the Job controller does, while
      the failed pod stays with its exit code, or its ``reason``/``message`` and
      ``DisruptionTarget`` condition when ``disrupt`` (an eviction or preemption) ended it;
    - DELETE of a TrainJob kills its nodes and removes its pods at once.
    """

    def __init__(
        self,
        runtimes: list[dict] = (),
        *,
        secrets: dict[str, dict[str, str]] | None = None,
        node_env: dict[str, str] | None = None,
        workdir: Path | None = None,
        cwd: str | None = None,
    ):
        self.runtimes = {(r["kind"], r["metadata"]["name"]): r for r in runtimes}
        self.secrets = dict(secrets or {})
        self.node_env = dict(node_env or {})
        self.workdir = Path(workdir) if workdir else None
        self.cwd = cwd
        self.jobs: dict[tuple[str, str], _Job] = {}
        self.created: list[dict] = []  # every TrainJob as created (what the client sent, stored)
        self.fake: FakeKube | None = None

    def bind(self, fake: FakeKube) -> None:
        self.fake = fake

    def stop(self) -> None:
        for job in self.jobs.values():
            for node in job.nodes:
                node.kill()

    @staticmethod
    def serves(path: str) -> bool:
        return bool(_TRAINJOBS.match(path) or _PODS.match(path))

    # API ------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, body):
        status = self.fake._status
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        pods = _PODS.match(path)
        if pods:
            if method != "GET":
                return status(405, "method not allowed")
            return self._pods(pods["ns"], pods["name"], bool(pods["log"]), query)
        match = _TRAINJOBS.match(path)
        ns, name = match["ns"], match["name"]
        if method == "POST" and name is None:
            return self._create(ns, body)
        if name is None:
            if method != "GET":
                return status(405, "method not allowed")
            for key in [k for k in self.jobs if k[0] == ns]:
                self._reconcile(key)
            items = [copy.deepcopy(j.obj) for k, j in self.jobs.items() if k[0] == ns]
            return 200, {"apiVersion": TRAINER_API, "kind": "TrainJobList", "metadata": {}, "items": items}
        key = (ns, name)
        if key not in self.jobs:
            return status(404, f'trainjobs.trainer.kubeflow.org "{name}" not found')
        if method == "GET":
            self._reconcile(key)
            return 200, copy.deepcopy(self.jobs[key].obj)
        if method == "DELETE":
            job = self.jobs.pop(key)
            for node in job.nodes:
                node.kill()
            return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {},
                         "details": {"name": name, "group": "trainer.kubeflow.org", "kind": "trainjobs"}}
        return status(405, "method not allowed")

    def _invalid(self, name: str, message: str):
        return self.fake._status(422, f'TrainJob.trainer.kubeflow.org "{name}" is invalid: {message}')

    def _create(self, ns: str, body: dict):
        if (body or {}).get("apiVersion") != TRAINER_API or body.get("kind") != "TrainJob":
            return self.fake._status(400, f"the body is not a {TRAINER_API} TrainJob")
        meta = body.get("metadata") or {}
        name = meta.get("name", "")
        if not _DNS_LABEL.match(name) or len(name) > 63:
            return self._invalid(name, "metadata.name must match RFC 1035 DNS label format (<= 63 chars)")
        for value in (meta.get("labels") or {}).values():
            if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
                return self._invalid(
                    name,
                    f'metadata.labels: Invalid value: "{value}": a valid label value is at most 63 '
                    "characters of [A-Za-z0-9-_.], starting and ending alphanumeric",
                )
        if (ns, name) in self.jobs:
            return self.fake._status(409, f'trainjobs.trainer.kubeflow.org "{name}" already exists')
        ref = (body.get("spec") or {}).get("runtimeRef") or {}
        kind = ref.get("kind") or "ClusterTrainingRuntime"
        runtime = self.runtimes.get((kind, ref.get("name", "")))
        if runtime is None:
            return self.fake._status(
                422,
                'admission webhook "validator.trainjob.trainer.kubeflow.org" denied the request: '
                f'spec.runtimeRef: Invalid value: "{ref.get("name", "")}": {kind}.trainer.kubeflow.org '
                f'"{ref.get("name", "")}" not found',
            )
        obj = copy.deepcopy(body)
        obj.pop("status", None)
        obj["spec"]["runtimeRef"] = {"apiGroup": "trainer.kubeflow.org", **ref, "kind": kind}
        obj["spec"].setdefault("suspend", False)
        obj["spec"].setdefault("managedBy", "trainer.kubeflow.org/trainjob-controller")
        obj["metadata"].update(
            namespace=ns, uid=f"uid-{name}-{len(self.created)}", generation=1, creationTimestamp=_now(),
            resourceVersion=self.fake.next_resource_version(),
        )
        self.created.append(copy.deepcopy(obj))
        self.jobs[(ns, name)] = _Job(obj, self._start_nodes(ns, obj, runtime))
        return 201, copy.deepcopy(obj)

    def _pods(self, ns: str, name: str | None, log: bool, query: dict):
        for key in [k for k in self.jobs if k[0] == ns]:
            self._reconcile(key)
        nodes = [n for k, j in self.jobs.items() if k[0] == ns for n in j.nodes if not n.deleted]
        if name is None:
            wanted = dict(
                term.split("=", 1) for term in query.get("labelSelector", [""])[0].split(",") if "=" in term
            )
            items = [
                n.view() for n in nodes
                if all(n.pod["metadata"]["labels"].get(k) == v for k, v in wanted.items())
            ]
            return 200, {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}
        node = next((n for n in nodes if n.pod["metadata"]["name"] == name), None)
        if node is None:
            return self.fake._status(404, f'pods "{name}" not found')
        if log:
            if node.process is None:
                return self.fake._status(
                    400, f'container "node" in pod "{name}" is waiting to start: {_FATAL_WAIT}'
                )
            return 200, LogStream(node, follow=query.get("follow", [""])[0].lower() in ("true", "1"))
        return 200, node.view()

    # controller imitation ---------------------------------------------------------------------
    def _start_nodes(self, ns: str, obj: dict, runtime: dict) -> list[_Node]:
        name, trainer = obj["metadata"]["name"], obj["spec"].get("trainer") or {}
        replicated = next(
            j for j in runtime["spec"]["template"]["spec"]["replicatedJobs"] if j["name"] == "node"
        )
        container = next(
            c for c in replicated["template"]["spec"]["template"]["spec"]["containers"] if c["name"] == "node"
        )
        count = int(trainer.get("numNodes") or runtime["spec"].get("mlPolicy", {}).get("numNodes") or 1)
        argv = list(trainer.get("command") or container.get("command") or []) + list(
            trainer.get("args") or (container.get("args") if not trainer.get("command") else []) or []
        )
        merged = {e["name"]: e for e in (container.get("env") or []) + (trainer.get("env") or [])}
        hosts = [f"{name}-node-0-{i}" for i in range(count)]
        ports = {host: _free_port() for host in hosts}
        root = self.workdir or Path(tempfile.mkdtemp(prefix="fake-trainer-"))
        nodes = []
        for index, host in enumerate(hosts):
            suffix = hashlib.sha256(f"{name}{index}{len(self.created)}".encode()).hexdigest()[:5]
            pod_name = f"{host}-{suffix}"
            labels = {
                "jobset.sigs.k8s.io/jobset-name": name,
                "jobset.sigs.k8s.io/replicatedjob-name": "node",
                "jobset.sigs.k8s.io/job-index": "0",
                "batch.kubernetes.io/job-completion-index": str(index),
                **((replicated["template"].get("metadata") or {}).get("labels") or {}),
            }
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod_name, "namespace": ns, "uid": f"uid-{pod_name}", "labels": labels,
                    "creationTimestamp": _now(),
                },
                "spec": {
                    "hostname": host,
                    "subdomain": name,
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "node",
                            "image": trainer.get("image") or container.get("image"),
                            "command": argv,
                            "env": list(merged.values()),
                            "resources": trainer.get("resourcesPerNode") or container.get("resources") or {},
                        }
                    ],
                },
            }
            env = self._environment(ns, pod, merged, index, name, ports)
            log_path = root / f"{pod_name}.log"
            nodes.append(_Node(pod, argv, env, log_path, self.cwd))
        return nodes

    def _environment(self, ns, pod, merged, index, subdomain, ports) -> dict[str, str] | str:
        """The container's environment, or the kubelet's message when a secret it needs is missing."""
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "PYTHONPATH") if k in os.environ}
        env.update(self.node_env)
        for name, var in merged.items():
            source = var.get("valueFrom") or {}
            if "value" in var or not source:
                value = str(var.get("value", ""))
            elif "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                value = (self.secrets.get(ref["name"]) or {}).get(ref["key"])
                if value is None:
                    if ref.get("optional"):
                        continue
                    if ref["name"] not in self.secrets:
                        return f'secret "{ref["name"]}" not found'
                    return f'couldn\'t find key {ref["key"]} in Secret {ns}/{ref["name"]}'
            elif "fieldRef" in source:
                field = source["fieldRef"]["fieldPath"]
                meta = pod["metadata"]
                label = re.match(r"metadata\.labels\['(.+)'\]$", field)
                value = (
                    meta["labels"].get(label[1], "") if label
                    else {"metadata.name": meta["name"], "metadata.namespace": ns}.get(field, "")
                )
            else:
                continue
            for host, port in ports.items():
                domain = rf"{re.escape(host)}\.{re.escape(subdomain)}"
                domain += rf"(\.{re.escape(ns)}(\.svc(\.cluster\.local)?)?)?:\d+"
                value = re.sub(domain, f"127.0.0.1:{port}", value)
            env[name] = value
        env["JOB_COMPLETION_INDEX"] = str(index)
        env["HOSTNAME"] = pod["spec"]["hostname"]
        return env

    def _reconcile(self, key) -> None:
        job = self.jobs[key]
        if job.outcome is None:
            phases = [n.phase() for n in job.nodes]
            if "Failed" in phases:
                job.outcome = ("Failed", "FailedJobs", "jobset failed due to one or more job failures")
                job.ended_at = _now()
                for node, phase in zip(job.nodes, phases, strict=True):
                    if phase in ("Running", "Pending"):  # the Job controller deletes its active pods
                        node.kill()
                        node.deleted = True
            elif all(p == "Succeeded" for p in phases):
                job.outcome = ("Complete", "AllJobsCompleted", "jobset completed successfully")
                job.ended_at = _now()
        status = self._status_of(job)
        if status != job.seen:  # the controller writes status: every change is a new version
            job.seen = status
            job.obj["metadata"]["resourceVersion"] = self.fake.next_resource_version()
        job.obj["status"] = copy.deepcopy(status)

    @staticmethod
    def _status_of(job: _Job) -> dict:
        conditions = [
            {"type": "Created", "status": "True", "reason": "JobsCreated",
             "message": "Succeeded to create Jobs", "lastTransitionTime": job.created_at}
        ]
        live = [n for n in job.nodes if not n.deleted]
        phases = [n.phase() for n in live]
        if job.outcome:
            kind, reason, message = job.outcome
            conditions.append(
                {"type": kind, "status": "True", "reason": reason, "message": message,
                 "lastTransitionTime": job.ended_at}
            )
        active = int(job.outcome is None)
        counts = {
            "ready": int(active and all(p == "Running" for p in phases)),
            "succeeded": int(job.outcome is not None and job.outcome[0] == "Complete"),
            "failed": int("Failed" in phases),
            "active": active,
            "suspended": 0,
        }
        return {"conditions": conditions, "jobsStatus": [{"name": "node", **counts}]}

    # test helpers ----------------------------------------------------------------------------
    def nodes(self, namespace: str, name: str) -> list[_Node]:
        with self.fake.lock:
            return list(self.jobs[(namespace, name)].nodes)

    def disrupt(
        self, namespace: str, name: str, index: int, *, reason: str = "Evicted",
        message: str = "The node was low on resource: memory.", condition: str = "TerminationByKubelet",
    ) -> str:
        """Ends node ``index`` as an eviction or preemption does (SIGKILL, the pod Failed with
        ``reason``/``message`` and a ``DisruptionTarget`` condition); returns the pod's name."""
        with self.fake.lock:
            node = self.jobs[(namespace, name)].nodes[index]
            node.disruption = (reason, message, condition)
            node.kill()
            return node.pod["metadata"]["name"]
