"""KFP interface of infer_schema."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Output

from components import images


@dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
def infer_schema(
    statistics: Input[Artifact],
    schema: Output[Artifact],
    label: str,
    curated_schema: Input[Artifact] = None,
    curated_schema_uri: str = "",
    # kfp compiles literal defaults into the spec; the body never mutates them.
    categorical_columns: list = [],  # noqa: B006
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
    mlflow_tracking_uri: str = "",
):
    """Uses the curated TFDV schema, or infers one from the statistics for review and commit.

    The inferred schema has TRAINING and SERVING environments (the label absent in SERVING),
    string domains, integer-coded categoricals, presence constraints with a tolerance (sparse
    columns may be empty in a batch; columns that never had a value are DISABLED), value
    ranges with a margin, and drift/skew comparators on every feature (L-infinity for
    categorical, Jensen-Shannon divergence for numeric; no skew comparator for the label).

    Args:
        statistics: TFDV statistics of the training data (compute_statistics' output).
        schema: Output Schema as a text proto, reviewable and committable; metadata holds the
            source (curated or inferred), categorical and unbounded features, ranges, presence
            floors and thresholds.
        label: Label column, required in TRAINING and absent in SERVING; "" for no label.
        curated_schema: A reviewed schema (text proto) to use as is instead of inferring.
        curated_schema_uri: The curated schema as a local path or gs:// / s3:// URI.
        categorical_columns: Integer columns that are codes, not quantities (also pass them to
            compute_statistics so drift on them is measured with L-infinity).
        categorical_drift_threshold: Largest L-infinity distance between this run's and the
            previous run's value frequencies of a categorical feature (0..1).
        numeric_drift_threshold: Largest Jensen-Shannon divergence between this run's and the
            previous run's distribution of a numeric feature (0..1).
        categorical_skew_threshold: Largest L-infinity distance between training and serving.
        numeric_skew_threshold: Largest Jensen-Shannon divergence between training and serving.
        presence_tolerance: How far a feature's fraction of non-missing values may fall below
            the observed one (0.1: 98% present must stay at least 88% present).
        range_margin: Numeric ranges are the observed [min, max] widened by this share of the
            span on each side (never below 0 for features that were never negative).
        min_domain_mass: Share of a string feature's values that must be in its domain (1.0
            fails on any unseen value).
        max_string_domain_size: String features with more distinct values get no domain.
        unbounded_columns: Numeric columns without range or drift/skew comparator (ids,
            counters); time-like names (time, date, timestamp, *_ts, *_at) are included.
        numeric_drift_histogram: Histograms the Jensen-Shannon comparators compare: "quantiles"
            (robust to outliers and heavy tails) or "standard" (TFDV's equal-width default).
        mlflow_tracking_uri: MLflow server for reading baseline URIs stored in MLflow (runs:/,
            models:/, as resolve_baseline returns them); empty uses MLFLOW_TRACKING_URI.
    """
    import logging

    from components import interface
    from components.infer_schema import runtime

    logging.basicConfig(level=logging.INFO)
    schema.metadata.update(
        interface.call(
            runtime.run,
            locals(),
            statistics_path=statistics.path,
            schema_path=schema.path,
            curated_schema_path=curated_schema.path if curated_schema is not None else "",
        )
    )
