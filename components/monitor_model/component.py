"""KFP interface of monitor_model."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Markdown, Metrics, Output

from components import images


@dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
def monitor_model(
    log_uri: str,
    model_name: str,
    verdict: Output[Artifact],
    report: Output[Markdown],
    html: Output[HTML],
    metrics: Output[Metrics],
    serving_statistics: Output[Artifact],
    window_hours: float = 24.0,
    window_end: str = "",
    labels_uri: str = "",
    label: str = "",
    join_key: str = "request_id",
    registered_model_name: str = "",
    model_alias: str = "production",
    mlflow_tracking_uri: str = "",
    max_skew_linf: float = 0.1,
    max_skew_jsd: float = 0.1,
    max_prediction_psi: float = 0.2,
    max_performance_drop: float = 0.05,
    min_labelled_rows: int = 100,
    max_error_rate: float = 0.01,
    max_latency_p95_ms: float = 250.0,
    max_flagged_share: float = 0.05,
    min_rows: int = 100,
    plot_all_features: bool = False,
) -> str:
    """Judges the model in production from a window of its prediction logs: model-is-healthy.

    Measures, for the window's served rows: training/serving skew of every feature (TFDV, vs
    the training statistics stored with the production version), prediction drift (PSI vs the
    predictions the model made on its evaluation data at registration), live performance vs
    the registered evaluation metrics once labels are there (before that, for classifiers, a
    confidence-based estimate, CBPE, with a bootstrap interval, marked "estimate"), traffic,
    error rate, latency and the share of flagged rows. A window with fewer than ``min_rows``
    served rows is "too small to judge": a failed check, never healthy.

    Args:
        log_uri: The prediction logs' root (the model server's log_dir, or a copy on gs://,
            s3://, minio://): ``<log_uri>/<model_name>/<YYYY-MM-DD>/<HH>-*.jsonl``.
        model_name: The model name as logged (the served name).
        verdict: Output JSON verdict (gate model-is-healthy): every check with value,
            threshold, pass/warn/fail and a sentence; details with the action, its reasons,
            the window, the production version and every measurement.
        report: Output Markdown report: the action and why, the checks, worst skewed
            features, performance (measured or estimated), top flags.
        html: Output self-contained HTML report (inline SVG, no scripts, no network): the
            action and why, serving's distribution of every skewed feature over training's,
            the window's predictions over the evaluation-time ones, performance next to the
            registered metrics; then the checks.
        metrics: Output KFP Metrics for trending: rows, requests, error_rate,
            latency_p50_ms, latency_p95_ms, flagged_share, skew_<linf|jsd>__<feature>,
            prediction_psi, live_<metric>, estimated_<metric> (+ _low/_high), registered_<metric>,
            labelled_rows, model_is_healthy, retrain, alert.
        serving_statistics: Output TFDV statistics (binary DatasetFeatureStatisticsList) of
            the window's served inputs, typed by production's schema: validate_data's
            serving_statistics.
        window_hours: Length of the window, in hours, ending at window_end.
        window_end: End of the window (ISO 8601; without a zone it is UTC); "" is now.
        labels_uri: Optional CSV/Parquet of ground truth that arrived later: ``join_key`` and
            ``label`` columns (with join_key "request_id", a ``row`` column picks the row of a
            multi-row request).
        label: The label column in labels_uri; "" takes production's label (version tag).
        join_key: How labels meet predictions: "request_id", or a key column present in the
            logged inputs (e.g. a customer id).
        registered_model_name: The MLflow registered model; "" means model_name.
        model_alias: The alias of the version in production.
        mlflow_tracking_uri: MLflow tracking URI; "" uses MLFLOW_TRACKING_URI.
        max_skew_linf: Largest L-infinity distance (categorical features) between training
            and serving distributions.
        max_skew_jsd: Largest Jensen-Shannon divergence (numeric features, quantile
            histograms) between training and serving.
        max_prediction_psi: Largest population stability index of the predictions vs the
            evaluation-time predictions (10 quantile bins of P(class 1) or of the value;
            multiclass: the predicted classes); 0.1-0.2 is a moderate shift, above 0.2 major.
        max_performance_drop: Largest drop vs the registered metric: absolute for roc_auc and
            accuracy, relative for rmse (0.05 = 5 % higher); measured or estimated alike.
        min_labelled_rows: Labelled rows needed to measure performance; with fewer, it is
            estimated (classifiers) and the labelled count is reported.
        max_error_rate: Largest share of requests answered with a status other than 200.
        max_latency_p95_ms: Largest p95 request latency, in milliseconds.
        max_flagged_share: Largest share of served rows flagged by the request check
            (out-of-range values, unseen categories, unknown fields).
        min_rows: Served rows below which the window is too small to judge (a failed check).
        plot_all_features: Draw every feature's distribution in the HTML report, not only
            the skewed ones'.

    Returns:
        What serving says to do, the condition for dsl.If: "retrain" (skew, prediction drift or
        performance past a threshold), "alert" (unhealthy for serving reasons only: errors,
        latency, flags, too little traffic) or "none" (healthy). The verdict artifact's
        metadata carries healthy (no check failed) and the summary.
    """
    import logging

    from components import interface
    from components.monitor_model import runtime

    logging.basicConfig(level=logging.INFO)
    serving_statistics.metadata.update(
        {"format": "binary", "proto": "tensorflow_metadata.DatasetFeatureStatisticsList"}
    )
    result = interface.call(
        runtime.run,
        locals(),
        verdict_path=verdict.path,
        report_path=report.path,
        html_path=html.path,
        statistics_path=serving_statistics.path,
        log_metric=metrics.log_metric,
    )
    verdict.metadata.update({"healthy": result.healthy, "action": result.action, "summary": result.summary})
    return result.action
