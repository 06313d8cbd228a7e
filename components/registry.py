"""MLflow model registry access shared by the components that need it (register, evaluate,
deploy). Runs in the runtime image; never imports kfp.

A registered version is an MLflow model (``MLmodel``, signature, input example; a pyfunc over
the SavedModel, see ``components/register_model/mlflow_model.py``) whose folder also is the
SavedModel in the TF-Serving layout (``<version>/saved_model.pb`` at its root), so KServe,
TF Serving and ``download_model`` read the same folder ``mlflow.pyfunc.load_model`` loads.
"""

from __future__ import annotations

import logging
import os

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


def client(tracking_uri: str):
    """An ``MlflowClient`` for a server that answered.

    Retries are MLflow's own, on every request this process makes (not only this first one):
    connection errors and 408/429/5xx answers are retried with exponential backoff, as set by
    ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` (default 7), ``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`` (2)
    and ``MLFLOW_HTTP_REQUEST_TIMEOUT`` (120 s), e.g. from the task's environment. A retry loop
    of ours around the client would multiply those attempts.

    Raises:
        RegistryUnavailable: naming the URI, when the server did not answer after MLflow's retries.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_MAX_RETRIES

    if not tracking_uri:
        raise ValueError("no MLflow tracking URI: pass one or set MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    mlflow_client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        mlflow_client.search_registered_models(max_results=1)
    except Exception as exc:  # noqa: BLE001 - any failure to answer counts as unreachable
        attempts = MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() + 1
        raise RegistryUnavailable(
            f"MLflow tracking server at {tracking_uri} did not answer after {attempts} attempts "
            f"({type(exc).__name__}: {exc}). Check the URI and that the server runs "
            f"(MLFLOW_HTTP_REQUEST_MAX_RETRIES sets the retries)."
        ) from exc
    return mlflow_client


def resume_run(run_id: str):
    """Makes the existing run ``run_id`` (the training run, or the one KFP's MLflow integration
    injected) this process's active run, in its own experiment: MLflow refuses to resume a run
    of another experiment than the active one (``set_experiment``). Returns the active run."""
    import mlflow

    mlflow.set_experiment(experiment_id=mlflow.get_run(run_id).info.experiment_id)
    return mlflow.start_run(run_id=run_id)


class VersionNotReady(RuntimeError):
    """A model version did not become READY (registration failed or took too long)."""


def await_ready(mlflow_client, version, timeout_s: float = 300):
    """``version`` once its status is READY, polling while it is PENDING_REGISTRATION (a
    registry may copy the artifacts asynchronously: Databricks, Unity Catalog). An alias must
    never point at a version that cannot be loaded yet.

    Raises:
        VersionNotReady: naming the version, its status and the registry's message.
    """
    import tenacity

    pending = "PENDING_REGISTRATION"
    if version.status == pending:
        try:
            version = tenacity.Retrying(
                retry=tenacity.retry_if_result(lambda v: v.status == pending),
                wait=tenacity.wait_exponential(multiplier=0.5, max=10),
                stop=tenacity.stop_after_delay(timeout_s),
                before_sleep=lambda state: logger.info(
                    "%s version %s is still %s", version.name, version.version, pending
                ),
            )(mlflow_client.get_model_version, version.name, version.version)
        except tenacity.RetryError as exc:
            raise VersionNotReady(
                f"{version.name} version {version.version} was still {pending} after {timeout_s:g} s"
            ) from exc
    if version.status != "READY":
        raise VersionNotReady(
            f"{version.name} version {version.version} is {version.status}, not READY: "
            f"{version.status_message or 'no message from the registry'}"
        )
    return version


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
