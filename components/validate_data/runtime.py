"""The data gate: statistics vs the schema, the previous run (drift) and serving (skew).

TFDV finds the anomalies (``tfdv.validate_statistics``); this module turns them into a
``Verdict`` (gate data-is-valid) with one check per schema feature, per anomaly, per drift and
per skew measurement, each with the observed value, the threshold and a sentence. Drift and
skew are measured for every feature on every run: features whose schema has no comparator get
an ungated one for the measurement (it can never trip), so the scores can be trended.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable

from components import interface, registry, tfdv_io, verdict
from components.tfdv_io import SERVING
from components.validate_data import _report

logger = logging.getLogger(__name__)

GATE = "data-is-valid"
FIRST_RUN_POLICIES = ("pass", "warn", "fail")
ANOMALIES_FORMAT = "text"  # tensorflow_metadata Anomalies as a text proto
_UNGATED = math.inf
_COMPARATOR_REASONS = {
    "COMPARATOR_L_INFTY_HIGH",
    "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH",
    "COMPARATOR_NORMALIZED_ABSOLUTE_DIFFERENCE_HIGH",
}


class DataValidationError(Exception):
    """The data gate failed and fail_on_anomalies was set (all outputs were written first)."""

    def __init__(self, result: verdict.Verdict):
        super().__init__(result.summary())
        self.verdict = result


@interface.defaults_from(__file__)
def run(
    *,
    statistics_path: str,
    schema_path: str,
    anomalies_path: str,
    verdict_path: str,
    report_path: str,
    html_path: str,
    previous_statistics_path: str = "",
    serving_statistics_path: str = "",
    log_metric: Callable[[str, float], None] | None = None,
    previous_statistics_uri, serving_statistics_uri, first_run_policy, fail_on_anomalies, environment,
    mlflow_tracking_uri, plot_all_features,
) -> verdict.Verdict:
    """Validates statistics and writes anomalies, JSON/Markdown/HTML reports and metrics.

    Parameters are documented on the component (component.py); ``fail_on_anomalies`` raises
    DataValidationError after every output is written.

    Args:
        statistics_path: Statistics of the data to validate.
        schema_path: Schema (text proto) to validate against.
        anomalies_path: Where the TFDV Anomalies text proto goes.
        verdict_path: Where the JSON verdict goes (checks, notes, drift/skew scores).
        report_path: Where the Markdown report goes.
        html_path: Where the self-contained HTML report goes.
        previous_statistics_path: Statistics of the previous run (drift), as an artifact path
            (exclusive with ``previous_statistics_uri``).
        serving_statistics_path: Statistics of serving data (skew), as an artifact path
            (exclusive with ``serving_statistics_uri``).
        log_metric: Called with (name, value) for every metric (KFP ``Metrics.log_metric``).

    Returns:
        The verdict; ``verdict.passed`` is the data-is-valid gate.
    """
    registry.use(mlflow_tracking_uri)  # the statistics URIs may be runs:/ or models:/ URIs
    if first_run_policy not in FIRST_RUN_POLICIES:
        raise ValueError(
            f"first_run_policy must be one of {', '.join(FIRST_RUN_POLICIES)}, got {first_run_policy!r}"
        )
    previous_source = tfdv_io.one_source(
        previous_statistics_path, previous_statistics_uri, "previous statistics", required=False
    )
    serving_source = tfdv_io.one_source(
        serving_statistics_path, serving_statistics_uri, "serving statistics", required=False
    )
    stats = tfdv_io.load_statistics(statistics_path)
    schema = tfdv_io.load_schema(schema_path)
    previous = tfdv_io.load_statistics(previous_source, "previous statistics") if previous_source else None
    serving = tfdv_io.load_statistics(serving_source, "serving statistics") if serving_source else None
    env = _environment(schema, environment)
    serving_env = _environment(schema, SERVING) if serving is not None else None

    notes: list[str] = []
    measuring = _measurement_schema(schema, stats, previous is not None, serving is not None, notes)
    anomalies = _validate(stats, measuring, env, previous, serving)
    serving_anomalies = _validate(serving, schema, serving_env) if serving is not None else None

    result = verdict.Verdict(gate=GATE, notes=notes)
    context = _report.Context(schema=schema, stats=stats, environment=env)
    scores = _measurements(anomalies)
    comparator_failures = _add_comparator_checks(result, context, scores, anomalies)
    _add_schema_checks(result, context, anomalies, comparator_failures, "schema")
    if serving_anomalies is not None:
        serving_context = _report.Context(schema=schema, stats=serving, environment=serving_env)
        _add_anomaly_checks(result, serving_context, serving_anomalies, set(), "serving_schema")
    _add_first_run(result, previous_source, first_run_policy)
    if serving is None:
        result.notes.append("No serving statistics given: training/serving skew was not measured.")
    else:
        result.notes.append(f"Skew measured against serving statistics {serving_source}.")

    metrics = _metrics(result, scores, stats, previous is None)
    result.details.update(
        {
            "rows": int(stats.datasets[0].num_examples),
            "environment": env or "",
            "previous_statistics": previous_source,
            "serving_statistics": serving_source,
            "first_run_policy": first_run_policy,
            "anomalies": sorted(anomalies.anomaly_info),
            "anomalies_format": ANOMALIES_FORMAT,
            "scores": scores,
            "metrics": metrics,
        }
    )
    html_page = _report.html_page(result, context, previous, serving, plot_all_features)
    _write_outputs(result, anomalies, context, previous, anomalies_path, verdict_path, report_path,
                   html_path, html_page)
    for name, value in metrics.items():
        if log_metric is not None:
            log_metric(name, value)
    logger.info("%s", result.summary())
    if fail_on_anomalies and not result.passed:
        raise DataValidationError(result)
    return result


def _environment(schema, wanted: str) -> str | None:
    """The environment to validate in; None when the schema declares none."""
    declared = set(schema.default_environment)
    for feature in schema.feature:
        declared.update(feature.in_environment, feature.not_in_environment)
    if not declared:
        return None
    if wanted not in declared:
        raise ValueError(f"environment {wanted!r} is not in the schema; it declares {sorted(declared)}")
    return wanted


def _measurement_schema(schema, stats, with_drift: bool, with_skew: bool, notes: list[str]):
    """A copy of the schema with a drift and a skew comparator on every feature.

    Features without one get an ungated comparator (threshold infinity), so TFDV measures them
    and reports nothing else. A categorical INT whose statistics are numeric cannot be measured
    with L-infinity (TFDV would report 0): it is measured with Jensen-Shannon instead.
    """
    from tensorflow_metadata.proto.v0 import schema_pb2

    measuring = schema_pb2.Schema()
    measuring.CopyFrom(schema)
    by_name = _report.feature_stats(stats)
    quantiles = schema_pb2.HistogramSelection.QUANTILES
    disabled = [f.name for f in measuring.feature if _report.disabled(f)]
    if disabled:
        notes.append("Not validated (lifecycle_stage in the schema, e.g. no value was ever seen): "
                     + ", ".join(disabled) + ".")
    for feature in measuring.feature:
        if _report.disabled(feature):
            continue
        if not _report.in_environment(measuring, feature, SERVING):
            feature.ClearField("skew_comparator")  # e.g. the label: serving data has none
        fstats = by_name.get(feature.name)
        categorical = feature.type == schema_pb2.BYTES or (
            feature.int_domain.is_categorical and fstats is not None and fstats.HasField("string_stats")
        )
        for wanted, comparator in ((with_drift, feature.drift_comparator),
                                   (with_skew and _report.in_environment(measuring, feature, SERVING),
                                    feature.skew_comparator)):
            if not wanted:
                continue
            linf = comparator.HasField("infinity_norm")
            jsd = comparator.HasField("jensen_shannon_divergence")
            if linf and not categorical and fstats is not None and fstats.HasField("num_stats"):
                threshold = comparator.infinity_norm.threshold
                comparator.ClearField("infinity_norm")
                comparator.jensen_shannon_divergence.threshold = threshold
                note = (f"'{feature.name}' is categorical in the schema but its statistics are "
                        "numeric: measured with Jensen-Shannon divergence on its histogram (pass "
                        "it in compute_statistics' categorical_columns for L-infinity).")
                if note not in notes:
                    notes.append(note)
            elif not (linf or jsd or comparator.HasField("normalized_abs_difference")):
                if categorical:
                    comparator.infinity_norm.threshold = _UNGATED
                else:
                    comparator.jensen_shannon_divergence.threshold = _UNGATED
                    comparator.jensen_shannon_divergence.source.type = quantiles
    return measuring


def _validate(stats, schema, environment, previous=None, serving=None):
    import tensorflow_data_validation as tfdv

    return tfdv.validate_statistics(
        stats, schema, environment=environment, previous_statistics=previous, serving_statistics=serving
    )


def _measurements(anomalies) -> dict:
    """{"drift"|"skew": {feature: {"metric": "jsd"|"linf"|..., "value", "threshold"}}}."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    names = {
        anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: "linf",
        anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE: "jsd",
        anomalies_pb2.DriftSkewInfo.Measurement.NORMALIZED_ABSOLUTE_DIFFERENCE: "nad",
    }
    scores: dict = {"drift": {}, "skew": {}}
    for info in anomalies.drift_skew_info:
        feature = ".".join(info.path.step)
        for kind, measurements in (("drift", info.drift_measurements), ("skew", info.skew_measurements)):
            for m in measurements:
                scores[kind].setdefault(feature, []).append(
                    {
                        "metric": names.get(m.type, str(m.type)),
                        "value": float(m.value),
                        "threshold": None if math.isinf(m.threshold) else float(m.threshold),
                    }
                )
    return scores


def _add_comparator_checks(result, context, scores, anomalies) -> set[str]:
    """One drift/skew check per feature and measurement; returns the features that failed."""
    failed = set()
    for kind in ("drift", "skew"):
        for feature, measurements in sorted(scores[kind].items()):
            for m in measurements:
                tripped = m["threshold"] is not None and m["value"] > m["threshold"]
                result.add(
                    kind,
                    feature,
                    verdict.FAIL if tripped else verdict.PASS,
                    _report.comparator_sentence(kind, feature, m, tripped, anomalies),
                    value=round(m["value"], 6),
                    threshold=m["threshold"],
                    kind=(_report.tripped_kind(m["metric"]) if tripped
                          else _report.MEASUREMENT_KINDS.get(m["metric"], m["metric"])),
                )
                if tripped:
                    failed.add(feature)
    return failed


def _add_schema_checks(result, context, anomalies, comparator_failures, name):
    """A check per anomaly reason, and a passing check per schema feature without anomaly."""
    flagged = _add_anomaly_checks(result, context, anomalies, comparator_failures, name)
    for feature in context.schema.feature:
        if feature.name in flagged or not context.expected(feature) or _report.disabled(feature):
            continue
        result.add(
            name,
            feature.name,
            verdict.PASS,
            _report.conforming_sentence(context, feature),
            value=context.type_name(feature.name),
            threshold=context.schema_type(feature),
            kind="conforms",
        )


def _add_anomaly_checks(result, context, anomalies, comparator_failures, name) -> set[str]:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    flagged = set()
    def having(kind):
        return sorted(k for k, v in anomalies.anomaly_info.items() if any(r.type == kind for r in v.reason))

    new_columns = having(anomalies_pb2.AnomalyInfo.SCHEMA_NEW_COLUMN)
    missing_columns = having(anomalies_pb2.AnomalyInfo.SCHEMA_MISSING_COLUMN)
    for feature, info in sorted(anomalies.anomaly_info.items()):
        status = verdict.WARN if info.severity == anomalies_pb2.AnomalyInfo.WARNING else verdict.FAIL
        for reason in info.reason:
            kind = anomalies_pb2.AnomalyInfo.Type.Name(reason.type)
            if kind in _COMPARATOR_REASONS and feature in comparator_failures:
                continue  # reported as a drift/skew check with its measurement
            sentence, value, threshold = _report.anomaly_sentence(
                context, feature, kind, reason, new_columns=new_columns, missing_columns=missing_columns
            )
            if name == "serving_schema":
                sentence = "serving data: " + sentence
            result.add(name, feature, status, sentence, value=value, threshold=threshold, kind=kind)
            flagged.add(feature)
    for reason in anomalies.dataset_anomaly_info.reason:
        kind = anomalies_pb2.AnomalyInfo.Type.Name(reason.type)
        result.add(name, "", verdict.FAIL, f"dataset: {reason.description or reason.short_description}",
                   kind=kind)
    if anomalies.HasField("data_missing") and anomalies.data_missing:
        result.add(name, "", verdict.FAIL, "the statistics hold no data", kind="DATA_MISSING")
    return flagged


def _add_first_run(result, previous_source: str, policy: str) -> None:
    if previous_source:
        result.notes.append(f"Drift measured against previous statistics {previous_source}.")
        return
    sentence = (
        f"no previous statistics: this is treated as a first run and drift was not measured; "
        f"first-run policy '{policy}'"
    )
    status = {"pass": verdict.PASS, "warn": verdict.WARN, "fail": verdict.FAIL}[policy]
    result.add("first_run", "", status, sentence, value="no previous statistics", threshold=policy,
               kind="first_run_policy")
    result.notes.append(f"First run: {sentence}.")


def _metrics(result, scores, stats, first_run: bool) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for kind in ("drift", "skew"):
        for feature, measurements in sorted(scores[kind].items()):
            for m in measurements:
                metrics[f"{kind}_{m['metric']}__{_metric_name(feature)}"] = round(m["value"], 6)
    metrics["data_is_valid"] = 1.0 if result.passed else 0.0
    metrics["failed_checks"] = float(len(result.failures))
    metrics["rows"] = float(stats.datasets[0].num_examples)
    metrics["first_run"] = 1.0 if first_run else 0.0
    return metrics


def _metric_name(feature: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", feature).strip("_") or "feature"


def _write_outputs(result, anomalies, context, previous, anomalies_path, verdict_path, report_path,
                   html_path, html_page: str) -> None:
    from google.protobuf import text_format

    with open(anomalies_path, "w", encoding="utf-8") as handle:
        handle.write(text_format.MessageToString(anomalies))
    with open(verdict_path, "w", encoding="utf-8") as handle:
        handle.write(result.to_json())
    with open(report_path, "w", encoding="utf-8") as handle:
        handle.write(_report.markdown(result, context, previous))
    with open(html_path, "w", encoding="utf-8") as handle:
        handle.write(html_page)
