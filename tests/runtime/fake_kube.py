"""A local fake of the Kubernetes API server for KServe InferenceServices (tests only).

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
import json
import re
import threading
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
                    code, payload = fake.handle(self.command, self.path, self.headers, body)
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
