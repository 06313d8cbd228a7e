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


def resolve_tracking_uri(tracking_uri: str = "") -> str:
    """The explicit URI, else ``MLFLOW_TRACKING_URI`` (e.g. from a Kubernetes secret), else ""."""
    return tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")


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
