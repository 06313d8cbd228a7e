"""KServe InferenceService access: the live object, its model URI, its mode and traffic.

Used by deploy_model (target="kserve") and by evaluate_model (``baseline_source="kserve"``
reads ``current_storage_uri``). Everything goes through the real ``kserve.KServeClient``
(the kubernetes client underneath), configured from a kubeconfig file or, inside a pod, from
the in-cluster service account. Runs in the runtime image; never imports kfp.
"""

from __future__ import annotations

import logging
import re
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
VERSION_LABEL = "app.kubernetes.io/version"  # the registered model version a service serves
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


def api_error(what: str, exc) -> tuple[str, str]:
    """(``what: HTTP <status> <reason>: <message>``, the API's message) of a Kubernetes
    ``ApiException``; callers add the hint that fits their resource."""
    import json

    try:
        detail = json.loads(exc.body or "{}").get("message", "")
    except (ValueError, AttributeError):
        detail = str(exc.body or "")
    return f"{what}: HTTP {exc.status} {exc.reason}" + (f": {detail}" if detail else ""), detail


def _explain(what: str, exc) -> str:
    text, _ = api_error(what, exc)
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
    """Knative or Standard as the controller decided it: ``status.deploymentMode``, else the
    deploymentMode annotation; "" when neither says (the cluster's default applies, see
    ``cluster_default_mode``)."""
    isvc = isvc or {}
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    raw = (isvc.get("status") or {}).get("deploymentMode") or annotations.get(MODE_ANNOTATION, "")
    return _MODES.get(raw.lower(), "") if raw else ""


CONFIG_NAMESPACE, CONFIG_MAP = "kserve", "inferenceservice-config"


def cluster_default_mode(kclient) -> tuple[str, str]:
    """The controller's default mode (``deploy.defaultDeploymentMode`` of the KServe config map)
    and where it came from; KServe's own default when the map cannot be read (e.g. 403)."""
    import json

    where = f"ConfigMap {CONFIG_NAMESPACE}/{CONFIG_MAP}"
    try:
        config = call(
            f"read {where}", kclient.core_api.read_namespaced_config_map, CONFIG_MAP, CONFIG_NAMESPACE
        )
        raw = json.loads((config.data or {}).get("deploy") or "{}").get("defaultDeploymentMode", "")
    except (KubernetesApiError, ValueError) as exc:
        return DEFAULT_MODE, f"KServe's default (could not read {where}: {exc})"
    mode = _MODES.get(str(raw).lower())
    return (mode, where) if mode else (DEFAULT_MODE, f"KServe's default ({where} names none)")


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
"""The InferenceService template, relative to the project root (its only home). The wheel
installs ``manifests/`` as package data beside ``components``, so the path holds there too."""


def template_path(path: str = "") -> str:
    """``path`` when given, else the project's template: beside the ``components`` package, in
    a checkout and in an installed wheel (the images install one) alike.

    Raises:
        FileNotFoundError: naming the place looked at.
    """
    import os
    from pathlib import Path

    import components

    if path:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"InferenceService template {path!r} does not exist")
        return path
    candidate = Path(components.__file__).resolve().parent.parent / TEMPLATE
    if candidate.is_file():
        return str(candidate)
    raise FileNotFoundError(
        f"InferenceService template {TEMPLATE} not found beside the components package "
        f"({candidate}); pass manifest_template=PATH"
    )


def render(
    *,
    name: str,
    namespace: str,
    storage_uri: str,
    deployment_mode: str = KNATIVE,
    runtime_version: str = "",
    serving_runtime: str = "",
    prediction_logger_url: str = "",
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
    if serving_runtime:
        # A named runtime (kfp-ct-tensorflow: our server, with the request check); KServe
        # takes runtimeVersion as that runtime's image tag, so a TF Serving version cannot stay.
        model["runtime"] = serving_runtime
        model.pop("runtimeVersion", None)
    if runtime_version:
        model["runtimeVersion"] = runtime_version
    version = (labels or {}).get(VERSION_LABEL)
    if version:
        # On the predictor's pods, where KServe's inference logger reads it into every event:
        # the logs then tell a canary's requests from the stable model's.
        predictor.setdefault("annotations", {})[VERSION_LABEL] = version
    if prediction_logger_url:
        logger_spec = {"mode": "all", "url": prediction_logger_url, "metadataAnnotations": [VERSION_LABEL]}
        predictor["logger"] = logger_spec
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


def canaries(isvc: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``spec.canary`` (Standard-mode canaries, KServe >= 0.20)."""
    return ((isvc or {}).get("spec") or {}).get("canary") or []


def predictor_service(name: str, predictor: dict[str, Any]) -> str:
    """The Standard-mode Deployment/Service of a (named) predictor: ``{isvc}[-{name}]-predictor``."""
    return f"{name}-{predictor['name']}-predictor" if predictor.get("name") else f"{name}-predictor"


def traffic(isvc: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The traffic split: revision, percent, latest, tag, url. Knative reports it per revision;
    in Standard mode it is the stable predictor's Deployment plus the Ready canaries."""
    if (((isvc or {}).get("status") or {}).get("canaryStatuses") or canaries(isvc)) and not (
        predictor_status(isvc).get("traffic")
    ):
        name = isvc["metadata"]["name"]
        ready = [c for c in isvc["status"].get("canaryStatuses") or [] if c.get("ready")]
        stable = 100 - sum(int(c.get("trafficPercent") or 0) for c in ready)
        split = [{"revision": predictor_service(name, isvc["spec"]["predictor"]), "percent": stable}]
        split += [
            {"revision": f"{name}-{c['name']}-predictor", "percent": int(c.get("trafficPercent") or 0)}
            for c in ready
        ]
        return [{"latest": i > 0, "tag": "", "url": "", **t} for i, t in enumerate(split)]
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

ROLLOUT_ANNOTATION = "kfp-ct.io/rollout"
"""Set while a canary is in progress: JSON with the candidate's model URI, the start time and
the spec to restore, so a run that finds a canary a killed pod left can put things back."""
MAX_CONFLICTS = 5  # re-reads after 409 before giving up: each one means someone else wrote


class NotReadyError(RuntimeError):
    """The InferenceService did not become Ready in time."""


class SpecChanged(RuntimeError):
    """Another writer changed the InferenceService this rollout was deciding on."""


def _transient(exc: BaseException) -> bool:
    """An API failure worth retrying: no answer, throttling, or a server-side error."""
    return isinstance(exc, KubernetesApiError) and (
        exc.status is None or exc.status == 429 or exc.status >= 500
    )


def _version() -> str:
    return API_VERSION.split("/")[1]


def wait_ready(kclient, name: str, namespace: str, *, generation, timeout: float, poll: float, until=None):
    """Polls until Ready for ``generation`` or later (and ``until(live)``, when given); returns
    the live object. Transient API failures (5xx, no answer) are polled through, as kubectl
    wait does: only the deadline ends the wait. Not ``KServeClient.wait_isvc_ready`` (0.21):
    it stops at the first API error (its ``get`` raises on a 5xx) and cannot wait for a
    canary's own status or the promoted split (``until``).

    Raises:
        NotReadyError: with the last Ready condition, when ``timeout`` passed.
    """
    import time

    deadline = time.monotonic() + timeout
    live, failure = None, ""
    while True:
        try:
            live = get(kclient, name, namespace)
            failure = ""
        except KubernetesApiError as exc:
            if not _transient(exc):
                raise
            failure = str(exc)
            logger.warning("%s; still waiting", exc)
        status = (live or {}).get("status") or {}
        ready = ready_condition(live).get("status") == "True" and (
            generation is None or status.get("observedGeneration", 0) >= generation
        )
        if not failure and ready and (until is None or until(live)):
            return live
        if time.monotonic() >= deadline:
            condition = ready_condition(live)
            raise NotReadyError(
                f"InferenceService {namespace}/{name} was not Ready within {timeout:g} s "
                f"(generation {generation}, observed {status.get('observedGeneration')}; "
                f"Ready={condition.get('status', 'unknown')}"
                + (f", {condition.get('reason')}" if condition.get("reason") else "")
                + (f": {condition.get('message')}" if condition.get("message") else "")
                + (f"; last API error: {failure}" if failure else "")
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


def rollout_marker(isvc: dict[str, Any] | None) -> dict[str, Any] | None:
    """The in-progress rollout recorded on the object (ROLLOUT_ANNOTATION), or None."""
    import json

    raw = (((isvc or {}).get("metadata") or {}).get("annotations") or {}).get(ROLLOUT_ANNOTATION)
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return {"model_uri": "", "started": 0, "unreadable": raw}


class _Knative:
    """Knative mode: ``canaryTrafficPercent`` on the predictor, one revision per spec change,
    the candidate reached by its tagged URL."""

    def __init__(self, rollout: Rollout):
        self.r = rollout
        self.revision = ""  # the canary revision that was smoke-tested

    def in_progress(self, live) -> bool:
        return any(0 < t["percent"] < 100 for t in traffic(live))

    def start(self, live, percent: int) -> dict:
        return {
            "spec": {"predictor": {**self.r.desired["spec"]["predictor"], "canaryTrafficPercent": percent}}
        }

    def is_candidate(self, live) -> bool:
        return storage_uri_of(live) == self.r.outcome["model_uri"]

    def ready(self, live) -> bool:
        predictor = predictor_status(live)
        latest = predictor.get("latestCreatedRevision")
        return bool(latest) and latest == predictor.get("latestReadyRevision")

    def candidate_url(self, live) -> str:
        self.revision = predictor_status(live).get("latestReadyRevision", "")
        return canary_url(live)

    def promote(self, live) -> dict:
        # Only the revision that was smoke-tested may take the traffic: a newer one means the
        # spec changed after the smoke test.
        if predictor_status(live).get("latestCreatedRevision") != self.revision or not self.is_candidate(
            live
        ):
            raise SpecChanged(
                f"the spec changed after the smoke test (latest revision "
                f"{predictor_status(live).get('latestCreatedRevision')}, model {storage_uri_of(live)}; "
                f"smoke-tested {self.revision} with {self.r.outcome['model_uri']})"
            )
        return {"spec": {"predictor": {"canaryTrafficPercent": 100}}}

    def promoted(self, live) -> bool:
        split = traffic(live)
        latest = [t for t in split if t["latest"]]
        return not split or (bool(latest) and latest[0]["percent"] == 100)

    def abort(self, live, previous: dict | None) -> dict:
        """canaryTrafficPercent 0 keeps the last rolled-out revision at 100%; the previous model
        spec goes back, so the live object again describes what serves."""
        current = live["spec"]["predictor"]
        restore = _restore_patch(previous["predictor"], current) if previous else {}
        restore = restore if isinstance(restore, dict) else {}
        return {"spec": {"predictor": {**restore, "canaryTrafficPercent": 0}}}

    def restored(self, live, previous_revision: str) -> bool:
        full = [t for t in traffic(live) if t["percent"] == 100]
        return bool(full) and (not previous_revision or full[0]["revision"] == previous_revision)


AUTOSCALING = ("maxReplicas", "scaleTarget", "scaleMetric", "autoScaling")


class _Standard:
    """Standard (RawDeployment) mode, KServe >= 0.20: a named entry of ``spec.canary`` gets its
    own Deployment and Service ``{isvc}-{name}-predictor``; promotion makes it the predictor
    (no restart), rollback removes the entry."""

    def __init__(self, rollout: Rollout):
        self.r = rollout
        version = (self.r.desired["metadata"].get("labels") or {}).get(VERSION_LABEL, "")
        self.name = (
            f"v{version}"
            if re.fullmatch(r"[0-9]+", version or "")
            else "c" + _short_hash(self.r.outcome["model_uri"])
        )

    def _entry(self, live) -> dict | None:
        return next((c for c in canaries(live) if (c.get("predictor") or {}).get("name") == self.name), None)

    def in_progress(self, live) -> bool:
        return bool(canaries(live))

    def start(self, live, percent: int) -> dict:
        if (live["spec"]["predictor"].get("name") or "") == self.name:
            self.name = "c" + _short_hash(self.r.outcome["model_uri"])
        # KServe's webhook refuses autoscaling fields on a canary: its replicas follow its share.
        predictor = {k: v for k, v in self.r.desired["spec"]["predictor"].items() if k not in AUTOSCALING}
        return {
            "spec": {"canary": [{"trafficPercent": percent, "predictor": {**predictor, "name": self.name}}]}
        }

    def is_candidate(self, live) -> bool:
        entry = self._entry(live)
        return (
            bool(entry)
            and storage_uri_of({"spec": {"predictor": entry["predictor"]}}) == self.r.outcome["model_uri"]
        )

    def ready(self, live) -> bool:
        statuses = ((live or {}).get("status") or {}).get("canaryStatuses") or []
        return any(s.get("name") == self.name and s.get("ready") for s in statuses)

    def candidate_url(self, live) -> str:
        service = f"{self.r.name}-{self.name}-predictor"
        return f"http://{service}.{self.r.namespace}.svc.cluster.local"

    def promote(self, live) -> dict:
        if not self.is_candidate(live):
            raise SpecChanged(
                f"canary {self.name} no longer carries {self.r.outcome['model_uri']} "
                f"(spec.canary is now {canaries(live)})"
            )
        return {
            "spec": {"predictor": {**self.r.desired["spec"]["predictor"], "name": self.name}, "canary": None}
        }

    def promoted(self, live) -> bool:
        return (
            live["spec"]["predictor"].get("name") == self.name
            and not canaries(live)
            and not (live.get("status") or {}).get("canaryStatuses")
        )

    def abort(self, live, previous: dict | None) -> dict:
        return {"spec": {"canary": None}}

    def restored(self, live, previous_revision: str) -> bool:
        return not ((live.get("status") or {}).get("canaryStatuses"))


def _short_hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:8]


class Rollout:
    """One deployment of ``desired`` (a rendered InferenceService) through KServeClient.

    ``smoke(url) -> SmokeResult`` sends the smoke requests; every step lands in ``verdict`` as
    a check. Every change is a merge-patch carrying the resourceVersion it was decided on: a
    conflict (409) is re-read and re-decided, and a change another writer made is never
    overwritten. Model failures (not Ready, smoke test) roll back and leave ``healthy`` False;
    an API refusal rolls back what was changed, then raises ``KubernetesApiError``.
    """

    def __init__(
        self, kclient, desired, *, smoke, verdict, ready_timeout, poll_interval=5.0, canary_percent=10,
        judge=None,
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
        # judge(stable_version) -> bool holds a smoke-tested canary up to judge.max_seconds and
        # judges it by live traffic before promotion (deploy_model._canary); None: promote at once.
        self.judge = judge
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

    def _apply(self, decide, what: str) -> dict:
        """Merge-patches ``decide(live)`` with the resourceVersion of the read it was decided on.

        A 409 means the object changed since that read: it is read again and ``decide`` runs
        again (it raises SpecChanged when the change is not ours to override)."""
        for _ in range(MAX_CONFLICTS):
            live = self._get()
            if live is None:
                raise SpecChanged(f"{self.where} was deleted by someone else")
            body = decide(live)
            body.setdefault("metadata", {})["resourceVersion"] = live["metadata"]["resourceVersion"]
            try:
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
            except KubernetesApiError as exc:
                if exc.status != 409:
                    raise
                logger.info("%s %s: changed since it was read (409); reading it again", what, self.where)
        raise KubernetesApiError(
            f"{what} {self.where}: HTTP 409 Conflict on each of {MAX_CONFLICTS} attempts: the object "
            "is being changed concurrently (another deployment may be running). Retry when it has finished.",
            409,
        )

    def _wait(self, generation, until=None):
        return wait_ready(
            self.k,
            self.name,
            self.namespace,
            generation=generation,
            timeout=self.ready_timeout,
            poll=self.poll,
            until=until,
        )

    def _check(self, name: str, status: str, reason: str, value=None, threshold=None):
        self.verdict.add(name, self.where, status, reason, value=value, threshold=threshold)
        (logger.info if status != "fail" else logger.warning)("%s: %s: %s", name, status, reason)

    def _smoke(self, url: str) -> bool:
        result = self.smoke(url)
        self._check("smoke-test", "pass" if result.ok else "fail", result.reason, value=result.max_abs_diff)
        return result.ok

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
        if not mode:
            mode, source = cluster_default_mode(self.k)
            self._check(
                "deployment-mode", "pass", f"{mode} mode, the cluster's default ({source})", value=mode
            )
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
        strategy = _Knative(self) if mode == KNATIVE else _Standard(self)
        live = self._recover(live, strategy)
        if live is None:
            return self._finish(self._get(), "refused", False)
        if storage_uri_of(live) == self.outcome["model_uri"]:
            return self._unchanged(live)
        return self._canary(live, strategy)

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
            if self._smoke(service_url(live)):
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

    # a canary someone left behind ------------------------------------------------------------
    def _recover(self, live: dict, strategy) -> dict | None:
        """Restores the stable model to 100% when a canary is in progress that no live rollout
        owns (a killed pod's, or this task's own earlier attempt): nothing else happens first.
        Returns the live object, or None when another rollout is still running (refused)."""
        import time

        marker = rollout_marker(live)
        if marker is None and not strategy.in_progress(live):
            return live
        started = float((marker or {}).get("started") or 0)
        age = time.time() - started
        ours = (marker or {}).get("model_uri") == self.outcome["model_uri"]
        if marker and not ours and age < self.ready_timeout + float(marker.get("hold") or 0):
            self._check(
                "rollout-in-progress",
                "fail",
                f"another rollout (model {marker.get('model_uri')}) started {age:.0f} s ago and may still "
                f"be running (it has up to ready_timeout_seconds={self.ready_timeout:g} per step, plus "
                f"{float(marker.get('hold') or 0):g} s to soak its canary); "
                "nothing was changed. Retry when it has finished.",
            )
            return None
        owner = "this task's earlier attempt" if ours else (marker or {}).get("model_uri") or "unknown"
        split = traffic(live)
        self._abort(strategy, marker)
        self.outcome["rolled_back"] = False  # what this run deploys has not been rolled back
        self._check(
            "interrupted-rollout",
            "warn",
            f"found an unfinished canary (owner: {owner}; traffic {split}); the stable model was "
            "restored to 100% and the previous spec put back before this rollout",
        )
        return self._get()

    # same model again ---------------------------------------------------------------------------
    def _unchanged(self, live: dict) -> dict[str, Any]:
        self._check("rollout", "pass", f"already serving {self.outcome['model_uri']}: nothing to roll out")
        try:
            live = self._wait(None)
        except NotReadyError as exc:
            self._check("ready", "fail", str(exc), threshold=self.ready_timeout)
            return self._finish(live, "unchanged", False)
        return self._finish(live, "unchanged", self._smoke(service_url(live)))

    # canary, smoke, promote or roll back ------------------------------------------------------
    def _canary(self, live: dict, strategy) -> dict[str, Any]:
        import json
        import time

        previous_revision = serving_revision(live)
        meta = live["metadata"]
        previous = {
            "predictor": live["spec"]["predictor"],
            "labels": meta.get("labels") or {},
            "annotations": {
                k: v for k, v in (meta.get("annotations") or {}).items() if k != ROLLOUT_ANNOTATION
            },
        }
        marker = {"model_uri": self.outcome["model_uri"], "started": time.time(), "previous": previous}
        if self.judge is not None:
            marker["hold"] = self.judge.max_seconds  # a live soak is not a dead rollout
        first_read = meta["resourceVersion"]

        def start(current):
            if current["metadata"]["resourceVersion"] != first_read and (
                storage_uri_of(current) != storage_uri_of(live) or strategy.in_progress(current)
            ):
                raise SpecChanged(
                    f"the live model changed to {storage_uri_of(current)} while this rollout began"
                )
            body = strategy.start(current, self.canary_percent)
            body["metadata"] = {"annotations": {ROLLOUT_ANNOTATION: json.dumps(marker, sort_keys=True)}}
            return body

        try:
            patched = self._apply(start, "start canary of")
        except SpecChanged as exc:
            self._check("canary", "fail", f"not started: {exc}; nothing was changed")
            return self._finish(self._get(), "refused", False)
        if isinstance(strategy, _Standard) and not canaries(patched):
            self._check(
                "canary",
                "fail",
                "the API server dropped spec.canary: this cluster's KServe predates Standard-mode "
                "canaries (0.20). Nothing serves the candidate; upgrade KServe or deploy in Knative mode.",
            )
            return self._finish(self._get(), "refused", False)
        self._check(
            "canary",
            "pass",
            f"{self.canary_percent}% of traffic to the candidate ({self.outcome['model_uri']}), "
            f"{100 - self.canary_percent}% stays on {previous_revision or 'the stable predictor'}",
            value=self.canary_percent,
        )
        try:
            try:
                canary = self._wait(patched["metadata"].get("generation"), until=strategy.ready)
            except NotReadyError as exc:
                self._check("ready", "fail", str(exc), threshold=self.ready_timeout)
                return self._rollback(strategy, marker, previous_revision)
            self._check("ready", "pass", "canary Ready")
            url = strategy.candidate_url(canary)
            if not url:
                url = service_url(canary)
                self._check(
                    "canary-url",
                    "warn",
                    "no tagged URL for the canary (annotation serving.kserve.io/enable-tag-routing: "
                    '"true" gives one); smoke requests go to the service URL and may reach either model',
                )
            if not self._smoke(url):
                return self._rollback(strategy, marker, previous_revision)
            if self.judge is not None and not self.judge(previous["labels"].get(VERSION_LABEL, "")):
                return self._rollback(strategy, marker, previous_revision)

            def promote(current):
                body = strategy.promote(current)
                body["metadata"] = {
                    "labels": self.desired["metadata"].get("labels") or {},
                    "annotations": {
                        **(self.desired["metadata"].get("annotations") or {}),
                        ROLLOUT_ANNOTATION: None,
                    },
                }
                return body

            try:
                promoted = self._apply(promote, "promote")
            except SpecChanged as exc:
                # Someone else's change now owns the spec: leave it, undo nothing of theirs.
                self._check("promote", "fail", f"not promoted: {exc}. Their change was left in place.")
                return self._finish(self._get(), "superseded", False)
            try:
                final = self._wait(promoted["metadata"].get("generation"), until=strategy.promoted)
            except NotReadyError as exc:
                self._check("promote", "fail", str(exc))
                return self._rollback(strategy, marker, previous_revision)
            if storage_uri_of(final) != self.outcome["model_uri"]:
                self._check("promote", "fail", f"after promotion the service runs {storage_uri_of(final)}")
                return self._rollback(strategy, marker, previous_revision)
            self._check(
                "promote",
                "pass",
                f"{serving_revision(final)} takes 100% of traffic, model {storage_uri_of(final)}",
                value=100,
            )
            return self._finish(final, "canary-promoted", True)
        except KubernetesApiError:
            self._rollback(strategy, marker, previous_revision)
            raise

    def _rollback(self, strategy, marker: dict, previous_revision: str) -> dict[str, Any]:
        self._abort(strategy, marker)
        try:
            live = self._wait(None, until=lambda current: strategy.restored(current, previous_revision))
            self._check(
                "rollback",
                "pass",
                f"candidate out of traffic and the previous spec restored: {serving_revision(live)} "
                f"serves 100%, model {storage_uri_of(live)}",
            )
        except NotReadyError as exc:
            live = self._get()
            self._check("rollback", "fail", f"after rollback the traffic split is {traffic(live)}: {exc}")
        return self._finish(live, "rolled-back", False)

    def _abort(self, strategy, marker: dict | None) -> None:
        """Takes the candidate out of traffic and puts the previous spec, labels and annotations
        back, retried with backoff on transient API failures (the step that must not be lost).

        Raises:
            KubernetesApiError: the API refused it (a "rollback" check says so first).
        """
        import tenacity

        previous = (marker or {}).get("previous")

        def restore(current):
            found = rollout_marker(current)
            if marker and found and found.get("started") != marker.get("started"):
                raise SpecChanged(f"another rollout (model {found.get('model_uri')}) took over the service")
            body = strategy.abort(current, previous)
            meta = current["metadata"]
            labels = _restore_patch(previous["labels"], meta.get("labels") or {}) if previous else {}
            annotations = (
                _restore_patch(previous["annotations"], meta.get("annotations") or {}) if previous else {}
            )
            body["metadata"] = {"labels": labels, "annotations": {**annotations, ROLLOUT_ANNOTATION: None}}
            return body

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_transient),
            wait=tenacity.wait_exponential(multiplier=self.poll, max=30),
            stop=tenacity.stop_after_delay(self.ready_timeout),
            reraise=True,
        )
        try:
            retrying(self._apply, restore, "roll back")
        except SpecChanged as exc:
            self._check("rollback", "warn", f"not rolled back: {exc}; their change was left in place")
            return
        except KubernetesApiError as exc:
            self._check("rollback", "fail", f"rollback failed: {exc}")
            raise
        self.outcome["rolled_back"] = True
