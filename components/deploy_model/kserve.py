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
    from kserve import KServeClient

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
