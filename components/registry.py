"""MLflow model registry access shared by the components that need it (register, evaluate,
deploy). Runs in the runtime image; never imports kfp.

Registered versions hold the SavedModel in the TF-Serving layout (``<version>/saved_model.pb``)
under the version's artifact ``model``; ``download_model`` returns that folder.
"""

from __future__ import annotations

import logging
import os
import time

logger = logging.getLogger(__name__)


class RegistryUnavailable(RuntimeError):
    """The MLflow tracking server did not answer after retries."""


TRACKING_SECRET = "mlflow-tracking"
"""The Kubernetes secret that gives tasks MLflow: its keys are the environment variables MLflow
reads, mapped one to one (manifests/mlflow creates it; the Kubeflow specs mount it)."""
TRACKING_SECRET_KEYS = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


LINEAGE_FILES = {
    "schema": "lineage/schema.pbtxt",
    "statistics": "lineage/statistics.pb",
    "anomalies": "lineage/anomalies.pbtxt",
    "eval_data": "lineage/eval_data.parquet",
    "predictions": "lineage/predictions.parquet",
    "blessing": "lineage/blessing.json",
}
"""What register_model stores with each model version (in the registration run's artifacts),
so the next run and the serving side read it from MLflow, never from a pipeline root that a
lifecycle rule may have emptied. The version's tag ``<name>_uri`` holds ``runs:/<run>/<file>``."""


def lineage_tag(name: str) -> str:
    """The model-version tag that holds where lineage file ``name`` is stored."""
    return f"{name}_uri"


def parse_model_ref(ref: str) -> tuple[str, str, str]:
    """``NAME@ALIAS`` or ``NAME/VERSION`` as (name, alias, version); one of the last two is "".

    Raises:
        ValueError: naming the expected forms.
    """
    name, at, alias = ref.partition("@")
    if at and name and alias:
        return name, alias, ""
    name, _, version = ref.rpartition("/")
    if name and version.isdigit():
        return name, "", version
    raise ValueError(f"model must be NAME@ALIAS or NAME/VERSION, got {ref!r}")


class TrackingUriMissing(RuntimeError):
    """MLflow is needed but no tracking URI reached the task."""


def resolve_tracking_uri(tracking_uri: str = "", *, required_for: str = "") -> str:
    """The explicit URI, else ``MLFLOW_TRACKING_URI`` (e.g. from the Kubernetes secret).

    With ``required_for`` (what needs MLflow), a missing URI raises TrackingUriMissing naming
    the secret and its key, so "no registry configured" is never mistaken for a first run;
    otherwise "" is returned.
    """
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri and required_for:
        raise TrackingUriMissing(
            f"{required_for} needs MLflow, but no tracking URI reached this task: pass "
            f"mlflow_tracking_uri, or on Kubernetes create the secret {TRACKING_SECRET!r} with the "
            f"key 'MLFLOW_TRACKING_URI' in the pipeline's namespace (see manifests/mlflow)"
        )
    return uri


def use(tracking_uri: str) -> None:
    """Makes ``tracking_uri`` this process's MLflow, for the URI layer's ``runs:/`` and
    ``models:/`` reads (which use ``MLFLOW_TRACKING_URI``); "" keeps the environment's."""
    if tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri


def client(tracking_uri: str, *, attempts: int = 5, first_delay: float = 1.0):
    """An ``MlflowClient`` for a server that answered; retries with exponential backoff.

    Raises:
        RegistryUnavailable: naming the URI, when every attempt failed.
    """
    import mlflow
    from mlflow import MlflowClient

    if not tracking_uri:
        raise ValueError("no MLflow tracking URI: pass one or set MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    mlflow_client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            mlflow_client.search_registered_models(max_results=1)
            return mlflow_client
        except Exception as exc:  # noqa: BLE001 - any failure to answer counts as unreachable
            if attempt == attempts:
                raise RegistryUnavailable(
                    f"MLflow tracking server at {tracking_uri} did not answer after {attempts} "
                    f"attempts ({type(exc).__name__}: {exc}). Check the URI and that the server runs."
                ) from exc
            logger.warning(
                "MLflow at %s did not answer (attempt %d/%d), retrying in %.0f s",
                tracking_uri, attempt, attempts, delay,
            )
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def version_by_alias(tracking_uri: str, name: str, alias: str):
    """The ``ModelVersion`` that ``alias`` points at, or None when the model or alias is absent."""
    from mlflow.exceptions import MlflowException

    try:
        return client(tracking_uri).get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def version_source(tracking_uri: str, name: str, version: str) -> str:
    """Where MLflow's artifact store holds a registered version's SavedModel folder."""
    uri = resolve_tracking_uri(tracking_uri, required_for=f"model {name} version {version}")
    return client(uri).get_model_version_download_uri(name, version)


def download_model(tracking_uri: str, name: str, alias_or_version: str, dst_dir: str) -> str:
    """Downloads a registered version's SavedModel folder (TF-Serving layout) into ``dst_dir``.

    ``alias_or_version`` is an alias (``production``) or a version number (``"3"``).
    """
    import mlflow

    client(tracking_uri)
    ref = f"@{alias_or_version}" if not alias_or_version.isdigit() else f"/{alias_or_version}"
    return mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{name}{ref}", dst_path=dst_dir, tracking_uri=tracking_uri
    )
