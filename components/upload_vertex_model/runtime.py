"""upload_vertex_model: the registered SavedModel becomes a version in the Vertex AI Model
Registry, aliased as in MLflow.

One Vertex model per MLflow registered model: found by the label ``kfp-ct-registered-model``
and the display name (the oldest when several match), created by the first upload. Each MLflow
version is one Vertex version, labelled ``mlflow-version`` / ``mlflow-run-id``: a retried task
finds it by that label instead of uploading twice. Aliases follow Vertex's rule (one version
per alias in a model): uploading with ``production`` takes it off the version that had it.

Plain Python: imports google-cloud-aiplatform inside ``run`` (never kfp, TensorFlow or MLflow).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from components import interface, uris
from components.vertex import (  # noqa: F401 - PIPELINE_LABELS_ENV, VertexApiError: public here too
    PIPELINE_LABELS_ENV,
    VertexApiError,
    check_labels,
    check_where,
    label_value,
    pipeline_labels,
    quoted,
)

logger = logging.getLogger(__name__)

MODEL_LABEL = "kfp-ct-registered-model"
"""The label that names the MLflow registered model a Vertex model mirrors."""
VERSION_LABEL = "mlflow-version"
RUN_LABEL = "mlflow-run-id"

_ALIAS = re.compile(r"[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]")  # Vertex's versionAliases format


def _checked(project, location, registered_model_name, registered_model_version, version_aliases, labels):
    check_where(project, location)
    if not registered_model_name:
        raise ValueError("registered carries no MLflow model name (metadata 'name' from register_model)")
    if not str(registered_model_version).isdigit():
        raise ValueError(
            f"MLflow version {registered_model_version!r} is not a version number "
            "(metadata 'version' from register_model)"
        )
    for alias in version_aliases:
        if not isinstance(alias, str) or not _ALIAS.fullmatch(alias):
            raise ValueError(f"version alias {alias!r} must match {_ALIAS.pattern} (Vertex's format)")
        if alias == "default" or re.fullmatch(r"v\d+", alias):
            raise ValueError(
                f"version alias {alias!r} is set by the component (default: is_default_version; "
                "v<N>: the MLflow version)"
            )
    check_labels(labels)


def _version_folder(model_dir: str) -> str:
    """The highest numeric folder under ``model_dir`` that holds a saved_model.pb."""
    found = [p.parent.name for p in Path(model_dir).glob("*/saved_model.pb") if p.parent.name.isdigit()]
    if not found:
        raise ValueError(
            f"model folder {model_dir!r} holds no <version>/saved_model.pb (TF-Serving layout expected)"
        )
    return max(found, key=int)


@interface.defaults_from(__file__)
def run(
    *,
    model_dir: str,
    model_uri: str,
    registered_model_name: str,
    registered_model_version: str,
    mlflow_run_id: str = "",
    project, location, serving_container_image_uri, version_aliases, is_default_version, labels,
) -> dict[str, Any]:
    """Uploads (or, on a retry, finds) the Vertex version of an MLflow model version. Parameters
    are documented on the component (component.py). Credentials are aiplatform's: the pod's
    application default credentials unless ``aiplatform.init(credentials=...)`` set others.

    Returns:
        uri (the GCPC-style https URI), resourceName (``...models/<id>@<version id>``),
        modelResourceName, versionId, versionAliases, displayName, artifactUri,
        mlflowModelName, mlflowVersion, uploaded (False when an earlier try had uploaded it).

    Raises:
        ValueError: a bad project, location, alias or label, MLflow metadata missing, or a
            model folder without ``<version>/saved_model.pb``.
        components.uris.UriError: the model is not in Cloud Storage.
        VertexApiError: a Vertex AI call failed (its error chained).
    """
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions
    from google.cloud import aiplatform

    version = str(registered_model_version)
    _checked(project, location, registered_model_name, version, version_aliases, labels)
    artifact_uri = uris.join(uris.for_vertex(model_uri), _version_folder(model_dir))
    aliases = list(dict.fromkeys([f"v{version}", *version_aliases]))
    model_label = label_value(registered_model_name)
    version_labels = {
        **pipeline_labels(), **labels, MODEL_LABEL: model_label, VERSION_LABEL: version,
        **({RUN_LABEL: label_value(mlflow_run_id)} if mlflow_run_id else {}),
    }
    where = dict(project=project, location=location)
    step = "listing models"
    try:
        same_model = f"labels.{MODEL_LABEL}={quoted(model_label)}"
        models = aiplatform.Model.list(
            filter=f"{same_model} AND display_name={quoted(registered_model_name)}",
            order_by="create_time", **where,
        )
        if len(models) > 1:
            logger.warning(
                "%d Vertex models carry %s=%s; using the oldest, %s",
                len(models), MODEL_LABEL, model_label, models[0].resource_name,
            )
        parent = models[0].resource_name if models else None
        found = None
        if parent:
            step = f"listing the versions of {parent}"
            registry = aiplatform.ModelRegistry(parent, **where)
            matches = registry.list_versions(filter=f"labels.{VERSION_LABEL}={quoted(version)}")
            found = min(matches, key=lambda v: int(v.version_id)) if matches else None
        if found is not None:
            # An earlier try uploaded it; its aliases may not all be there (or moved since).
            wanted = aliases + (["default"] if is_default_version else [])
            missing = [a for a in wanted if a not in found.version_aliases]
            logger.info("%s@%s is %s v%s already: not uploaded again", parent, found.version_id,
                        registered_model_name, version)
            if missing:
                step = f"adding aliases {missing} to {parent}@{found.version_id}"
                registry.add_version_aliases(missing, found.version_id)
            resource, version_id = parent, found.version_id
        else:
            step = f"uploading {artifact_uri}" + (f" as a version of {parent}" if parent else "")
            uploaded = aiplatform.Model.upload(
                serving_container_image_uri=serving_container_image_uri,
                artifact_uri=artifact_uri,
                parent_model=parent,
                is_default_version=bool(is_default_version),
                version_aliases=list(aliases),  # the SDK appends "default" to the list it is given
                version_description=(
                    f"MLflow {registered_model_name} version {version}"
                    + (f", run {mlflow_run_id}" if mlflow_run_id else "")
                ),
                display_name=registered_model_name,
                labels=version_labels,
                sync=True,
                **where,
            )
            resource, version_id = uploaded.resource_name, uploaded.version_id
        step = f"reading {resource}@{version_id}"
        info = aiplatform.ModelRegistry(resource, **where).get_version_info(version_id)
    except (api_exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError) as exc:
        raise VertexApiError(
            f"Vertex AI failed {step} (projects/{project}/locations/{location}): {exc}"
        ) from exc
    resource_name = f"{resource}@{version_id}"
    logger.info(
        "Vertex model %s: MLflow %s v%s, aliases %s", resource_name, registered_model_name, version,
        sorted(info.version_aliases),
    )
    return {
        "uri": f"https://{location}-aiplatform.googleapis.com/v1/{resource_name}",
        "resourceName": resource_name,
        "modelResourceName": resource,
        "versionId": str(version_id),
        "versionAliases": sorted(info.version_aliases),
        "displayName": registered_model_name,
        "artifactUri": artifact_uri,
        "mlflowModelName": registered_model_name,
        "mlflowVersion": version,
        "uploaded": found is None,
    }
