"""What the monitor compares serving with, read back from the production version in MLflow:
its training statistics and schema, the predictions it made on its evaluation data at
registration, the registered evaluation metrics, and its model metadata (task, label, classes,
feature kinds). register_model stores these with the version (``registry.LINEAGE_FILES``);
nothing comes from a pipeline root."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import numpy as np

from components import measures, model_io, registry, tfdv_io, uris

logger = logging.getLogger(__name__)


@dataclass
class Production:
    """The production version and what is known about it; ``missing`` says what is not."""

    name: str
    alias: str
    version: str = ""
    task: str = ""
    label: str = ""
    classes: list | None = None
    kinds: dict = field(default_factory=dict)  # feature -> "float" | "int" | "string"
    statistics: object = None  # DatasetFeatureStatisticsList of the training data
    schema: object = None
    reference_predictions: np.ndarray | None = None  # binary P(1), values, or class indices
    reference_scores: np.ndarray | None = None  # the predicted class's probability (classifiers)
    reference_labels: np.ndarray | None = None  # encoded as the live labels are
    registered_metrics: dict = field(default_factory=dict)
    metrics_source: str = ""
    missing: list[str] = field(default_factory=list)  # sentences: what could not be read

    @property
    def found(self) -> bool:
        return bool(self.version)

    def describe(self) -> str:
        if not self.found:
            return f"no version of {self.name!r} has the alias {self.alias!r}"
        return f"{self.name} version {self.version} (@{self.alias})"


def load(tracking_uri: str, name: str, alias: str) -> Production:
    """Reads the version ``alias`` points at. A missing lineage file is recorded in ``missing``
    (what it stops the monitor from measuring), never a crash: serving checks still run.

    Raises:
        components.registry.RegistryUnavailable: the tracking server did not answer.
    """
    production = Production(name=name, alias=alias)
    version = registry.version_by_alias(tracking_uri, name, alias)
    if version is None:
        return production
    registry.use(tracking_uri)  # runs:/ reads go through MLFLOW_TRACKING_URI
    tags = version.tags or {}
    production.version = str(version.version)
    metadata = _read_json(f"runs:/{version.run_id}/model_metadata.json", production, "model metadata") or {}
    production.task = tags.get("task") or str(metadata.get("task", ""))
    production.label = tags.get("label") or str(metadata.get("label", ""))
    production.classes = list(metadata["classes"]) if metadata.get("classes") else None
    production.kinds = dict(metadata.get("features") or {})

    statistics_uri = tags.get(registry.lineage_tag("statistics"))
    schema_uri = tags.get(registry.lineage_tag("schema"))
    if statistics_uri:
        production.statistics = _read(
            tfdv_io.load_statistics, statistics_uri, production, "training statistics"
        )
    else:
        production.missing.append("no training statistics are stored with it, so skew was not measured")
    if schema_uri:
        production.schema = _read(tfdv_io.load_schema, schema_uri, production, "schema")

    predictions_uri = tags.get(registry.lineage_tag("predictions"))
    if predictions_uri:
        frame = _read(model_io.read_frame, predictions_uri, production, "evaluation predictions")
        if frame is not None:
            _reference(production, frame)
    else:
        production.missing.append(
            "no evaluation predictions are stored with it (register evaluate_model's predictions), "
            "so prediction drift was not measured and performance cannot be estimated"
        )
    blessing_uri = tags.get(registry.lineage_tag("blessing"))
    blessing = _read_json(blessing_uri, production, "blessing") if blessing_uri else None
    candidate = ((blessing or {}).get("details") or {}).get("candidate") or {}
    registered = {k: v for k, v in (candidate.get("metrics") or {}).items() if isinstance(v, (int, float))}
    if registered:
        production.registered_metrics = {k: float(v) for k, v in registered.items()}
        production.metrics_source = "the blessing (evaluate_model's metrics at registration)"
    elif production.reference_labels is not None and production.task:
        production.registered_metrics = measures.reference_metrics(
            production.task, production.reference_labels, production.reference_predictions
        )
        production.metrics_source = "the stored evaluation predictions (no blessing is stored)"
    logger.info("production: %s, task %s, metrics %s", production.describe(), production.task,
                production.registered_metrics)
    return production


def _reference(production: Production, frame) -> None:
    """The evaluation-time predictions (evaluate_model's: label, prediction, score) as arrays."""
    label = production.label if production.label in frame.columns else frame.columns[0]
    if not production.task:
        production.task = "regression" if "score" not in frame.columns else (
            "binary" if frame["prediction"].nunique() <= 2 and len(production.classes or [0, 1]) == 2
            else "multiclass"
        )
    task = production.task
    frame = frame[frame[label].notna()]
    if task == "regression":
        production.reference_predictions = frame["prediction"].to_numpy(dtype=np.float64)
        production.reference_labels = frame[label].to_numpy(dtype=np.float64)
        return
    classes = production.classes or sorted(set(frame[label]) | set(frame["prediction"]), key=str)
    production.classes = classes
    predicted = measures.class_indices(frame["prediction"], classes)
    labels = measures.class_indices(frame[label], classes)
    score = frame["score"].to_numpy(dtype=np.float64)
    production.reference_labels = labels
    production.reference_scores = score
    if task == "binary":
        production.reference_predictions = np.where(predicted == 1, score, 1.0 - score)  # P(class 1)
    else:
        production.reference_predictions = predicted


def _read(reader, uri: str, production: Production, what: str):
    try:
        return reader(uri)
    except Exception as exc:  # noqa: BLE001 - any unreadable lineage file only limits what is measured
        production.missing.append(f"its {what} at {uri} cannot be read ({type(exc).__name__}: {exc})")
        logger.warning("cannot read production's %s at %s: %s", what, uri, exc)
        return None


def _read_json(uri: str, production: Production, what: str):
    data = _read(uris.read_bytes, uri, production, what)
    return json.loads(data) if data else None
