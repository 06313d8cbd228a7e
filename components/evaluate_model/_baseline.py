"""Finding the baseline ("champion") model without MLMD: MLflow alias, explicit URI, or the
storageUri of the live KServe InferenceService."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

SOURCES = ("mlflow", "uri", "kserve", "none")


class BaselineUnavailableError(RuntimeError):
    """A baseline exists (or was asked for) but cannot be resolved, loaded or evaluated."""


@dataclass
class Baseline:
    """Where the baseline comes from. ``model_dir`` is None when there is no baseline."""

    source: str
    model_dir: str | None
    description: str  # one sentence: what was looked up and what was found
    info: dict = field(default_factory=dict)


def resolve(
    source: str, work_dir: str, *, model_uri: str, tracking_uri: str, registered_model_name: str,
    alias: str, kserve_service: str, kserve_namespace: str,
) -> Baseline:
    """Resolves the baseline to a local or remote model folder (TF-Serving layout). The
    arguments are evaluate_model's (its component.py declares them and their defaults).

    Raises:
        BaselineUnavailableError: the registry, the cluster or the download failed.
    """
    if source == "none":
        return Baseline(source, None, "no baseline requested (baseline_source is 'none')")
    if source == "uri":
        return Baseline(source, model_uri, f"baseline model at {model_uri}", {"uri": model_uri})
    if source == "mlflow":
        return _from_mlflow(work_dir, tracking_uri, registered_model_name, alias)
    if source == "kserve":
        return _from_kserve(kserve_service, kserve_namespace)
    raise ValueError(f"baseline_source must be one of {', '.join(SOURCES)}, got {source!r}")


def _from_mlflow(work_dir: str, tracking_uri: str, name: str, alias: str) -> Baseline:
    from components import registry

    where = f"registered model {name!r} alias {alias!r} at {tracking_uri}"
    try:
        version = registry.version_by_alias(tracking_uri, name, alias)
    except Exception as exc:  # noqa: BLE001 - RegistryUnavailable, MlflowException, HTTP errors
        raise BaselineUnavailableError(
            f"cannot look up the baseline {where}: {type(exc).__name__}: {exc}"
        ) from exc
    if version is None:
        return Baseline(
            "mlflow", None, f"{where} does not exist yet (first run)",
            {"registered_model_name": name, "alias": alias},
        )
    info = {
        "registered_model_name": name,
        "alias": alias,
        "version": str(version.version),
        "run_id": version.run_id or "",
        "source": version.source or "",
    }
    try:
        path = registry.download_model(tracking_uri, name, str(version.version), work_dir)
    except Exception as exc:  # noqa: BLE001 - any download failure makes the baseline unusable
        raise BaselineUnavailableError(
            f"cannot download the baseline {where} (version {version.version}): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return Baseline(
        "mlflow", path, f"baseline is version {version.version} of {where}", info
    )


def _from_kserve(service: str, namespace: str) -> Baseline:
    where = f"InferenceService {namespace}/{service}"
    try:
        from components.kserve import current_storage_uri
    except ImportError as exc:
        raise BaselineUnavailableError(
            f"the KServe client is unavailable (components.kserve cannot be "
            f"imported: {exc}); cannot read the baseline from {where}"
        ) from exc
    try:
        storage_uri = current_storage_uri(service, namespace)
    except Exception as exc:  # noqa: BLE001 - KubernetesApiError, config errors
        raise BaselineUnavailableError(
            f"cannot read the storageUri of {where}: {type(exc).__name__}: {exc}"
        ) from exc
    info = {"kserve_service": service, "kserve_namespace": namespace}
    if not storage_uri:
        return Baseline("kserve", None, f"{where} does not exist yet (first run)", info)
    if storage_uri.startswith("pvc://"):
        raise BaselineUnavailableError(
            f"{where} serves {storage_uri}; a pvc:// model cannot be read from this component. "
            f"Mount the volume and pass its path with baseline_source='uri'."
        )
    info["storage_uri"] = storage_uri
    return Baseline("kserve", storage_uri, f"baseline is {storage_uri}, served by {where}", info)
