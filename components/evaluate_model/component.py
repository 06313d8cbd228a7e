"""KFP interface of evaluate_model."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output

from components import images


@dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
def evaluate_model(
    model: Input[Model],
    verdict: Output[Artifact],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[Markdown],
    predictions: Output[Dataset],
    html: Output[HTML],
    eval_data: Input[Dataset] = None,
    eval_data_uri: str = "",
    # kfp compiles literal defaults into the spec; the body never mutates them.
    thresholds: dict = {},  # noqa: B006
    change_thresholds: dict = {},  # noqa: B006
    baseline_source: str = "mlflow",
    baseline_model_uri: str = "",
    mlflow_tracking_uri: str = "",
    registered_model_name: str = "",
    baseline_alias: str = "production",
    kserve_service: str = "",
    kserve_namespace: str = "default",
    on_baseline_error: str = "fail",
    degenerate_min_std: float = 0.01,
    max_latency_p95_ms: float = 100.0,
    latency_calls: int = 100,
    robustness_noise: float = 0.05,
    robustness_min_agreement: float = 0.9,
    robustness_tolerance: float = 0.1,
    slice_columns: list = [],  # noqa: B006
    fairness_metric: str = "auto",
    fairness_max_gap: float = 0.1,
    min_slice_rows: int = 30,
    task: str = "auto",
    label: str = "",
    mlflow_experiment: str = "continuous-training",
    record_dir: str = "",
    data_verdict: Input[Artifact] = None,
) -> bool:
    """Evaluates a candidate model against thresholds and the production model: the model gate.

    Both the candidate and the baseline ("champion") are evaluated on the same data in the same
    run. Without a baseline (first run) the candidate is blessed on absolute checks only, and
    the report records that policy.

    Args:
        model: Candidate SavedModel folder in the TF-Serving layout (``<path>/1/saved_model.pb``)
            with train_model's metadata (task, label, features, classes).
        verdict: Output JSON verdict (gate model-is-blessed): every check with value,
            threshold, pass/fail and a sentence; candidate and baseline metrics side by side.
        metrics: Output KFP Metrics: every candidate metric, baseline_<metric> when a baseline
            was evaluated, prediction_std, latency_p95_ms, robustness_agreement, eval_rows.
        classification_metrics: Output KFP ClassificationMetrics (classification only): ROC
            curve (binary) and confusion matrix, as the Kubeflow UI renders them.
        report: Output Markdown report: checks, candidate vs baseline (metric, candidate,
            baseline, delta), sliced metrics.
        html: Output self-contained HTML report (inline SVG, no scripts, no network): ROC,
            precision-recall, calibration and confusion matrices (classifiers) or residuals
            (regression), candidate drawn over production; then the checks and tables.
        predictions: Output Parquet, one row per evaluation row: the label, the candidate's
            prediction and (classifiers) its score; stored with the registered version as
            the reference for monitoring.
        eval_data: Evaluation data (CSV or Parquet with the label), e.g. train_model's
            eval_data. Give this or eval_data_uri.
        eval_data_uri: Evaluation data as a local path or gs:// / s3:// URI, instead of eval_data.
        thresholds: Absolute bounds {metric: bound}, e.g. {"roc_auc": 0.7, "log_loss": 0.6}: a
            minimum for higher-is-better metrics, a maximum for lower-is-better ones. Metrics:
            binary roc_auc (alias auc), pr_auc, accuracy, precision, recall, f1, log_loss,
            brier, ece; multiclass accuracy, macro_f1, log_loss; regression rmse, mae, r2.
        change_thresholds: Largest allowed degradation vs the baseline {metric: amount}, e.g.
            {"roc_auc": 0.01}, measured in the metric's bad direction. The task's primary
            metric (binary roc_auc, multiclass accuracy, regression rmse) is always checked:
            unless named here it may drop by at most 0.01 (rmse: 1 % of production's); name
            it with a large amount to allow a worse model explicitly.
        baseline_source: Where the baseline comes from: "mlflow" (registry alias), "uri"
            (baseline_model_uri), "kserve" (the live InferenceService's storageUri) or "none".
        baseline_model_uri: Baseline model folder (local or gs://) for baseline_source="uri".
        mlflow_tracking_uri: MLflow server for the registry baseline and for logging the
            evaluation metrics; empty uses MLFLOW_TRACKING_URI, else nothing is logged.
        registered_model_name: Registered model whose alias marks production.
        baseline_alias: Alias of the production version, e.g. "production".
        kserve_service: InferenceService name for baseline_source="kserve".
        kserve_namespace: Its namespace.
        on_baseline_error: When a baseline exists but cannot be used: "fail" raises a clear
            error; "first_run" records a warning check and judges on absolute checks only.
        degenerate_min_std: Floor for the spread of predictions (for regression relative to
            the label's std); a classifier predicting one class only is degenerate too.
        max_latency_p95_ms: Limit for the p95 single-example latency of the serving
            signature, in milliseconds; 0 skips the check.
        latency_calls: Number of timed single-example calls.
        robustness_noise: Gaussian noise added to float features, as a fraction of each
            feature's standard deviation; 0 skips the robustness check.
        robustness_min_agreement: Floor for the share of predictions that stay stable under
            noise (same class; for regression within robustness_tolerance).
        robustness_tolerance: Regression only: relative change still counted as stable.
        slice_columns: Columns to compute sliced metrics for (numeric ones by quartile).
        fairness_metric: Metric compared between slices: "auto" (roc_auc for binary, accuracy
            for multiclass, mae for regression) or a metric name.
        fairness_max_gap: Largest allowed gap of fairness_metric between slices; 0 skips.
        min_slice_rows: Slices smaller than this are reported but not used for fairness.
        task: "auto" (from the model metadata, else inferred from the label), "binary",
            "multiclass" or "regression".
        label: Label column; empty takes it from the model metadata.
        mlflow_experiment: MLflow experiment of the evaluation run.
        record_dir: When set, the verdict is also recorded there as gate model-is-blessed (the
            run record folder the run summary reads), so no record_verdict task is needed.
        data_verdict: With record_dir, the data gate's verdict (check_data's ``verdict``), to
            record there under its own gate before evaluating: check-data is cached, and a
            cache hit runs nothing, so this uncached step behind the data gate records it on
            every run that passed the gate (saving a record_verdict task per run).

    Returns:
        True when the model is blessed (no check failed): the model-is-blessed gate for dsl.If.
    """
    import logging

    from components import interface
    from components.evaluate_model import runtime

    logging.basicConfig(level=logging.INFO)
    predictions.uri += ".parquet"
    result = interface.call(
        runtime.run,
        locals(),
        model_dir=model.path,
        model_metadata=dict(model.metadata),
        model_uri=model.uri,
        eval_data_path=eval_data.path if eval_data is not None else "",
        data_verdict_path=data_verdict.path if data_verdict is not None else "",
        data_verdict_uri=data_verdict.uri if data_verdict is not None else "",
        verdict_path=verdict.path,
        verdict_uri=verdict.uri,
        report_path=report.path,
        html_path=html.path,
        predictions_path=predictions.path,
    )
    for name, value in result["metrics"].items():
        metrics.log_metric(name, value)
    if result["roc_curve"]:
        roc = result["roc_curve"]
        classification_metrics.log_roc_curve(roc["fpr"], roc["tpr"], roc["thresholds"])
    if result["confusion_matrix"]:
        matrix = result["confusion_matrix"]
        classification_metrics.log_confusion_matrix(matrix["categories"], matrix["matrix"])
    verdict.metadata.update({"blessed": result["blessed"], "summary": result["summary"]})
    return result["blessed"]
