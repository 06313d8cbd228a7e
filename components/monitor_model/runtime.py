"""monitor_model: the model in production judged from a window of its prediction logs.

One verdict (gate ``model-is-healthy``) with a check per measurement, each with its value,
threshold and a sentence: training/serving skew per feature (TFDV), prediction drift (PSI vs
the evaluation-time predictions stored at registration), live performance vs the registered
metrics once labels are there, or a confidence-based estimate (CBPE) before they are, and the
serving side: traffic, error rate, latency, flagged rows. What production is made of comes
from its MLflow version (``_production``), the window from ``components.prediction_log``.

``action`` says what to do: "retrain" when the model no longer fits what it serves (skew,
drift, performance), "alert" when only serving is unhealthy (a new model would not help),
"none" when healthy. A window too small to judge fails: silence is not health.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from components import interface, measures, model_io, prediction_log, registry, tfdv_io, uris, verdict
from components.monitor_model import _production, _report
from components.verdict import FAIL, PASS, WARN

logger = logging.getLogger(__name__)

GATE = "model-is-healthy"
ACTIONS = ("none", "retrain", "alert")
MODEL_CHECKS = frozenset({"skew", "prediction_drift", "performance", "performance_estimate"})
"""Checks whose failure means the model no longer fits its traffic: action "retrain"."""
SERVING_CHECKS = frozenset({"window", "error_rate", "latency_p95", "flagged_share"})
"""Checks whose failure a new model would not fix: action "alert"."""
LOG_COLUMNS = frozenset({*prediction_log.ROW_COLUMNS, "prediction", "flags", "flagged"})
TOP_FLAGS = 5


class LogsNotFoundError(FileNotFoundError):
    """The prediction logs' folder does not exist (a wrong log_uri, or nothing was ever logged)."""


@dataclass
class Result:
    healthy: bool
    action: str
    summary: str
    verdict: verdict.Verdict


@interface.defaults_from(__file__)
def run(
    *,
    verdict_path: str,
    report_path: str,
    statistics_path: str,
    html_path: str = "",
    log_metric: Callable[[str, float], None] | None = None,
    log_uri, model_name, window_hours, window_end, labels_uri, label, join_key, registered_model_name,
    model_alias, mlflow_tracking_uri, max_skew_linf, max_skew_jsd, max_prediction_psi,
    max_performance_drop, min_labelled_rows, max_error_rate, max_latency_p95_ms, max_flagged_share,
    min_rows, plot_all_features,
) -> Result:
    """Reads the window, measures, writes the verdict, report, statistics and metrics.

    Parameters are documented on the component (component.py).

    Args:
        verdict_path: Where the JSON verdict goes.
        report_path: Where the Markdown report goes.
        statistics_path: Where the serving statistics (binary proto) go.
        html_path: When given, where the HTML report (charts, no scripts, offline) goes.
        log_metric: Called with (name, value) for every metric (KFP ``Metrics.log_metric``).

    Raises:
        ValueError: a bad argument (named, with what was expected).
        LogsNotFoundError: ``log_uri`` does not exist.
        components.registry.TrackingUriMissing: no MLflow tracking URI reached the task.
        components.registry.RegistryUnavailable: the tracking server did not answer.
        components.tfdv_io.DataReadError: the labels file is missing or unreadable.
    """
    a = dict(locals())
    _validate(a)
    start, end = _window(window_end, window_hours)
    name = registered_model_name or model_name
    tracking_uri = registry.resolve_tracking_uri(
        mlflow_tracking_uri, required_for=f"monitoring {name!r} against its production version"
    )
    logs = _read_logs(log_uri, model_name, start, end)
    production = _production.load(tracking_uri, name, model_alias)

    result = verdict.Verdict(gate=GATE)
    measured: dict[str, float] = {}
    result.details.update(
        {
            "model_name": model_name,
            "window": {"start": start.isoformat(), "end": end.isoformat(), "hours": window_hours},
            "log_uri": log_uri,
            "production": {
                "registered_model_name": name, "alias": model_alias, "version": production.version,
                "task": production.task, "registered_metrics": production.registered_metrics,
                "metrics_source": production.metrics_source,
            },
        }
    )
    logs = _production_rows(result, logs, production)
    served = logs[(logs["status"] == 200) & logs["prediction"].notna()].reset_index(drop=True)
    judged = _check_window(result, logs, served, a, log_uri, model_name, start, end, measured)
    _check_serving(result, logs, served, a, measured)

    stats = _serving_statistics(served, production, statistics_path)
    if not production.found:
        result.add("baseline", name, WARN,
                   f"{production.describe()}: skew, prediction drift and performance were not measured",
                   kind="no_production_version")
    for sentence in production.missing:
        result.notes.append(f"Production ({production.describe()}): {sentence}.")
    predictions = None
    if judged and production.found:
        skew = _check_skew(result, production, stats, a, measured)
        result.details["skew"] = skew
        predictions = _served_predictions(production, served)
        _check_drift(result, production, predictions, a, measured)
        _check_performance(result, production, served, predictions, a, measured)
    elif not judged:
        result.notes.append("The window is too small to judge: skew, drift and performance were not judged.")

    action, reasons = _action(result)
    measured.update({
        "model_is_healthy": 1.0 if result.passed else 0.0,
        "retrain": 1.0 if action == "retrain" else 0.0,
        "alert": 1.0 if action == "alert" else 0.0,
    })
    metrics = {k: float(v) for k, v in measured.items() if v is not None and math.isfinite(v)}
    result.details.update({"action": action, "action_reasons": reasons, "metrics": metrics})
    _write(verdict_path, result.to_json())
    _write(report_path, _report.markdown(result, action, reasons, production))
    if html_path:
        _write(html_path, _report.html_page(result, action, reasons, production, stats, predictions,
                                            plot_all_features))
    for metric, value in metrics.items():
        if log_metric is not None:
            log_metric(metric, value)
    logger.info("%s; action %s", result.summary(), action)
    return Result(result.passed, action, result.summary(), result)


def _validate(a: dict) -> None:
    if not a["log_uri"]:
        raise ValueError("log_uri must name the prediction logs' folder (the model server's log_dir)")
    if not a["model_name"]:
        raise ValueError("model_name must name the model as logged (the served name)")
    if not a["window_hours"] > 0:
        raise ValueError(f"window_hours must be > 0, got {a['window_hours']}")
    if a["labels_uri"] and not a["join_key"]:
        raise ValueError("labels_uri needs join_key: 'request_id' or a key column of the logged inputs")
    for name in ("max_skew_linf", "max_skew_jsd", "max_prediction_psi", "max_performance_drop",
                 "max_error_rate", "max_latency_p95_ms", "max_flagged_share"):
        if not a[name] >= 0:
            raise ValueError(f"{name} must be >= 0, got {a[name]}")
    for name in ("max_error_rate", "max_flagged_share"):
        if a[name] > 1:
            raise ValueError(f"{name} is a share of requests/rows in [0, 1], got {a[name]}")
    for name in ("min_rows", "min_labelled_rows"):
        if a[name] < 1:
            raise ValueError(f"{name} must be at least 1, got {a[name]}")


def _window(window_end: str, window_hours: float) -> tuple[datetime, datetime]:
    """[start, end) in UTC; ``window_end`` "" is now, a time without a zone is UTC."""
    if window_end:
        try:
            end = datetime.fromisoformat(window_end.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(
                f"window_end must be an ISO 8601 time such as 2026-12-01T06:00:00Z, got {window_end!r}"
            ) from exc
        end = end if end.tzinfo else end.replace(tzinfo=timezone.utc)
    else:
        end = datetime.now(timezone.utc)
    return end - timedelta(hours=window_hours), end


def _read_logs(log_uri: str, model_name: str, start: datetime, end: datetime) -> pd.DataFrame:
    try:
        found = uris.exists(log_uri)
    except uris.UriError as exc:
        raise LogsNotFoundError(f"cannot open the prediction logs at {log_uri!r}: {exc}") from exc
    if not found:
        raise LogsNotFoundError(
            f"the prediction logs' folder {log_uri!r} does not exist: pass the folder the model "
            "server logs to (its log_dir), or the bucket path KServe's inference logger writes to"
        )
    frame = prediction_log.read(log_uri, model_name, start, end)
    frame["status"] = pd.to_numeric(frame["status"], errors="coerce").fillna(0).astype(int)
    frame["latency_ms"] = pd.to_numeric(frame["latency_ms"], errors="coerce")
    logger.info("%d logged rows of %s in [%s, %s)", len(frame), model_name, start, end)
    return frame


def _production_rows(result, logs: pd.DataFrame, production) -> pd.DataFrame:
    """The rows production's version served. Rows logged by another version (a canary, the
    model before a promotion inside the window) are left out and counted; rows without a
    version (a server that does not know it) are kept."""
    if not production.found or logs.empty:
        return logs
    versions = logs["version"].fillna("").astype(str)
    other = (versions != "") & (versions != str(production.version))
    if not other.any():
        return logs
    counts = versions[other].value_counts().sort_index().to_dict()
    result.details["other_versions"] = {version: int(n) for version, n in counts.items()}
    listed = ", ".join(f"{n} rows of version {version}" for version, n in counts.items())
    result.notes.append(
        f"Judged on production's version {production.version} only: the window also holds {listed} "
        "(a canary, or the model before a promotion), left out."
    )
    return logs[~other].reset_index(drop=True)


def _check_window(result, logs, served, a, log_uri, model_name, start, end, measured) -> bool:
    """Traffic volume; False (and a failed check) when the window is too small to judge."""
    requests = logs["request_id"].nunique()
    measured.update({"rows": float(len(served)), "requests": float(requests)})
    span = f"[{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) UTC"
    if len(served) >= a["min_rows"]:
        result.add("window", "served_rows", PASS,
                   f"{len(served)} served rows in {requests} requests in {span}",
                   value=len(served), threshold=a["min_rows"], kind="traffic")
        return True
    if requests == 0:
        known = prediction_log.models(log_uri)  # name the models that do have logs (a typo?)
        others = ", ".join(known) or "none"
        elsewhere = "" if model_name in known else f" (models with logs under {log_uri}: {others})"
        where = f"no request of {model_name!r} is logged in {span}{elsewhere}"
    else:
        where = f"only {len(served)} served rows ({requests} requests) in {span}"
    result.add("window", "served_rows", FAIL,
               f"too small to judge: {where}, fewer than min_rows={a['min_rows']}; skew, drift and "
               "performance were not judged, and this is not a healthy verdict",
               value=len(served), threshold=a["min_rows"], kind="too_small_to_judge")
    return False


def _check_serving(result, logs, served, a, measured) -> None:
    """Error rate and latency per request; the share of flagged rows and the top flags."""
    requests = logs.drop_duplicates("request_id")
    if requests.empty:
        return
    errors = requests["status"] != 200
    rate = float(errors.mean())
    statuses = Counter(int(s) for s in requests.loc[errors, "status"])
    example = requests.loc[errors, "error"].dropna().head(1).tolist()
    result.add(
        "error_rate", "requests", FAIL if rate > a["max_error_rate"] else PASS,
        f"{int(errors.sum())} of {len(requests)} requests ({rate:.1%}) were not answered with 200"
        + (f" (status {', '.join(f'{s}: {n}' for s, n in sorted(statuses.items()))})" if statuses else "")
        + (f"; e.g. {str(example[0])[:200]!r}" if example else ""),
        value=round(rate, 6), threshold=a["max_error_rate"], kind="share",
    )
    latency = requests["latency_ms"].dropna().to_numpy(dtype=np.float64)
    if len(latency):
        p50, p95 = (float(v) for v in np.percentile(latency, [50, 95]))
        measured.update({"latency_p50_ms": p50, "latency_p95_ms": p95})
        result.add(
            "latency_p95", "requests", FAIL if p95 > a["max_latency_p95_ms"] else PASS,
            f"p95 request latency {p95:.1f} ms (p50 {p50:.1f} ms) over {len(latency)} requests",
            value=round(p95, 3), threshold=a["max_latency_p95_ms"], kind="milliseconds",
        )
    measured["error_rate"] = rate
    if served.empty:
        return
    share = float(served["flagged"].astype(bool).mean())
    measured["flagged_share"] = share
    top = Counter(
        (flag.get("feature", ""), flag.get("flag", "")) for flags in served["flags"] for flag in (flags or [])
    ).most_common(TOP_FLAGS)
    result.details["top_flags"] = [{"feature": f, "flag": k, "rows": n} for (f, k), n in top]
    result.add(
        "flagged_share", "rows", FAIL if share > a["max_flagged_share"] else PASS,
        f"{int(served['flagged'].sum())} of {len(served)} served rows ({share:.1%}) were flagged by the "
        "request check" + (": " + ", ".join(f"{f} {k} x{n}" for (f, k), n in top) if top else ""),
        value=round(share, 6), threshold=a["max_flagged_share"], kind="share",
    )


# --- Serving statistics and skew ----------------------------------------------------------


def serving_frame(served: pd.DataFrame, production: _production.Production) -> pd.DataFrame:
    """The served inputs, typed as production's schema types them, missing markers as missing.

    Clients send a missing value as the model's marker (NaN, "" for strings, -1 for integer
    codes, see the README); as values they would show up as a new category or value and
    read as skew. A column that does not convert to the schema's type is left as it came, so
    the type change shows in the statistics instead of being hidden.
    """
    from tensorflow_metadata.proto.v0 import schema_pb2

    types = {f.name: f.type for f in production.schema.feature} if production.schema is not None else {}
    frame = served[[c for c in served.columns if c not in LOG_COLUMNS]].copy()
    for column in frame.columns:
        values = frame[column]
        kind = production.kinds.get(column)
        wanted = types.get(column)
        if wanted in (schema_pb2.INT, schema_pb2.FLOAT) or kind in ("int", "float"):
            numbers = pd.to_numeric(values, errors="coerce")
            if (numbers.isna() & values.notna()).any():
                frame[column] = values.map(lambda v: None if v is None else str(v))
                continue
            integral = numbers.dropna().mod(1).eq(0).all()
            if (wanted == schema_pb2.INT or (wanted is None and kind == "int")) and integral:
                numbers = numbers.astype("Int64")
                if kind == "int":
                    numbers = numbers.mask(numbers == -1)  # the integer code's missing marker
            frame[column] = numbers
        else:
            frame[column] = values.map(lambda v: None if _missing(v) else str(v))
    return frame


def _missing(value) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _serving_statistics(served: pd.DataFrame, production, statistics_path: str):
    """TFDV statistics of the window's inputs, written to ``statistics_path`` (always: an empty
    window gives a statistics list with one empty dataset)."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    frame = serving_frame(served, production)
    if len(frame) and len(frame.columns):
        import tensorflow_data_validation as tfdv

        stats = tfdv.generate_statistics_from_dataframe(frame, stats_options=_stats_options(production))
    else:
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        stats.datasets.add(num_examples=0)
    stats.datasets[0].name = "serving"
    Path(statistics_path).parent.mkdir(parents=True, exist_ok=True)
    Path(statistics_path).write_bytes(stats.SerializeToString())
    return stats


def _stats_options(production):
    """Integer-coded categoricals (in the schema) summarised as categories, as
    compute_statistics does with categorical_columns, so L-infinity compares like with like."""
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import schema_pb2

    hints = schema_pb2.Schema()
    for feature in production.schema.feature if production.schema is not None else ():
        if feature.type == schema_pb2.INT and feature.int_domain.is_categorical:
            hints.feature.add(name=feature.name, type=schema_pb2.INT).int_domain.is_categorical = True
    return tfdv.StatsOptions(schema=hints) if hints.feature else tfdv.StatsOptions()


def _by_name(stats) -> dict:
    return {".".join(f.path.step): f for f in stats.datasets[0].features} if stats and stats.datasets else {}


def _check_skew(result, production, serving, a, measured) -> dict:
    """One skew check per feature that training and serving share: L-infinity for categories,
    Jensen-Shannon divergence (quantile histograms) for numbers, measured by TFDV."""
    if production.statistics is None:
        result.add("skew", "", WARN, "not measured: production has no training statistics stored",
                   kind="not_measured")
        return {}
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

    training, serving_by = _by_name(production.statistics), _by_name(serving)
    shared = sorted(set(training) & set(serving_by))
    if production.schema is not None:
        schema = schema_pb2.Schema()
        schema.CopyFrom(production.schema)
    else:
        schema = tfdv.infer_schema(production.statistics)
    environment = tfdv_io.TRAINING if tfdv_io.TRAINING in schema.default_environment else None
    names = {anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: "linf",
             anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE: "jsd"}
    for feature in schema.feature:
        feature.ClearField("skew_comparator")
        feature.ClearField("drift_comparator")
        if feature.name not in shared or tfdv_io.SERVING in feature.not_in_environment:
            continue
        categorical = feature.type == schema_pb2.BYTES or (
            training[feature.name].HasField("string_stats")
            and serving_by[feature.name].HasField("string_stats")
        )
        if categorical:
            feature.skew_comparator.infinity_norm.threshold = a["max_skew_linf"]
        else:
            jsd = feature.skew_comparator.jensen_shannon_divergence
            jsd.threshold = a["max_skew_jsd"]
            jsd.source.type = schema_pb2.HistogramSelection.QUANTILES
    anomalies = tfdv.validate_statistics(
        production.statistics, schema, environment=environment, serving_statistics=serving
    )
    scores = {}
    for info in anomalies.drift_skew_info:
        feature = ".".join(info.path.step)
        for m in info.skew_measurements:
            metric = names.get(m.type, str(m.type))
            scores[feature] = {"metric": metric, "value": float(m.value), "threshold": float(m.threshold)}
    worst = sorted(scores.items(), key=lambda kv: -kv[1]["value"] / max(kv[1]["threshold"], 1e-12))
    for feature, s in worst:
        tripped = s["value"] > s["threshold"]
        label = "L-infinity distance" if s["metric"] == "linf" else "Jensen-Shannon divergence"
        result.add(
            "skew", feature, FAIL if tripped else PASS,
            f"{label} between training and serving is {s['value']:.3f}"
            + (f", above {s['threshold']:g}: serving's '{feature}' no longer looks like training's"
               if tripped else f" (at most {s['threshold']:g})"),
            value=round(s["value"], 6), threshold=s["threshold"], kind=s["metric"],
        )
        measured[f"skew_{s['metric']}__{_metric_name(feature)}"] = s["value"]
    skipped = sorted(f for f in serving_by if f not in training)
    if skipped:
        result.notes.append(
            f"Served but not in the training statistics (no skew measured): {', '.join(skipped)}."
        )
    return scores


# --- Predictions: drift and performance ---------------------------------------------------


def _served_predictions(production, served: pd.DataFrame) -> np.ndarray | None:
    """The window's predictions in the reference's form: binary P(1), multiclass probability
    rows, regression values; None when they do not have the task's shape."""
    values = served["prediction"].tolist()
    try:
        if production.task == "multiclass":
            rows = np.array([np.asarray(v, dtype=np.float64).reshape(-1) for v in values])
            return rows if rows.ndim == 2 and rows.shape[1] == len(production.classes or []) else None
        return np.array([float(np.asarray(v, dtype=np.float64).reshape(-1)[0]) for v in values])
    except (TypeError, ValueError, IndexError):
        return None


def _check_drift(result, production, predictions, a, measured) -> None:
    reference = production.reference_predictions
    if reference is None or predictions is None:
        why = ("production has no evaluation predictions stored" if reference is None
               else f"the logged predictions do not have the shape of a {production.task} model's")
        result.add("prediction_drift", "prediction", WARN, f"not measured: {why}", kind="not_measured")
        return
    if production.task == "multiclass":
        value = measures.psi_classes(reference, np.argmax(predictions, axis=1), len(production.classes))
        what = "the predicted classes' shares"
    else:
        value, _ = measures.psi(reference, predictions)
        what = ("P(class 1)" if production.task == "binary" else "the predicted values") + (
            f" in {measures.PSI_BINS} quantile bins")
    measured["prediction_psi"] = value
    tripped = value > a["max_prediction_psi"]
    result.add(
        "prediction_drift", "prediction", FAIL if tripped else PASS,
        f"population stability index (PSI) of {what}, window vs the {len(reference)} evaluation-time "
        f"predictions of version {production.version}: {value:.3f}"
        + (" - the model now answers differently than at registration" if tripped else ""),
        value=round(value, 6), threshold=a["max_prediction_psi"], kind="psi",
    )


def _check_performance(result, production, served, predictions, a, measured) -> None:
    """Measured on labelled rows when there are enough of them; otherwise estimated (CBPE)."""
    task = production.task
    if task not in measures.LIVE_METRICS or predictions is None:
        result.add("performance", "", WARN, f"not measured: the task of production is {task or 'unknown'!r}",
                   kind="not_measured")
        return
    for metric, value in production.registered_metrics.items():
        if metric in measures.LIVE_METRICS[task]:
            measured[f"registered_{metric}"] = value
    y, labelled = _labels(production, served, a)
    measured["labelled_rows"] = float(len(y)) if y is not None else 0.0
    if y is not None and len(y) >= a["min_labelled_rows"]:
        live = measures.live(task, y, predictions[labelled])
        result.details["live_performance"] = {"labelled_rows": len(y), "metrics": live}
        for metric, value in live.items():
            measured[f"live_{metric}"] = value
            basis = f" on {len(y)} labelled rows"
            _performance_check(result, production, metric, value, a, "measured", basis)
        return
    count = 0 if y is None else len(y)
    if a["labels_uri"]:
        result.notes.append(
            f"{count} labelled rows in the window, fewer than min_labelled_rows={a['min_labelled_rows']}: "
            "performance is estimated, not measured."
        )
    if task == "regression":
        result.add("performance", "rmse", WARN,
                   f"not measured: {count} labelled rows (min_labelled_rows {a['min_labelled_rows']}) and "
                   "a regression model's performance is not estimated without labels",
                   value=count, threshold=a["min_labelled_rows"], kind="not_measured")
        return
    if production.reference_scores is None or production.reference_labels is None:
        result.add("performance_estimate", "", WARN,
                   "not estimated: production has no labelled evaluation predictions to calibrate on",
                   kind="not_measured")
        return
    if task == "binary":
        scores, outcomes = production.reference_predictions, production.reference_labels
    else:
        scores = production.reference_scores
        outcomes = (production.reference_predictions == production.reference_labels).astype(float)
    estimates = measures.cbpe(task, scores, outcomes, predictions)
    result.details["estimated_performance"] = {
        "method": "CBPE (isotonic calibration on the evaluation predictions, 95 % bootstrap interval)",
        "rows": len(predictions), "labelled_rows": count, "metrics": estimates,
    }
    for metric, e in estimates.items():
        measured[f"estimated_{metric}"] = e["value"]
        measured[f"estimated_{metric}_low"] = e["low"]
        measured[f"estimated_{metric}_high"] = e["high"]
        _performance_check(
            result, production, metric, e["value"], a, "estimate",
            f" (95 % interval [{e['low']:.3f}, {e['high']:.3f}]) from the calibrated predicted "
            f"probabilities of {len(predictions)} rows, {count} of them labelled",
            "; an estimate holds while only the inputs shift, labels will confirm it",
        )


def _performance_check(result, production, metric, value, a, how, basis, caveat="") -> None:
    """One check of ``metric`` against the registered value; ``how`` is "measured" or "estimate"
    (the check's kind, and its name: performance or performance_estimate)."""
    name = "performance" if how == "measured" else "performance_estimate"
    said = f"{'live' if how == 'measured' else 'ESTIMATE (CBPE): expected'} {metric} {value:.4f}{basis}"
    registered = production.registered_metrics.get(metric)
    if registered is None or not math.isfinite(value):
        why = f"production has no registered {metric}" if registered is None else f"{metric} is undefined"
        result.add(name, metric, WARN, f"{said}; not judged: {why}{caveat}",
                   value=None if not math.isfinite(value) else round(value, 6), kind=how)
        return
    floor = measures.bound(metric, registered, a["max_performance_drop"])
    worse = measures.drop(metric, registered, value)
    tripped = worse > a["max_performance_drop"]
    compare = "at least" if measures.HIGHER_IS_BETTER[metric] else "at most"
    result.add(
        name, metric, FAIL if tripped else PASS,
        f"{said}, vs {registered:.4f} registered for version {production.version}: "
        + (f"worse by {worse:.3f}, more than max_performance_drop {a['max_performance_drop']:g}"
           if tripped else f"needs {compare} {floor:.4f}")
        + caveat,
        value=round(value, 6), threshold=round(floor, 6), kind=how,
    )


def _labels(production, served, a):
    """(encoded labels, row mask into ``served``) of the window's rows that have a label, or
    (None, None) when no labels were given.

    Raises:
        ValueError: the labels cannot be joined (prediction_log.join_labels) or name a class
            the model does not have.
    """
    if not a["labels_uri"]:
        return None, None
    labels = model_io.read_frame(a["labels_uri"])
    try:
        label = a["label"] or production.label
        values, mask = prediction_log.join_labels(served, labels, label, a["join_key"])
    except ValueError as exc:
        raise ValueError(f"labels_uri {a['labels_uri']}: {exc}") from exc
    return measures.encode_labels(values, production.task, production.classes), mask


# --- Action -------------------------------------------------------------------------------


def _action(result) -> tuple[str, list[str]]:
    """("retrain" | "alert" | "none", the failed checks' sentences that decided it)."""
    failed = result.failures
    model = [c for c in failed if c.name in MODEL_CHECKS]
    serving = [c for c in failed if c.name not in MODEL_CHECKS]

    def said(checks):
        return [f"{c.name}{' ' + c.subject if c.subject else ''}: {c.reason}" for c in checks]

    if model:
        return "retrain", said(model) + said(serving)
    if serving:
        return "alert", said(serving)
    return "none", []


def _metric_name(feature: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", feature).strip("_") or "feature"


def _write(path: str, text: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)
