"""register_model: the blessed SavedModel becomes a new version of an MLflow registered model.

The model is logged as an MLflow 3 LoggedModel (``mlflow_model``: a pyfunc with a signature and
an input example, whose folder is also the SavedModel in the TF-Serving layout, so
``registry.download_model`` and KServe read what ``mlflow.pyfunc.load_model`` loads) and a
version is created from it. It is logged into the training run (``model.metadata``'s
``mlflow_run_id``), so the version's source run holds the params, per-epoch metrics, data
fingerprint and, from here, the evaluation metrics; without one, into the run KFP's MLflow
integration injected (``MLFLOW_RUN_ID``), else a new run in ``experiment``.

What a later run or the serving side needs (schema, training statistics, anomalies, evaluation
data, the blessing) is stored in that run (``registry.LINEAGE_FILES``), and the version's tags
point there (``runs:/...``), next to the training data's URI and fingerprint, the pipeline run
id, the image version and the evaluation summary. ``alias`` (default ``candidate``) moves to
the version once it is READY. Aliases only: the deprecated stages are never used.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from components import interface, registry

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


def _log_as(path: str, artifact_file: str) -> None:
    """Logs one local file under the exact artifact name ``artifact_file``."""
    import mlflow

    folder, name = os.path.split(artifact_file)
    with tempfile.TemporaryDirectory() as tmp:
        target = os.path.join(tmp, name)
        shutil.copyfile(path, target)
        mlflow.log_artifact(target, artifact_path=folder)


def _registered_by(client, name: str, pipeline_run_id: str):
    """The version an earlier attempt of the same pipeline run registered, or None."""
    if not pipeline_run_id:
        return None
    from mlflow.exceptions import MlflowException

    try:
        found = client.search_model_versions(
            f"name = '{name}' and tags.pipeline_run_id = '{pipeline_run_id}'"
        )
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return max(found, key=lambda v: int(v.version)) if found else None


def _target_run(client, model_metadata: dict, injected: str) -> tuple[str, str]:
    """(run id, what it is) of the run to log into: the training run, else the run KFP's
    MLflow integration injected into this task; ("", "new") when there is neither."""
    from mlflow.exceptions import MlflowException

    training = str(model_metadata.get("mlflow_run_id") or "")
    if training:
        try:
            client.get_run(training)
            return training, "training"
        except MlflowException as exc:
            logger.warning(
                "training run %s is not on this tracking server (%s): the version cannot link to it",
                training, exc.error_code,
            )
    return (injected, "injected") if injected else ("", "new")


def _evaluation_metrics(blessing: dict) -> dict[str, float]:
    """evaluate_model's candidate (and baseline) metrics, named ``evaluation.<metric>``."""
    metrics = {}
    details = blessing.get("details") or {}
    for prefix, side in (("evaluation.", "candidate"), ("evaluation.baseline.", "baseline")):
        for metric, value in ((details.get(side) or {}).get("metrics") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
                metrics[re.sub(r"[^\w.\-/ ]", "_", prefix + metric)] = float(value)
    return metrics


def _last_epoch(client, run_id: str) -> int:
    """The step of the run's last per-epoch metric (the epoch the model comes from), else 0."""
    history = client.get_metric_history(run_id, "loss") if run_id else []
    return max((m.step for m in history), default=0)


def _log_run(client, injected, experiment, name, model_dir, model_metadata, lineage_paths, blessing, tags):
    """Logs the model (a LoggedModel), the lineage files and the evaluation metrics into the
    target run; returns (run id, model info). ``tags`` gains the ``runs:/`` location of each
    lineage file."""
    import mlflow

    from components.register_model import mlflow_model

    run_id, kind = _target_run(client, model_metadata, injected)
    if kind == "new":
        mlflow.set_experiment(experiment)
        active = mlflow.start_run(run_name=f"register-{name}")
    else:
        active = registry.resume_run(run_id)
    run_id = active.info.run_id
    logger.info("logging %s into the %s MLflow run %s", name, kind, run_id)
    failed = True
    try:
        mlflow.log_dict(model_metadata, "model_metadata.json")
        for key, path in sorted(lineage_paths.items()):
            _log_as(path, registry.LINEAGE_FILES[key])
            tags[registry.lineage_tag(key)] = f"runs:/{run_id}/{registry.LINEAGE_FILES[key]}"
        mlflow.set_tags({k: v for k, v in tags.items() if k != "training_run_id" or kind != "training"})
        rows = None
        if lineage_paths.get("eval_data"):
            import pandas as pd

            rows = pd.read_parquet(lineage_paths["eval_data"])
        info = mlflow_model.log(
            model_dir, name, rows=rows, step=_last_epoch(client, run_id),
            tags={"registered_model_name": name},
        )
        evaluation = _evaluation_metrics(blessing)
        if evaluation:
            mlflow.log_metrics(evaluation, model_id=info.model_id)
        failed = False
    finally:
        # A resumed training run stays the finished run it was; only our own run can fail.
        mlflow.end_run(status="FAILED" if failed and kind == "new" else "FINISHED")
    return run_id, info


def _link_injected_run(client, injected: str, run_id: str, name: str, version: str) -> None:
    """KFP's MLflow integration gave this task a run of its own, but the version lives in the
    training run: the task's run says where."""
    if injected and injected != run_id:
        client.set_tag(injected, "registered_model", f"{name}/{version}")
        client.set_tag(injected, "registered_in_run", run_id)


def _ensure_registered_model(client, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(
            name, description="TensorFlow SavedModel (TF-Serving layout) from kfp-continuous-training"
        )
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


@interface.defaults_from(__file__)
def run(
    *,
    model_dir: str,
    model_metadata: dict,
    model_uri: str,
    lineage_paths: dict[str, str] | None = None,
    pipeline_artifact_uris: dict[str, str] | None = None,
    ready_timeout_seconds: float = 300,
    output_path: str = "",
    registered_model_name, mlflow_tracking_uri, pipeline_run_id, alias, experiment,
) -> dict[str, Any]:
    """Logs, registers and aliases the model. Returns name, version, model_uri ("models:/name/
    version"), tracking_uri, run_id, alias, source; writes the same JSON to
    ``output_path`` when given. Parameters are documented on the component (component.py).

    ``lineage_paths`` maps names of ``registry.LINEAGE_FILES`` to local files to store with the
    version; ``pipeline_artifact_uris`` (name -> the run's artifact URI) is recorded for lineage.

    Raises:
        ValueError: bad arguments, or a folder without ``<version>/saved_model.pb``.
        NotBlessedError: the blessing says the model failed its gate.
        components.registry.RegistryUnavailable: the tracking server did not answer (retried).
        components.registry.VersionNotReady: the version did not become READY; no alias moved.
    """
    from components import images

    if not registered_model_name:
        raise ValueError("registered_model_name is required")
    if not _ALIAS.match(alias or "") or alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise ValueError(f"alias {alias!r} must be letters, digits, '_' or '-' (not 'latest' or 'v<N>')")
    versions = [p for p in Path(model_dir).glob("*/saved_model.pb") if p.parent.name.isdigit()]
    if not versions:
        raise ValueError(
            f"model folder {model_dir!r} holds no <version>/saved_model.pb (TF-Serving layout expected)"
        )
    lineage_paths = {k: v for k, v in (lineage_paths or {}).items() if v}
    unknown = sorted(set(lineage_paths) - set(registry.LINEAGE_FILES))
    if unknown:
        raise ValueError(f"lineage_paths names {unknown}; expected some of {sorted(registry.LINEAGE_FILES)}")
    blessing: dict = {}
    if lineage_paths.get("blessing"):
        blessing = json.loads(Path(lineage_paths["blessing"]).read_text())
        if blessing.get("passed") is False:
            raise NotBlessedError(
                f"the blessing says the model failed its gate ({blessing.get('summary', 'no summary')}); "
                "register only blessed models (gate register_model with dsl.If on evaluate_model's output)"
            )
    tracking_uri = registry.resolve_tracking_uri(mlflow_tracking_uri, required_for="register_model")
    # KFP's MLflow integration gives the task a run (read now: MLflow's start_run consumes it).
    injected = os.environ.get("MLFLOW_RUN_ID", "")
    client = registry.client(tracking_uri)

    tags = {
        "data_hash": str(model_metadata.get("data_hash", "")),
        "data_uri": str(model_metadata.get("data_uri", "")),
        "training_run_id": str(model_metadata.get("mlflow_run_id", "")),
        "pipeline_artifact_uris": {k: v for k, v in (pipeline_artifact_uris or {}).items() if v},
        "pipeline_run_id": pipeline_run_id,
        "image_version": images.VERSION,
        "model_artifact_uri": model_uri,
        "framework": str(model_metadata.get("framework", "tensorflow")),
        "task": str(model_metadata.get("task", "")),
        "label": str(model_metadata.get("label", "")),
        **_evaluation_tags(blessing),
    }
    tags = {k: _tag(v) for k, v in tags.items() if v not in ("", None, {})}

    version = _registered_by(client, registered_model_name, pipeline_run_id)
    if version is not None:  # a retry of a run whose earlier attempt already registered
        logger.info(
            "pipeline run %s already registered %s version %s: reused, not registered twice",
            pipeline_run_id, registered_model_name, version.version,
        )
        run_id = version.run_id
    else:
        run_id, info = _log_run(
            client, injected, experiment, registered_model_name, model_dir, model_metadata, lineage_paths,
            blessing, tags,
        )
        _ensure_registered_model(client, registered_model_name)
        version = client.create_model_version(
            registered_model_name, info.model_uri, run_id=run_id, tags=tags, model_id=info.model_id,
            await_creation_for=0,  # registry.await_ready waits, here and for a reused version alike
        )
    version = registry.await_ready(client, version, ready_timeout_seconds)
    source = client.get_model_version_download_uri(registered_model_name, version.version)
    client.set_registered_model_alias(registered_model_name, alias, version.version)
    _link_injected_run(client, injected, run_id, registered_model_name, version.version)
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
