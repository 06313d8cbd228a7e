"""Evaluates a candidate SavedModel against thresholds and against the production model.

The gate ``model-is-blessed`` holds one check per rule (absolute thresholds, change vs the
baseline, degenerate predictions, serving latency, robustness to input noise, fairness across
slices), each with value, threshold, outcome and a sentence. The baseline ("champion") is
found without MLMD (MLflow alias, explicit URI, or the live KServe InferenceService) and is
evaluated on the same data in the same run. Without a baseline the first-run policy applies:
the candidate is blessed on absolute checks only, and the report says so.

Runs in the runtime image; never imports kfp. ``run`` returns plain data; the KFP interface
(component.py) turns it into Metrics and ClassificationMetrics artifacts.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components import interface, model_io, registry, run_records, tfdv_io
from components.evaluate_model import _baseline, _checks, _metrics, _probes, _report
from components.evaluate_model._baseline import BaselineUnavailableError
from components.verdict import WARN, Verdict

logger = logging.getLogger(__name__)

GATE = "model-is-blessed"
BASELINE_POLICIES = ("fail", "first_run")
TASK_CHOICES = ("auto",) + _metrics.TASKS

__all__ = [
    "BaselineUnavailableError",
    "EmptyEvaluationDataError",
    "SchemaMismatchError",
    "run",
]


class SchemaMismatchError(ValueError):
    """The model needs columns (features or label) that the evaluation data lacks."""


class EmptyEvaluationDataError(ValueError):
    """The evaluation data has no rows with a label."""


@interface.defaults_from(__file__)
def run(
    *,
    model_dir: str,
    verdict_path: str,
    report_path: str,
    html_path: str = "",
    eval_data_path: str = "",
    model_metadata: dict | None = None,
    model_uri: str = "",
    predictions_path: str = "",
    verdict_uri: str = "",
    data_verdict_path: str = "",
    data_verdict_uri: str = "",
    eval_data_uri, thresholds, change_thresholds, baseline_source, baseline_model_uri, mlflow_tracking_uri,
    registered_model_name, baseline_alias, kserve_service, kserve_namespace, on_baseline_error,
    degenerate_min_std, max_latency_p95_ms, latency_calls, robustness_noise, robustness_min_agreement,
    robustness_tolerance, slice_columns, fairness_metric, fairness_max_gap, min_slice_rows, task, label,
    mlflow_experiment, record_dir,
) -> dict:
    """Evaluates the candidate (and the baseline), writes the JSON verdict and the Markdown report.

    Parameters are documented on the component (component.py); ``auc`` means ``roc_auc`` in
    ``thresholds`` and ``change_thresholds``, and the primary metric's default change limit
    is ``_metrics.change_limits``'.

    Args:
        model_dir: Candidate model folder (TF-Serving layout, ``<dir>/1/saved_model.pb``).
        verdict_path: Where to write the verdict as JSON.
        report_path: Where to write the Markdown report.
        html_path: When given, where to write the HTML report (charts, no scripts, offline).
        eval_data_path: The evaluation data artifact (CSV/Parquet), exclusive with eval_data_uri.
        model_metadata: The candidate's artifact metadata (task, label, features, classes, ...).
        model_uri: The candidate's URI, recorded in the report and as an MLflow tag.
        predictions_path: When given, the candidate's prediction for every evaluation row goes
            there as Parquet (the label, ``prediction``, and ``score`` for classifiers): the
            reference that live monitoring compares served predictions with.
        verdict_uri: The verdict's URI, as the run record names it (default: verdict_path).
        data_verdict_path: The data gate's verdict, recorded in record_dir (when both are set)
            under its own gate before the evaluation starts, so a failed evaluation keeps it.
        data_verdict_uri: Its URI, as the run record names it (default: data_verdict_path).

    Returns:
        ``{"blessed": bool, "summary": str, "metrics": {name: float} (candidate metrics and
        baseline_<name>), "roc_curve": {"fpr", "tpr", "thresholds"} | None,
        "confusion_matrix": {"categories", "matrix"} | None, "verdict": dict}``

    Raises:
        ValueError: an argument is invalid (named, with what was expected).
        SchemaMismatchError: the data lacks the label or features the model needs.
        EmptyEvaluationDataError: no labelled rows to evaluate.
        BaselineUnavailableError: the baseline cannot be used and on_baseline_error is fail.
    """
    if record_dir and data_verdict_path:
        run_records.record_verdict(record_dir, "", data_verdict_path, data_verdict_uri)
    metadata = dict(model_metadata or {})
    thresholds = _metric_dict("thresholds", thresholds)
    change_thresholds = _metric_dict("change_thresholds", change_thresholds)
    slice_columns = [str(c) for c in (slice_columns or [])]
    tracking_uri = registry.resolve_tracking_uri(mlflow_tracking_uri)
    a = dict(locals())  # the arguments, as the steps below read them
    _validate(a)
    data = _evaluation_data(a, metadata)
    candidate_model = model_io.load(model_dir)
    _require_features(candidate_model, data.frame, "candidate model")
    candidate_pred = _predict(candidate_model, data)
    candidate = _metrics.compute(data.task, data.y, candidate_pred, data.n_classes)
    logger.info("candidate metrics: %s", candidate)

    verdict = Verdict(GATE)
    verdict.details = {
        "task": data.task,
        "label": data.label,
        "classes": [_metrics.display(c) for c in data.classes] if data.classes else None,
        "rows": len(data.frame),
        "eval_data": data.uri,
        "candidate": {"uri": model_uri or model_dir, "metrics": _clean(candidate)},
        "baseline": None,
    }
    with tempfile.TemporaryDirectory(prefix="baseline-") as work_dir:
        baseline, baseline_pred = _evaluate_baseline(
            verdict, work_dir, data, source=baseline_source, on_error=on_baseline_error,
            model_uri=baseline_model_uri, tracking_uri=tracking_uri,
            registered_model_name=registered_model_name, alias=baseline_alias,
            kserve_service=kserve_service, kserve_namespace=kserve_namespace,
        )
    _check_metrics(verdict, data.task, candidate, baseline, thresholds, change_thresholds)
    probes = _check_probes(verdict, a, data, candidate_model, candidate_pred)
    slices = _check_slices(verdict, a, data, candidate_pred)
    verdict.details["slices"] = slices
    verdict.details["probes"] = _clean(probes)
    verdict.details["comparison"] = _comparison(candidate, baseline)

    flat = _flat_metrics(candidate, baseline, probes, data)
    if tracking_uri:
        _log_to_mlflow(
            verdict, flat, tracking_uri, mlflow_experiment, model_uri or model_dir, metadata,
            registered_model_name,
        )
    if predictions_path:
        _write_predictions(predictions_path, data.frame[data.label], data.task, candidate_pred, data.classes)
    _write_text(verdict_path, verdict.to_json())
    _write_text(report_path, _report.markdown(verdict, candidate, baseline, slices))
    if html_path:
        _write_text(html_path, _report.html_page(
            verdict, candidate, baseline, slices, task=data.task, y=data.y, candidate_pred=candidate_pred,
            baseline_pred=baseline_pred, classes=data.classes,
        ))
    logger.info("%s", verdict.summary())
    if record_dir:
        run_records.record_verdict(record_dir, GATE, verdict_path, verdict_uri)
    return _result(verdict, flat, data, candidate_pred)


@dataclass
class _Data:
    """The labelled evaluation rows and what the metrics need to read them."""

    uri: str
    frame: pd.DataFrame
    label: str
    task: str
    classes: list | None
    y: np.ndarray

    @property
    def n_classes(self) -> int:
        return len(self.classes) if self.classes else 0


def _evaluation_data(a: dict, metadata: dict) -> _Data:
    """Reads the evaluation data, settles label, task and classes, and checks that every
    metric, fairness metric and slice column asked for exists for them."""
    uri = tfdv_io.one_source(a["eval_data_path"], a["eval_data_uri"], "evaluation data")
    label = a["label"] or str(metadata.get("label", ""))
    if not label:
        raise ValueError("no label column: the model metadata has no 'label'; pass label=")
    frame = _read(uri, label)
    task = _task(a["task"], metadata, frame[label])
    classes = _classes(task, metadata, frame[label])
    available = _metrics.METRICS[task]
    for name in list(a["thresholds"]) + list(a["change_thresholds"]):
        if name not in available:
            raise ValueError(
                f"metric {name!r} is not computed for a {task} model; expected one of "
                f"{', '.join(available)}"
            )
    fairness_metric = a["fairness_metric"]
    if fairness_metric != "auto" and _metrics.canonical(fairness_metric) not in available:
        raise ValueError(
            f"fairness_metric {fairness_metric!r} is not computed for a {task} model; "
            f"expected auto or one of {', '.join(available)}"
        )
    missing_slices = sorted(set(a["slice_columns"]) - set(frame.columns))
    if missing_slices:
        raise SchemaMismatchError(
            f"slice_columns {missing_slices} are not in the evaluation data "
            f"(columns: {list(frame.columns)})"
        )
    try:
        y = _metrics.encode_labels(frame[label], task, classes)
    except ValueError as exc:
        raise SchemaMismatchError(f"label column {label!r}: {exc}") from exc
    return _Data(uri, frame, label, task, classes, y)


def _predict(loaded, data: _Data, frame: pd.DataFrame | None = None) -> np.ndarray:
    """The model's predictions on ``frame`` (default: the evaluation rows), shape-checked."""
    frame = data.frame if frame is None else frame
    return _metrics.check_shape(data.task, model_io.predict(loaded, frame), len(frame), data.n_classes)


def _check_metrics(verdict, task, candidate, baseline, thresholds, change_thresholds) -> None:
    """Absolute thresholds, and the change vs the baseline (the primary metric always)."""
    for metric, bound in thresholds.items():
        _checks.absolute(verdict, metric, candidate[metric], bound)
    if baseline is None:
        return
    limits = _metrics.change_limits(task, change_thresholds, baseline)
    primary = _metrics.PRIMARY[task]
    if primary not in change_thresholds:
        verdict.notes.append(
            f"{primary} may degrade by at most {limits[primary]:.4g} vs the baseline: the default "
            f"for {task} models (name {primary} in change_thresholds to set another limit)"
        )
    for metric, allowed in limits.items():
        _checks.change(verdict, metric, candidate[metric], baseline[metric], allowed)


def _check_probes(verdict: Verdict, a: dict, data: _Data, candidate_model, candidate_pred) -> dict:
    """Degenerate predictions, serving latency and robustness to noise; returns what was
    measured (prediction_std, latency_p95_ms, robustness_agreement)."""
    task = data.task
    spread = _probes.spread(task, candidate_pred, data.y)
    predicted = (
        len(np.unique(_metrics.predicted_classes(task, candidate_pred))) if data.classes else 0
    )
    _checks.degenerate(
        verdict, task, spread, a["degenerate_min_std"], predicted,
        len(np.unique(data.y)) if data.classes else 0,
    )
    measured = {"prediction_std": spread}

    if a["max_latency_p95_ms"] > 0:
        p95 = _probes.latency_p95_ms(candidate_model, data.frame, a["latency_calls"])
        _checks.latency(verdict, p95, a["max_latency_p95_ms"], a["latency_calls"])
        measured["latency_p95_ms"] = p95

    noise, floor, tolerance = a["robustness_noise"], a["robustness_min_agreement"], a["robustness_tolerance"]
    if noise > 0:
        noisy, perturbed = _probes.noisy_copy(data.frame, candidate_model, noise)
        if perturbed:
            noisy_pred = _predict(candidate_model, data, noisy)
            agreement = _probes.agreement(task, candidate_pred, noisy_pred, tolerance)
            _checks.robustness(verdict, task, agreement, floor, noise, tolerance)
            measured["robustness_agreement"] = agreement
            verdict.details["robustness"] = {"perturbed_features": perturbed, "agreement": agreement}
        else:
            verdict.add(
                "robustness", "gaussian_noise", WARN,
                "the model has no float features to perturb, so robustness was not measured.",
                None, floor, "robustness",
            )
    return measured


def _check_slices(verdict: Verdict, a: dict, data: _Data, candidate_pred) -> dict:
    """Sliced metrics for every slice column, and fairness checks between the large slices;
    returns the slices, cleaned for JSON."""
    slices = {
        column: _metrics.slices(data.frame, column, data.task, data.y, candidate_pred, data.n_classes)
        for column in a["slice_columns"]
    }
    if slices and a["fairness_max_gap"] > 0:
        metric = _fairness_metric(a["fairness_metric"], data.task)
        for column, entries in slices.items():
            large = [e for e in entries if e["rows"] >= a["min_slice_rows"]]
            _checks.fairness(verdict, column, metric, large, a["fairness_max_gap"])
    return {c: [_clean(e) for e in entries] for c, entries in slices.items()}


def _comparison(candidate: dict, baseline: dict | None) -> dict:
    return {
        metric: {
            "candidate": _metrics.clean(value),
            "baseline": _metrics.clean(baseline[metric]) if baseline else None,
            "delta": _metrics.clean(value - baseline[metric]) if baseline else None,
            "higher_is_better": _metrics.higher_is_better(metric),
        }
        for metric, value in candidate.items()
    }


def _flat_metrics(candidate: dict, baseline: dict | None, probes: dict, data: _Data) -> dict[str, float]:
    """Every finite number for KFP Metrics and MLflow: candidate, probes, baseline_<name>."""
    flat = {**candidate, **probes, "eval_rows": float(len(data.frame))}
    if baseline is not None:
        flat.update({f"baseline_{k}": v for k, v in baseline.items()})
    return {k: float(v) for k, v in flat.items() if v is not None and math.isfinite(v)}


def _write_text(path: str, text: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)


def _result(verdict: Verdict, flat: dict, data: _Data, candidate_pred) -> dict:
    """``run``'s return value; the ROC curve (binary) and confusion matrix for the KFP UI."""
    roc = cm = None
    if data.task == "binary":
        roc = _metrics.roc_curve(data.y, candidate_pred)
    if data.task in ("binary", "multiclass"):
        cm = _metrics.confusion_matrix(data.task, data.y, candidate_pred, data.classes)
    return {
        "blessed": verdict.passed,
        "summary": verdict.summary(),
        "metrics": flat,
        "roc_curve": roc,
        "confusion_matrix": cm,
        "verdict": verdict.to_dict(),
    }


def _validate(a: dict) -> None:
    """Checks ``run``'s arguments up front, naming the bad one."""
    if a["baseline_source"] not in _baseline.SOURCES:
        raise ValueError(
            f"baseline_source must be one of {', '.join(_baseline.SOURCES)}, "
            f"got {a['baseline_source']!r}"
        )
    if a["on_baseline_error"] not in BASELINE_POLICIES:
        raise ValueError(
            f"on_baseline_error must be 'fail' or 'first_run', got {a['on_baseline_error']!r}"
        )
    if a["task"] not in TASK_CHOICES:
        raise ValueError(f"task must be one of {', '.join(TASK_CHOICES)}, got {a['task']!r}")
    source = a["baseline_source"]
    if source == "uri" and not a["baseline_model_uri"]:
        raise ValueError("baseline_source='uri' needs baseline_model_uri (a model folder)")
    if source == "mlflow":
        if not a["tracking_uri"]:
            raise ValueError(
                "baseline_source='mlflow' needs mlflow_tracking_uri (or MLFLOW_TRACKING_URI)"
            )
        if not a["registered_model_name"]:
            raise ValueError("baseline_source='mlflow' needs registered_model_name")
        if not a["baseline_alias"]:
            raise ValueError("baseline_source='mlflow' needs baseline_alias, e.g. 'production'")
    if source == "kserve" and not a["kserve_service"]:
        raise ValueError("baseline_source='kserve' needs kserve_service (InferenceService name)")
    for metric, allowed in a["change_thresholds"].items():
        if allowed < 0:
            raise ValueError(
                f"change_thresholds[{metric!r}] must be a non-negative degradation, got {allowed}"
            )
    if a["latency_calls"] < 1:
        raise ValueError(f"latency_calls must be at least 1, got {a['latency_calls']}")
    if not 0 <= a["robustness_min_agreement"] <= 1:
        raise ValueError(
            f"robustness_min_agreement must be in [0, 1], got {a['robustness_min_agreement']}"
        )
    if a["robustness_tolerance"] < 0:
        raise ValueError(f"robustness_tolerance must be >= 0, got {a['robustness_tolerance']}")
    if a["min_slice_rows"] < 1:
        raise ValueError(f"min_slice_rows must be at least 1, got {a['min_slice_rows']}")


def _metric_dict(name: str, values: dict | None) -> dict[str, float]:
    out = {}
    for metric, bound in (values or {}).items():
        try:
            number = float(bound)
        except (TypeError, ValueError):
            raise ValueError(f"{name}[{metric!r}] must be a number, got {bound!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"{name}[{metric!r}] must be finite, got {bound!r}")
        out[_metrics.canonical(metric)] = number
    return out


def _read(uri: str, label: str) -> pd.DataFrame:
    frame = model_io.read_frame(uri)
    if label not in frame.columns:
        raise SchemaMismatchError(
            f"the evaluation data {uri} has no label column {label!r} (columns: {list(frame.columns)})"
        )
    if len(frame) == 0:
        raise EmptyEvaluationDataError(f"the evaluation data {uri} has no rows")
    unlabelled = frame[label].isna()
    if unlabelled.all():
        raise EmptyEvaluationDataError(
            f"the evaluation data {uri} has {len(frame)} rows but none has a value in {label!r}"
        )
    if unlabelled.any():
        logger.warning("dropping %d rows without a label %r", int(unlabelled.sum()), label)
        frame = frame[~unlabelled].reset_index(drop=True)
    return frame


def _write_predictions(path: str, labels: pd.Series, task: str, predictions: np.ndarray, classes) -> None:
    """One row per evaluation row: the label, the prediction (a class, or the regressed value)
    and, for classifiers, the score of the predicted class."""
    out = pd.DataFrame({labels.name: labels.to_numpy()})
    if task == "regression":
        out["prediction"] = predictions.reshape(-1)
    else:
        index = _metrics.predicted_classes(task, predictions.reshape(-1) if task == "binary" else predictions)
        out["prediction"] = [classes[i] for i in index]
        scores = predictions.reshape(-1) if task == "binary" else predictions.max(axis=1)
        out["score"] = np.where(index == 1, scores, 1 - scores) if task == "binary" else scores
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    out.to_parquet(path, index=False)


def _task(task: str, metadata: dict, labels: pd.Series) -> str:
    if task != "auto":
        return task
    declared = metadata.get("task")
    if declared:
        if declared not in _metrics.TASKS:
            raise ValueError(
                f"model metadata task {declared!r} is not one of {', '.join(_metrics.TASKS)}"
            )
        return declared
    inferred = model_io.infer_task(labels)
    logger.info("task inferred from the label: %s", inferred)
    return inferred


def _classes(task: str, metadata: dict, labels: pd.Series) -> list | None:
    if task == "regression":
        return None
    classes = metadata.get("classes")
    if classes:
        classes = list(classes)
    else:
        present = labels.dropna().unique().tolist()
        numeric = pd.api.types.is_numeric_dtype(labels)
        if task == "binary" and numeric and set(present) <= {0, 1}:
            classes = [0, 1]  # one class may be absent from a small evaluation set
        else:
            classes = sorted(present) if numeric else sorted(present, key=str)
        logger.info("model metadata has no classes; using %s from the labels", classes)
    if task == "binary" and len(classes) != 2:
        raise ValueError(f"a binary model needs exactly two classes, metadata has {classes}")
    return classes


def _require_features(loaded, frame: pd.DataFrame, what: str) -> None:
    needed = model_io.serving_inputs(loaded)
    missing = sorted(set(needed) - set(frame.columns))
    if missing:
        raise SchemaMismatchError(
            f"the {what} needs columns {missing} which the evaluation data lacks "
            f"(model inputs: {sorted(needed)}; data columns: {list(frame.columns)})"
        )


def _evaluate_baseline(
    verdict: Verdict, work_dir: str, data: _Data, *, source: str, on_error: str, **where,
) -> tuple[dict | None, np.ndarray | None]:
    """Baseline metrics and predictions on the same data, or (None, None) (no baseline, or the
    fallback under first_run)."""
    first_run = "The candidate is judged on absolute checks only (first-run policy)."
    try:
        found = _baseline.resolve(
            source, work_dir,
            model_uri=where["model_uri"], tracking_uri=where["tracking_uri"],
            registered_model_name=where["registered_model_name"], alias=where["alias"],
            kserve_service=where["kserve_service"], kserve_namespace=where["kserve_namespace"],
        )
        verdict.details["baseline"] = {"source": source, **found.info, "description": found.description}
        if found.model_dir is None:
            verdict.notes.append(f"No baseline: {found.description}. {first_run}")
            logger.info("no baseline: %s", found.description)
            return None, None
        try:
            loaded = model_io.load(found.model_dir)
            _require_features(loaded, data.frame, "baseline model")
            predictions = _predict(loaded, data)
        except Exception as exc:  # noqa: BLE001 - any failure makes the baseline unusable
            raise BaselineUnavailableError(
                f"the baseline ({found.description}) cannot be evaluated: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    except BaselineUnavailableError as exc:
        if on_error == "fail":
            raise
        logger.warning("baseline unavailable, first-run fallback: %s", exc)
        verdict.add(
            "baseline", source, WARN,
            f"the baseline could not be used, so change checks were skipped "
            f"(on_baseline_error='first_run'): {exc}",
            None, None, "baseline_unavailable",
        )
        verdict.notes.append(f"Baseline unavailable: {exc}. {first_run}")
        details = verdict.details.get("baseline") or {"source": source}
        details["error"] = str(exc)
        verdict.details["baseline"] = details
        return None, None
    metrics = _metrics.compute(data.task, data.y, predictions, data.n_classes)
    verdict.details["baseline"]["metrics"] = _clean(metrics)
    logger.info("baseline metrics: %s", metrics)
    return metrics, predictions


def _fairness_metric(name: str, task: str) -> str:
    if name != "auto":
        return _metrics.canonical(name)
    # ROC AUC does not move with a slice's base rate the way accuracy does.
    return {"binary": "roc_auc", "multiclass": "accuracy", "regression": "mae"}[task]


def _clean(values: dict) -> dict:
    return {k: _metrics.clean(v) for k, v in values.items()}


def _log_to_mlflow(
    verdict: Verdict, flat: dict, tracking_uri: str, experiment: str, candidate_uri: str,
    metadata: dict, registered_model_name: str,
) -> None:
    """One run in ``experiment`` with every metric, tagged with the candidate and the verdict.

    A tracking server that fails here does not change the verdict: the failure is logged and
    recorded as a note (the blessing itself is already decided).
    """
    import mlflow

    try:
        registry.client(tracking_uri)
        mlflow.set_experiment(experiment)
        with mlflow.start_run(run_name="evaluate-model") as active:
            mlflow.log_metrics(flat)
            mlflow.set_tags(
                {
                    "component": "evaluate_model",
                    "candidate.uri": candidate_uri,
                    "candidate.data_hash": str(metadata.get("data_hash", "")),
                    "registered_model_name": registered_model_name,
                    "model_is_blessed": str(verdict.passed).lower(),
                    "baseline.version": str((verdict.details.get("baseline") or {}).get("version", "")),
                }
            )
            mlflow.log_dict(json.loads(verdict.to_json()), "blessing.json")
            verdict.details["mlflow_run_id"] = active.info.run_id
        logger.info("metrics logged to MLflow run %s", active.info.run_id)
    except Exception as exc:  # noqa: BLE001 - logging must not hide the verdict
        logger.warning("could not log metrics to MLflow at %s: %s", tracking_uri, exc)
        verdict.notes.append(f"Metrics were not logged to MLflow at {tracking_uri}: {exc}")
