"""check_data: the data gate in one process: compute_statistics, infer_schema, validate_data.

Each of the three steps is its own component's runtime, called here in process with the
parameters it declares (``interface.call`` picks them from this run's arguments), so every
output and verdict means exactly what the separate components produce; the pipeline just
pays for one task, one TFDV import and one read of the statistics instead of three.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components import interface, verdict
from components.compute_statistics import runtime as compute_statistics
from components.infer_schema import runtime as infer_schema
from components.validate_data import runtime as validate_data


@dataclass
class CheckResult:
    """The gate and the metadata of each artifact (statistics, schema, anomalies, verdict)."""

    verdict: verdict.Verdict
    metadata: tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]

    @property
    def passed(self) -> bool:
        return self.verdict.passed


@interface.defaults_from(__file__)
def run(
    *,
    statistics_path: str,
    schema_path: str,
    anomalies_path: str,
    verdict_path: str,
    report_path: str,
    html_path: str,
    data_path: str = "",
    curated_schema_path: str = "",
    previous_statistics_path: str = "",
    serving_statistics_path: str = "",
    log_metric=None,
    label, data_uri, data_fingerprint, engine, in_memory_max_mb, beam_pipeline_options,
    categorical_columns, curated_schema_uri, categorical_drift_threshold, numeric_drift_threshold,
    categorical_skew_threshold, numeric_skew_threshold, presence_tolerance, range_margin,
    min_domain_mass, max_string_domain_size, unbounded_columns, numeric_drift_histogram,
    previous_statistics_uri, serving_statistics_uri, first_run_policy, fail_on_anomalies,
    environment, mlflow_tracking_uri,
) -> CheckResult:
    """Computes statistics, takes the curated schema or infers one, validates; writes every
    output of the three components. Parameters are documented on the component
    (component.py); the paths are those of compute_statistics, infer_schema and
    validate_data, and ``log_metric`` receives every drift metric.

    The paths and ``log_metric`` go to the runtime that declares them; every other argument
    goes to each of the three that declares it (categorical_columns and mlflow_tracking_uri
    to more than one).

    Raises:
        What the three runtimes raise (a bad argument, unreadable data, a missing baseline),
        and validate_data.DataValidationError when the gate fails with fail_on_anomalies
        (after every output is written).
    """
    arguments = dict(locals())
    statistics_metadata = interface.call(
        compute_statistics.run, arguments, output_path=statistics_path, data_path=data_path
    )
    schema_metadata = interface.call(
        infer_schema.run, arguments, statistics_path=statistics_path, schema_path=schema_path,
        curated_schema_path=curated_schema_path,
    )
    result = interface.call(
        validate_data.run, arguments, statistics_path=statistics_path, schema_path=schema_path,
        anomalies_path=anomalies_path, verdict_path=verdict_path, report_path=report_path,
        html_path=html_path, previous_statistics_path=previous_statistics_path,
        serving_statistics_path=serving_statistics_path, log_metric=log_metric,
    )
    anomalies_metadata = {"format": validate_data.ANOMALIES_FORMAT, "proto": "tensorflow_metadata.Anomalies"}
    verdict_metadata = {"passed": result.passed, "summary": result.summary()}
    return CheckResult(result, (statistics_metadata, schema_metadata, anomalies_metadata, verdict_metadata))
