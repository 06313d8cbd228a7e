"""KFP interface of check_data."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Output

from components import images


@dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
def check_data(
    statistics: Output[Artifact],
    schema: Output[Artifact],
    anomalies: Output[Artifact],
    verdict: Output[Artifact],
    drift_metrics: Output[Metrics],
    report: Output[Markdown],
    html: Output[HTML],
    label: str,
    data: Input[Dataset] = None,
    data_uri: str = "",
    data_fingerprint: str = "",
    engine: str = "auto",
    in_memory_max_mb: int = 256,
    # kfp compiles literal defaults into the spec; the body never mutates them.
    beam_pipeline_options: list = [],  # noqa: B006
    categorical_columns: list = [],  # noqa: B006
    curated_schema: Input[Artifact] = None,
    curated_schema_uri: str = "",
    categorical_drift_threshold: float = 0.1,
    numeric_drift_threshold: float = 0.1,
    categorical_skew_threshold: float = 0.1,
    numeric_skew_threshold: float = 0.1,
    presence_tolerance: float = 0.1,
    range_margin: float = 1.0,
    min_domain_mass: float = 0.99,
    max_string_domain_size: int = 100,
    unbounded_columns: list = [],  # noqa: B006
    numeric_drift_histogram: str = "quantiles",
    previous_statistics: Input[Artifact] = None,
    previous_statistics_uri: str = "",
    serving_statistics: Input[Artifact] = None,
    serving_statistics_uri: str = "",
    first_run_policy: str = "warn",
    fail_on_anomalies: bool = False,
    environment: str = "TRAINING",
    mlflow_tracking_uri: str = "",
) -> bool:
    """Checks a dataset in one task: statistics, schema and validation (the data gate).

    compute_statistics, infer_schema and validate_data run in one process (TFDV is imported
    once) and each output means what it means there; compose those three instead when the
    steps should be separate tasks (e.g. statistics on Dataflow reused by several pipelines).

    Args:
        statistics: Output TFDV statistics, binary proto, as compute_statistics writes them.
        schema: Output schema text proto (curated or inferred), as infer_schema writes it.
        anomalies: Output TFDV Anomalies text proto, as validate_data writes it.
        verdict: Output JSON verdict (gate data-is-valid), as validate_data writes it.
        drift_metrics: Output KFP Metrics: drift and skew scores per feature, data_is_valid,
            failed_checks, rows, first_run.
        report: Output Markdown report: the checks and a per-feature statistics table.
        html: Output self-contained HTML report (no scripts, no network).
        label: Label column, required in TRAINING and absent in SERVING; "" for no label.
        data: Dataset artifact (CSV or Parquet). Give this or data_uri.
        data_uri: The dataset as a local path or gs:// / s3:// / minio:// URI, instead of data.
        data_fingerprint: fingerprint_data's fingerprint of data_uri: part of this step's cache
            key, so a changed file at the same URI is not a cache hit.
        engine: Statistics engine: "auto" (by size), "in_memory" or "beam".
        in_memory_max_mb: With engine="auto", files up to this many MiB run in memory.
        beam_pipeline_options: Beam flags for engine="beam" (Dataflow, Flink, Spark runners).
        categorical_columns: Integer columns that are category codes, not quantities.
        curated_schema: A reviewed schema (text proto) to use as is instead of inferring.
        curated_schema_uri: The curated schema as a URI (e.g. production's, from
            resolve_baseline), instead of curated_schema.
        categorical_drift_threshold: Largest L-infinity drift of a categorical feature (0..1).
        numeric_drift_threshold: Largest Jensen-Shannon drift of a numeric feature (0..1).
        categorical_skew_threshold: Largest L-infinity training/serving skew (0..1).
        numeric_skew_threshold: Largest Jensen-Shannon training/serving skew (0..1).
        presence_tolerance: How far a feature's non-missing fraction may fall below the observed.
        range_margin: Inferred numeric ranges widen the observed span by this share per side.
        min_domain_mass: Share of a string feature's values that must be in its domain.
        max_string_domain_size: String features with more distinct values get no domain.
        unbounded_columns: Numeric columns without range or drift/skew comparator (ids, counters).
        numeric_drift_histogram: Histograms the Jensen-Shannon comparators compare: "quantiles"
            or "standard".
        previous_statistics: Statistics of the previous run, for drift.
        previous_statistics_uri: The previous statistics as a URI (e.g. production's).
        serving_statistics: Statistics of serving data, for training/serving skew.
        serving_statistics_uri: The serving statistics as a URI.
        first_run_policy: Without previous statistics: "pass", "warn" or "fail".
        fail_on_anomalies: When the gate fails, fail the task (after writing every output).
        environment: Schema environment of this data: "TRAINING" or "SERVING".
        mlflow_tracking_uri: MLflow server for baseline URIs stored in MLflow (runs:/,
            models:/); empty uses MLFLOW_TRACKING_URI.

    Returns:
        True when the data is valid (no check failed): the data-is-valid gate for dsl.If.
    """
    import logging

    from components import interface
    from components.check_data import runtime

    logging.basicConfig(level=logging.INFO)
    result = interface.call(
        runtime.run,
        locals(),
        data_path=data.path if data is not None else "",
        statistics_path=statistics.path,
        schema_path=schema.path,
        curated_schema_path=curated_schema.path if curated_schema is not None else "",
        anomalies_path=anomalies.path,
        verdict_path=verdict.path,
        report_path=report.path,
        html_path=html.path,
        previous_statistics_path=previous_statistics.path if previous_statistics is not None else "",
        serving_statistics_path=serving_statistics.path if serving_statistics is not None else "",
        log_metric=drift_metrics.log_metric,
    )
    for artifact, metadata in zip((statistics, schema, anomalies, verdict), result.metadata, strict=True):
        artifact.metadata.update(metadata)
    return result.passed
