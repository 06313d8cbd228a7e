"""KFP interface of validate_data."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Input, Markdown, Metrics, Output

from components import images


@dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
def validate_data(
    statistics: Input[Artifact],
    schema: Input[Artifact],
    anomalies: Output[Artifact],
    verdict: Output[Artifact],
    drift_metrics: Output[Metrics],
    report: Output[Markdown],
    html: Output[HTML],
    previous_statistics: Input[Artifact] = None,
    previous_statistics_uri: str = "",
    serving_statistics: Input[Artifact] = None,
    serving_statistics_uri: str = "",
    first_run_policy: str = "warn",
    fail_on_anomalies: bool = False,
    environment: str = "TRAINING",
    mlflow_tracking_uri: str = "",
    plot_all_features: bool = False,
) -> bool:
    """Validates statistics against the schema, the previous run (drift) and serving (skew).

    The data gate: every schema feature, anomaly, drift and skew measurement becomes a check
    with the observed value, the threshold, pass/fail and a sentence. Drift and skew scores are
    measured for every feature on every run (not only when a threshold trips).

    Args:
        statistics: TFDV statistics of the data to validate (compute_statistics' output).
        schema: Schema text proto (infer_schema's output).
        anomalies: Output TFDV Anomalies as a text proto (metadata format="text"), including
            drift_skew_info with the measurement of every feature.
        verdict: Output JSON verdict (gate data-is-valid): checks with feature, kind (TFDV
            anomaly or measurement type), observed value, threshold, status and a sentence;
            notes (first-run policy); details with drift/skew scores and metrics.
        drift_metrics: Output KFP Metrics for trending across runs: drift_<jsd|linf>__<feature>,
            skew_<jsd|linf>__<feature>, data_is_valid, failed_checks, rows, first_run.
        report: Output Markdown report: the checks and a per-feature statistics table.
        html: Output self-contained HTML report (no scripts, no network): the distribution
            of every failing feature drawn over the previous run's and serving's (inline SVG),
            the checks and a per-feature statistics table, failing features highlighted.
        previous_statistics: Statistics of the previous run, for drift.
        previous_statistics_uri: The previous statistics as a local path or gs:// / s3:// URI.
        serving_statistics: Statistics of serving data, for training/serving skew (also
            validated against the schema's SERVING environment).
        serving_statistics_uri: The serving statistics as a local path or gs:// / s3:// URI.
        first_run_policy: Without previous statistics: "pass", "warn" (a warning check) or
            "fail" (the gate fails); recorded in the report.
        fail_on_anomalies: When the gate fails, fail the task (after writing every output)
            instead of returning False.
        environment: Schema environment of this data: "TRAINING" or "SERVING".
        mlflow_tracking_uri: MLflow server for reading baseline URIs stored in MLflow (runs:/,
            models:/, as resolve_baseline returns them); empty uses MLFLOW_TRACKING_URI.
        plot_all_features: Draw every feature's distribution in the HTML report, not only
            the failing ones'.

    Returns:
        True when the data is valid (no check failed): the data-is-valid gate for dsl.If.
    """
    import logging

    from components import interface
    from components.validate_data import runtime

    logging.basicConfig(level=logging.INFO)
    anomalies.metadata.update({"format": runtime.ANOMALIES_FORMAT, "proto": "tensorflow_metadata.Anomalies"})
    result = interface.call(
        runtime.run,
        locals(),
        statistics_path=statistics.path,
        schema_path=schema.path,
        anomalies_path=anomalies.path,
        verdict_path=verdict.path,
        report_path=report.path,
        html_path=html.path,
        previous_statistics_path=previous_statistics.path if previous_statistics is not None else "",
        serving_statistics_path=serving_statistics.path if serving_statistics is not None else "",
        log_metric=drift_metrics.log_metric,
    )
    verdict.metadata.update({"passed": result.passed, "summary": result.summary()})
    return result.passed
