"""register_model: the blessed SavedModel becomes a new version of an MLflow registered model.

The model folder (TF-Serving layout, ``1/saved_model.pb``) is logged unchanged as the artifact
``model`` of a run in ``experiment``; a registered-model version is created from that artifact
(so ``registry.download_model`` returns a folder KServe/TF Serving can serve), with lineage tags
(training data hash and URI, statistics/anomalies/blessing URIs, the evaluation summary, the
pipeline run id, the image version), and ``alias`` (default ``candidate``) is moved to it.
Aliases only: the deprecated stages are never used.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_ALIAS = re.compile(r"^[A-Za-z0-9_\-]+$")
_TAG_MAX = 5000  # MLflow caps tag values; long evaluation summaries are cut, the JSON is an artifact


class NotBlessedError(ValueError):
    """The blessing artifact says the model did not pass the model gate."""


def _tag(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= _TAG_MAX else text[: _TAG_MAX - 3] + "..."


def _evaluation_tags(blessing: dict) -> dict[str, str]:
    """Tags from a model-is-blessed verdict: outcome, summary and each check's value."""
    tags = {
        "evaluation.passed": str(bool(blessing.get("passed"))).lower(),
        "evaluation.summary": _tag(blessing.get("summary", "")),
    }
    for check in blessing.get("checks") or []:
        value = check.get("value")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            name = check.get("name", "")
            subject = check.get("subject") or ""
            key = f"evaluation.{name}" + (f".{subject}" if subject and subject != name else "")
            tags[re.sub(r"[^\w.\-/ ]", "_", key)] = _tag(value)
    return tags


def run(
    *,
    model_dir: str,
    model_metadata: dict,
    model_uri: str,
    registered_model_name: str,
    mlflow_tracking_uri: str = "",
    experiment: str = "continuous-training",
    schema_uri: str = "",
    statistics_uri: str = "",
    anomalies_uri: str = "",
    blessing_path: str = "",
    blessing_uri: str = "",
    pipeline_run_id: str = "",
    alias: str = "candidate",
    registry_attempts: int = 5,
    output_path: str = "",
) -> dict[str, Any]:
    """Logs, registers and aliases the model. Returns name, version, model_uri ("models:/name/
    version"), tracking_uri, run_id, alias, source; writes the same JSON to
    ``output_path`` when given.

    Raises:
        ValueError: bad arguments, or a folder without ``<version>/saved_model.pb``.
        NotBlessedError: the blessing says the model failed its gate.
        components.registry.RegistryUnavailable: the tracking server did not answer (retried).
    """
    import mlflow

    from components import images, registry

    if not registered_model_name:
        raise ValueError("registered_model_name is required")
    if not _ALIAS.match(alias or "") or alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise ValueError(f"alias {alias!r} must be letters, digits, '_' or '-' (not 'latest' or 'v<N>')")
    versions = [p for p in Path(model_dir).glob("*/saved_model.pb") if p.parent.name.isdigit()]
    if not versions:
        raise ValueError(
            f"model folder {model_dir!r} holds no <version>/saved_model.pb (TF-Serving layout expected)"
        )
    blessing: dict = {}
    if blessing_path:
        blessing = json.loads(Path(blessing_path).read_text())
        if blessing.get("passed") is False:
            raise NotBlessedError(
                f"the blessing says the model failed its gate ({blessing.get('summary', 'no summary')}); "
                "register only blessed models (gate register_model with dsl.If on evaluate_model's output)"
            )
    tracking_uri = registry.resolve_tracking_uri(mlflow_tracking_uri)
    client = registry.client(tracking_uri, attempts=registry_attempts)

    tags = {
        "data_hash": str(model_metadata.get("data_hash", "")),
        "data_uri": str(model_metadata.get("data_uri", "")),
        "schema_uri": schema_uri,
        "statistics_uri": statistics_uri,
        "anomalies_uri": anomalies_uri,
        "blessing_uri": blessing_uri,
        "pipeline_run_id": pipeline_run_id,
        "image_version": images.VERSION,
        "model_artifact_uri": model_uri,
        "framework": str(model_metadata.get("framework", "tensorflow")),
        "task": str(model_metadata.get("task", "")),
        "label": str(model_metadata.get("label", "")),
        **_evaluation_tags(blessing),
    }
    tags = {k: _tag(v) for k, v in tags.items() if v not in ("", None)}

    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=f"register-{registered_model_name}", tags=tags) as active:
        mlflow.log_artifacts(model_dir, artifact_path="model")
        mlflow.log_dict(model_metadata, "model_metadata.json")
        if blessing:
            mlflow.log_dict(blessing, "evaluation/blessing.json")
        run_id = active.info.run_id
        source = f"{active.info.artifact_uri.rstrip('/')}/model"

    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(
            registered_model_name,
            description="TensorFlow SavedModel (TF-Serving layout) from kfp-continuous-training",
        )
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(registered_model_name, source, run_id=run_id, tags=tags)
    client.set_registered_model_alias(registered_model_name, alias, version.version)
    logger.info(
        "registered %s version %s from run %s (alias %s) at %s",
        registered_model_name,
        version.version,
        run_id,
        alias,
        tracking_uri,
    )
    result = {
        "name": registered_model_name,
        "version": str(version.version),
        "model_uri": f"models:/{registered_model_name}/{version.version}",
        "tracking_uri": tracking_uri,
        "run_id": run_id,
        "alias": alias,
        "source": source,
    }
    if output_path:  # the ``registered`` artifact's file: the same JSON as its metadata
        os.makedirs(os.path.dirname(output_path) or ".", exist_ok=True)
        Path(output_path).write_text(json.dumps(result, indent=2, sort_keys=True))
    return result
