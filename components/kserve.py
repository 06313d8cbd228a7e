"""KServe InferenceService access: the live object, its model URI, its mode and traffic.

Used by deploy_model (target="kserve") and by evaluate_model (``baseline_source="kserve"``
reads ``current_storage_uri``). Everything goes through the real ``kserve.KServeClient``
(the kubernetes client underneath), configured from a kubeconfig file or, inside a pod, from
the in-cluster service account. Runs in the runtime image; never imports kfp.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

GROUP = "serving.kserve.io"
API_VERSION = f"{GROUP}/v1beta1"
KIND = "InferenceService"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
KNATIVE, STANDARD = "Knative", "Standard"
# KServe 0.16+ renamed Serverless -> Knative and RawDeployment -> Standard; both spellings
# are accepted by the controller, so both are read here.
_MODES = {"knative": KNATIVE, "serverless": KNATIVE, "standard": STANDARD, "rawdeployment": STANDARD}
DEFAULT_MODE = STANDARD  # KServe 0.21's default when the annotation is absent


class KubernetesApiError(RuntimeError):
    """The Kubernetes API refused or failed a request (``status`` is the HTTP code or None)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def connect(kubeconfig: str = ""):
    """A ``KServeClient`` for the kubeconfig at ``kubeconfig``, else in-cluster/default config."""
    import os

    from kserve import KServeClient

    # $KUBECONFIG is read here, not by the kubernetes package, which reads it once at import.
    kubeconfig = kubeconfig or os.environ.get("KUBECONFIG", "")
    try:
        return KServeClient(config_file=kubeconfig or None)
    except Exception as exc:  # noqa: BLE001 - kubernetes raises several config error types
        where = kubeconfig or "the in-cluster service account or ~/.kube/config"
        raise KubernetesApiError(
            f"cannot configure a Kubernetes client from {where} ({type(exc).__name__}: {exc})"
        ) from exc


def call(what: str, func, *args, **kwargs):
    """Runs one KServeClient call; API failures become a ``KubernetesApiError`` that says why.

    KServeClient wraps ``ApiException`` in a bare RuntimeError; the original is its context.
    """
    from kubernetes.client.rest import ApiException
    from urllib3.exceptions import HTTPError

    try:
        return func(*args, **kwargs)
    except RuntimeError as exc:
        api = exc.__context__ if isinstance(exc.__context__, ApiException) else None
        if api is None:
            raise
        raise KubernetesApiError(_explain(what, api), api.status) from exc
    except ApiException as exc:
        raise KubernetesApiError(_explain(what, exc), exc.status) from exc
    except HTTPError as exc:
        raise KubernetesApiError(f"{what}: the Kubernetes API did not answer ({exc})") from exc


def _explain(what: str, exc) -> str:
    import json

    detail = ""
    try:
        detail = json.loads(exc.body or "{}").get("message", "")
    except (ValueError, AttributeError):
        detail = str(exc.body or "")
    text = f"{what}: HTTP {exc.status} {exc.reason}" + (f": {detail}" if detail else "")
    if exc.status in (401, 403):
        text += (
            ". The service account needs get/list/watch/create/patch/update on "
            "inferenceservices.serving.kserve.io in this namespace (see manifests/rbac)."
        )
    elif exc.status == 409:
        text += (
            ". The InferenceService was changed concurrently (or already exists); another "
            "deployment may be running. Retry when it has finished."
        )
    return text


def get(kclient, name: str, namespace: str) -> dict[str, Any] | None:
    """The live InferenceService as a dict, or None when it does not exist."""
    try:
        return call(f"get InferenceService {namespace}/{name}", kclient.get, name, namespace=namespace)
    except KubernetesApiError as exc:
        if exc.status == 404:
            return None
        raise


def storage_uri_of(isvc: dict[str, Any] | None) -> str | None:
    """The predictor's storageUri (``model`` spec, or the legacy ``tensorflow`` one)."""
    if not isvc:
        return None
    predictor = isvc.get("spec", {}).get("predictor", {})
    for key in ("model", "tensorflow"):
        uri = (predictor.get(key) or {}).get("storageUri")
        if uri:
            return uri
    return None


def deployment_mode(isvc: dict[str, Any] | None) -> str:
    """Knative or Standard, from the deploymentMode annotation (absent: KServe's default)."""
    annotations = ((isvc or {}).get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(MODE_ANNOTATION, "")
    return _MODES.get(raw.lower(), DEFAULT_MODE) if raw else DEFAULT_MODE


def current_storage_uri(name: str, namespace: str = "default", *, kubeconfig: str = "") -> str | None:
    """The live InferenceService's predictor storageUri, or None when the service does not exist.

    Args:
        name: InferenceService name.
        namespace: Its namespace.
        kubeconfig: Path of a kubeconfig file; empty uses the in-cluster service account (in a
            pod) or ``$KUBECONFIG`` / ``~/.kube/config``.

    Raises:
        KubernetesApiError: the API refused the request (e.g. 403) or did not answer.
    """
    return storage_uri_of(get(connect(kubeconfig), name, namespace))


# --- rendering -----------------------------------------------------------------------------

TEMPLATE = "manifests/kserve/base/inferenceservice.yaml"
"""The InferenceService template, relative to the project root (its only home)."""


def template_path(path: str = "") -> str:
    """``path`` when given, else the project's template (source checkout or image).

    Raises:
        FileNotFoundError: naming every place looked at.
    """
    import os
    from pathlib import Path

    import components

    if path:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"InferenceService template {path!r} does not exist")
        return path
    roots = [Path(components.__file__).resolve().parent.parent, Path("/opt/project")]
    for root in roots:
        candidate = root / TEMPLATE
        if candidate.is_file():
            return str(candidate)
    raise FileNotFoundError(
        f"InferenceService template {TEMPLATE} not found under {', '.join(map(str, roots))}; "
        "pass manifest_template=PATH"
    )


def render(
    *,
    name: str,
    namespace: str,
    storage_uri: str,
    deployment_mode: str = KNATIVE,
    runtime_version: str = "",
    resources: dict | None = None,
    min_replicas: int | None = None,
    max_replicas: int | None = None,
    service_account: str = "",
    labels: dict | None = None,
    template: str = "",
) -> dict[str, Any]:
    """The InferenceService to apply: the template (YAML) with this deployment's fields set."""
    import yaml

    with open(template_path(template)) as stream:
        isvc = yaml.safe_load(stream)
    if isvc.get("apiVersion") != API_VERSION or isvc.get("kind") != KIND:
        raise ValueError(f"template {template_path(template)} is not a {API_VERSION} {KIND}")
    metadata = isvc.setdefault("metadata", {})
    metadata["name"], metadata["namespace"] = name, namespace
    metadata.setdefault("labels", {}).update({"app.kubernetes.io/name": name, **(labels or {})})
    metadata.setdefault("annotations", {})[MODE_ANNOTATION] = normalize_mode(deployment_mode)
    predictor = isvc.setdefault("spec", {}).setdefault("predictor", {})
    model = predictor.setdefault("model", {})
    model.setdefault("modelFormat", {})["name"] = "tensorflow"
    model["storageUri"] = storage_uri
    if runtime_version:
        model["runtimeVersion"] = runtime_version
    if resources:
        model["resources"] = resources
    if min_replicas is not None:
        predictor["minReplicas"] = min_replicas
    if max_replicas is not None:
        predictor["maxReplicas"] = max_replicas
    if service_account:
        predictor["serviceAccountName"] = service_account
    return isvc


def normalize_mode(mode: str) -> str:
    """Knative or Standard (legacy names Serverless / RawDeployment accepted)."""
    try:
        return _MODES[mode.lower()]
    except KeyError:
        raise ValueError(
            f"deployment_mode must be Knative or Standard (or Serverless/RawDeployment), got {mode!r}"
        ) from None


# --- status --------------------------------------------------------------------------------


def ready_condition(isvc: dict[str, Any] | None) -> dict[str, Any]:
    for condition in ((isvc or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition
    return {}


def predictor_status(isvc: dict[str, Any] | None) -> dict[str, Any]:
    return (((isvc or {}).get("status") or {}).get("components") or {}).get("predictor") or {}


def service_url(isvc: dict[str, Any] | None) -> str:
    """Where a pod in the cluster reaches the service: ``status.address.url`` (the in-cluster
    address), else the predictor's address, else the external ``status.url`` (which pods often
    cannot resolve)."""
    status = (isvc or {}).get("status") or {}
    predictor = predictor_status(isvc)
    return (
        (status.get("address") or {}).get("url")
        or (predictor.get("address") or {}).get("url")
        or status.get("url")
        or predictor.get("url")
        or ""
    )


def traffic(isvc: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The predictor's traffic split: revision, percent, latest, tag, url."""
    return [
        {
            "revision": t.get("revisionName", ""),
            "percent": t.get("percent", 0),
            "latest": bool(t.get("latestRevision")),
            "tag": t.get("tag", ""),
            "url": t.get("url", ""),
        }
        for t in predictor_status(isvc).get("traffic") or []
    ]


def canary_url(isvc: dict[str, Any] | None) -> str:
    """The tagged URL of the latest revision (tag routing), or "" when there is none."""
    for entry in traffic(isvc):
        if entry["latest"] and entry["url"]:
            return entry["url"]
    return ""


def serving_revision(isvc: dict[str, Any] | None) -> str:
    """The revision taking the most traffic (Knative), else the latest ready one."""
    split = traffic(isvc)
    if split:
        return max(split, key=lambda t: t["percent"])["revision"]
    predictor = predictor_status(isvc)
    return predictor.get("latestRolledoutRevision") or predictor.get("latestReadyRevision") or ""


# --- rollout -------------------------------------------------------------------------------


class NotReadyError(RuntimeError):
    """The InferenceService did not become Ready in time."""


def _version() -> str:
    return API_VERSION.split("/")[1]


def wait_ready(
    kclient, name: str, namespace: str, *, generation: int | None, timeout: float, poll: float
) -> dict[str, Any]:
    """Polls until Ready (for ``generation`` or later); returns the live object.

    Raises:
        NotReadyError: with the last Ready condition, when ``timeout`` passed.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        ready = call(
            f"read InferenceService {namespace}/{name}",
            kclient.is_isvc_ready,
            name,
            namespace=namespace,
            expected_generation=generation,
        )
        if ready:
            return get(kclient, name, namespace)
        if time.monotonic() >= deadline:
            live = get(kclient, name, namespace)
            condition = ready_condition(live)
            observed = ((live or {}).get("status") or {}).get("observedGeneration")
            raise NotReadyError(
                f"InferenceService {namespace}/{name} was not Ready within {timeout:g} s "
                f"(generation {generation}, observed {observed}; Ready={condition.get('status', 'unknown')}"
                + (f", {condition.get('reason')}" if condition.get("reason") else "")
                + (f": {condition.get('message')}" if condition.get("message") else "")
                + ")"
            )
        time.sleep(poll)


def _restore_patch(previous: Any, current: Any) -> Any:
    """A JSON merge-patch turning ``current`` back into ``previous`` (null deletes a key)."""
    if not isinstance(previous, dict) or not isinstance(current, dict):
        return previous
    patch = {key: None for key in current if key not in previous}
    for key, value in previous.items():
        if key not in current or current[key] != value:
            patch[key] = _restore_patch(value, current.get(key))
    return patch


class Rollout:
    """One deployment of ``desired`` (a rendered InferenceService) through KServeClient.

    ``smoke(url) -> SmokeResult`` sends the smoke requests; every step lands in ``verdict`` as
    a check. Model failures (not Ready, smoke test) roll back and leave ``healthy`` False; an
    API refusal rolls back what was changed, then raises ``KubernetesApiError``.
    """

    def __init__(
        self,
        kclient,
        desired,
        *,
        smoke,
        verdict,
        ready_timeout,
        poll_interval=5.0,
        canary_percent=10,
        allow_direct_rollout=False,
    ):
        self.k = kclient
        self.api = kclient.api_instance  # dict bodies: merge-patches need explicit nulls
        self.desired = desired
        self.name = desired["metadata"]["name"]
        self.namespace = desired["metadata"]["namespace"]
        self.where = f"InferenceService {self.namespace}/{self.name}"
        self.smoke, self.verdict = smoke, verdict
        self.ready_timeout, self.poll = ready_timeout, poll_interval
        self.canary_percent = canary_percent
        self.allow_direct_rollout = allow_direct_rollout
        self.outcome: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "model_uri": storage_uri_of(desired),
            "previous_model_uri": None,
            "mode": deployment_mode(desired),
            "action": "",
            "healthy": False,
            "rolled_back": False,
            "url": "",
            "revision": "",
            "traffic": [],
        }

    # small wrappers over the kubernetes client ------------------------------------------------
    def _get(self):
        return get(self.k, self.name, self.namespace)

    def _patch(self, body: dict, what: str) -> dict:
        return call(
            f"{what} {self.where}",
            self.api.patch_namespaced_custom_object,
            GROUP,
            _version(),
            self.namespace,
            "inferenceservices",
            self.name,
            body,
        )

    def _replace(self, body: dict, what: str) -> dict:
        return call(
            f"{what} {self.where}",
            self.api.replace_namespaced_custom_object,
            GROUP,
            _version(),
            self.namespace,
            "inferenceservices",
            self.name,
            body,
        )

    def _wait(self, generation):
        return wait_ready(
            self.k,
            self.name,
            self.namespace,
            generation=generation,
            timeout=self.ready_timeout,
            poll=self.poll,
        )

    def _check(self, name: str, status: str, reason: str, value=None, threshold=None):
        self.verdict.add(name, self.where, status, reason, value=value, threshold=threshold)
        (logger.info if status != "fail" else logger.warning)("%s: %s: %s", name, status, reason)

    def _finish(self, live: dict | None, action: str, healthy: bool) -> dict[str, Any]:
        self.outcome.update(
            action=action,
            healthy=healthy,
            url=service_url(live),
            revision=serving_revision(live),
            traffic=traffic(live),
        )
        return self.outcome

    # entry point --------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        live = self._get()
        if live is None:
            return self._first()
        mode = deployment_mode(live)
        requested = deployment_mode(self.desired)
        self.outcome.update(mode=mode, previous_model_uri=storage_uri_of(live))
        if mode != requested:
            self._check(
                "deployment-mode",
                "warn",
                f"requested {requested} mode, but the live service runs in {mode} mode, which KServe "
                f"does not change on a live InferenceService (delete and recreate it to switch)",
                value=mode,
                threshold=requested,
            )
        annotations = live["metadata"].get("annotations") or {}
        if MODE_ANNOTATION in annotations:  # keep the live spelling of the mode
            self.desired["metadata"]["annotations"][MODE_ANNOTATION] = annotations[MODE_ANNOTATION]
        else:
            self.desired["metadata"]["annotations"].pop(MODE_ANNOTATION, None)
        if storage_uri_of(live) == self.outcome["model_uri"]:
            return self._unchanged(live)
        if mode == KNATIVE:
            return self._canary(live)
        return self._direct(live)

    # first deployment ---------------------------------------------------------------------------
    def _first(self) -> dict[str, Any]:
        created = call(
            f"create {self.where}",
            self.api.create_namespaced_custom_object,
            GROUP,
            _version(),
            self.namespace,
            "inferenceservices",
            self.desired,
        )
        self._check("create", "pass", f"created (first deployment), model {self.outcome['model_uri']}")
        try:
            live = self._wait(created["metadata"].get("generation"))
            self._check("ready", "pass", "Ready")
            result = self.smoke(service_url(live))
            self._check(
                "smoke-test", "pass" if result.ok else "fail", result.reason, value=result.max_abs_diff
            )
            if result.ok:
                return self._finish(live, "created", True)
        except NotReadyError as exc:
            self._check("ready", "fail", str(exc), threshold=self.ready_timeout)
        except KubernetesApiError:
            self._delete_new()
            raise
        self._delete_new()
        return self._finish(None, "rolled-back", False)

    def _delete_new(self) -> None:
        """Rollback of a first deployment: nothing served before, so the new service goes."""
        call(f"delete {self.where}", self.k.delete, self.name, namespace=self.namespace)
        self.outcome["rolled_back"] = True
        self._check("rollback", "pass", "deleted the new InferenceService: no earlier model to return to")

    # same model again ---------------------------------------------------------------------------
    def _unchanged(self, live: dict) -> dict[str, Any]:
        self._check("rollout", "pass", f"already serving {self.outcome['model_uri']}: nothing to roll out")
        try:
            live = self._wait(None)
        except NotReadyError as exc:
            self._check("ready", "fail", str(exc), threshold=self.ready_timeout)
            return self._finish(live, "unchanged", False)
        result = self.smoke(service_url(live))
        self._check("smoke-test", "pass" if result.ok else "fail", result.reason, value=result.max_abs_diff)
        return self._finish(live, "unchanged", result.ok)

    # Knative: canary, smoke, promote or roll back -------------------------------------------------
    def _canary(self, live: dict) -> dict[str, Any]:
        previous_predictor = live["spec"]["predictor"]
        previous_revision = serving_revision(live)
        desired_meta = self.desired["metadata"]
        predictor = {**self.desired["spec"]["predictor"], "canaryTrafficPercent": self.canary_percent}
        patch = {
            "metadata": {
                "labels": desired_meta.get("labels", {}),
                "annotations": desired_meta.get("annotations", {}),
            },
            "spec": {"predictor": predictor},
        }
        patched = self._patch(patch, "start canary of")
        self._check(
            "canary",
            "pass",
            f"{self.canary_percent}% of traffic to the new revision ({self.outcome['model_uri']}), "
            f"{100 - self.canary_percent}% stays on {previous_revision or 'the previous revision'}",
            value=self.canary_percent,
        )
        try:
            try:
                canary = self._wait(patched["metadata"].get("generation"))
            except NotReadyError as exc:
                self._check("ready", "fail", str(exc), threshold=self.ready_timeout)
                return self._rollback(previous_predictor, predictor, previous_revision)
            self._check("ready", "pass", "canary revision Ready")
            url = canary_url(canary)
            if not url:
                url = service_url(canary)
                self._check(
                    "canary-url",
                    "warn",
                    "no tagged URL for the canary (annotation serving.kserve.io/enable-tag-routing: "
                    '"true" gives one); smoke requests go to the service URL and may reach either model',
                )
            result = self.smoke(url)
            self._check(
                "smoke-test", "pass" if result.ok else "fail", result.reason, value=result.max_abs_diff
            )
            if not result.ok:
                return self._rollback(previous_predictor, predictor, previous_revision)
            promoted = self._patch({"spec": {"predictor": {"canaryTrafficPercent": 100}}}, "promote")
            try:
                final = self._wait(promoted["metadata"].get("generation"))
            except NotReadyError as exc:
                self._check("promote", "fail", str(exc))
                return self._rollback(previous_predictor, predictor, previous_revision)
            split = traffic(final)
            latest = [t for t in split if t["latest"]]
            if split and (not latest or latest[0]["percent"] != 100):
                self._check("promote", "fail", f"after promotion the traffic split is {split}")
                return self._rollback(previous_predictor, predictor, previous_revision)
            self._check(
                "promote", "pass", f"new revision {serving_revision(final)} takes 100% of traffic", value=100
            )
            return self._finish(final, "canary-promoted", True)
        except KubernetesApiError:
            self._rollback(previous_predictor, predictor, previous_revision)
            raise

    def _rollback(self, previous_predictor: dict, applied: dict, previous_revision: str) -> dict[str, Any]:
        """canaryTrafficPercent 0 keeps the last rolled-out revision at 100%; the previous model
        spec goes back, so the live object again describes what serves."""
        import time

        restore = _restore_patch(previous_predictor, applied)
        restore = restore if isinstance(restore, dict) else {}
        restore["canaryTrafficPercent"] = 0
        try:
            self._patch({"spec": {"predictor": restore}}, "roll back")
        except KubernetesApiError as exc:
            self._check("rollback", "fail", f"rollback failed: {exc}")
            raise
        self.outcome["rolled_back"] = True
        deadline = time.monotonic() + self.ready_timeout
        while True:
            live = self._get()
            split = traffic(live)
            full = [t for t in split if t["percent"] == 100]
            if full and (not previous_revision or full[0]["revision"] == previous_revision):
                self._check(
                    "rollback",
                    "pass",
                    f"traffic back on {full[0]['revision']} (100%), model {storage_uri_of(live)}",
                )
                return self._finish(live, "rolled-back", False)
            if time.monotonic() >= deadline:
                self._check("rollback", "fail", f"after rollback the traffic split is {split}")
                return self._finish(live, "rolled-back", False)
            time.sleep(self.poll)

    # Standard (RawDeployment): no canary ------------------------------------------------------
    def _direct(self, live: dict) -> dict[str, Any]:
        if not self.allow_direct_rollout:
            self._check(
                "rollout-strategy",
                "fail",
                f"{self.where} runs in Standard (RawDeployment) mode, where KServe ignores "
                "canaryTrafficPercent: a rollout would move all traffic to the new model at once. "
                "Nothing was changed. Deploy the service in Knative mode (deployment_mode='Knative') "
                "for a canary, or pass allow_direct_rollout=True to replace it, smoke-test it and "
                "restore the previous spec on failure.",
            )
            return self._finish(live, "refused", False)
        body = self._full_object(self.desired, live)
        replaced = self._replace(body, "replace")
        self._check(
            "replace",
            "pass",
            f"replaced the predictor with {self.outcome['model_uri']} "
            "(Standard mode: no canary, allow_direct_rollout=True)",
        )
        try:
            try:
                final = self._wait(replaced["metadata"].get("generation"))
                self._check("ready", "pass", "Ready")
            except NotReadyError as exc:
                self._check("ready", "fail", str(exc), threshold=self.ready_timeout)
                return self._restore(live)
            result = self.smoke(service_url(final))
            self._check(
                "smoke-test", "pass" if result.ok else "fail", result.reason, value=result.max_abs_diff
            )
            if not result.ok:
                return self._restore(live)
            return self._finish(final, "replaced", True)
        except KubernetesApiError:
            self._restore(live)
            raise

    def _full_object(self, spec_source: dict, live: dict) -> dict:
        import copy

        body = {k: copy.deepcopy(v) for k, v in spec_source.items() if k != "status"}
        meta = body.setdefault("metadata", {})
        for key in ("labels", "annotations"):
            meta[key] = {**(live["metadata"].get(key) or {}), **(meta.get(key) or {})}
        current = self._get() or live
        meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        return body

    def _restore(self, previous: dict) -> dict[str, Any]:
        body = self._full_object(previous, previous)
        replaced = self._replace(body, "restore")
        self.outcome["rolled_back"] = True
        try:
            live = self._wait(replaced["metadata"].get("generation"))
            self._check("rollback", "pass", f"previous spec restored and Ready, model {storage_uri_of(live)}")
        except NotReadyError as exc:
            live = self._get()
            self._check("rollback", "fail", f"previous spec restored but not Ready: {exc}")
        return self._finish(live, "rolled-back", False)
