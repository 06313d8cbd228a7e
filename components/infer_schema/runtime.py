"""A TFDV schema: the curated one when given, otherwise inferred from statistics (first run).

On top of ``tfdv.infer_schema`` (types, presence, string domains), the inferred schema gets
what a gate needs and TFDV does not infer:

- TRAINING and SERVING environments, the label absent in SERVING;
- presence: ``min_fraction`` = observed fraction minus a tolerance, so normal missing-value
  rates pass and a null explosion fails. Sparse columns (present in no more than the
  tolerance) may be entirely empty in a batch (``min_count`` 0); columns that never had a
  value have no known type and are marked ``lifecycle_stage: DISABLED`` (not validated);
- value ranges for numeric features: observed [min, max] widened by a margin of the span
  (not below 0 for features that were never negative), so genuine outliers fail;
- integer-coded categoricals: ``int_domain.is_categorical`` for the columns named, and for
  INT features the statistics already summarise as categories (compute_statistics'
  ``categorical_columns``);
- string domains that tolerate a small share of unseen values (``min_domain_mass``);
- drift and skew comparators on every feature: L-infinity for categorical, Jensen-Shannon
  divergence for numeric (on quantile histograms by default: TFDV's equal-width histograms
  make two random halves of heavy-tailed data look drifted). No skew comparator for features
  absent in SERVING (the label). Time columns (and columns named in ``unbounded_columns``) get no
  range and no comparator: they move by design. validate_data still reports their scores.
"""

from __future__ import annotations

import logging
import math
import re

from components import interface, registry, tfdv_io
from components.tfdv_io import SERVING, TRAINING

logger = logging.getLogger(__name__)

HISTOGRAMS = ("quantiles", "standard")
_TIME_NAME = re.compile(r"(time|date|timestamp)|(_ts|_at)$", re.IGNORECASE)


@interface.defaults_from(__file__)
def run(
    *,
    statistics_path: str,
    schema_path: str,
    curated_schema_path: str = "",
    label, curated_schema_uri, categorical_columns, categorical_drift_threshold, numeric_drift_threshold,
    categorical_skew_threshold, numeric_skew_threshold, presence_tolerance, range_margin,
    min_domain_mass, max_string_domain_size, unbounded_columns, numeric_drift_histogram,
    mlflow_tracking_uri,
) -> dict:
    """Writes the curated schema, or one inferred from the statistics, as a text proto.

    Parameters are documented on the component (component.py).

    Args:
        statistics_path: DatasetFeatureStatisticsList (binary, TFRecord or text) of the
            training data.
        schema_path: Where the Schema text proto goes.
        curated_schema_path: A reviewed schema artifact (text proto); when given it is used
            as is and nothing is inferred. Exclusive with ``curated_schema_uri``.

    Returns:
        Artifact metadata: source (curated|inferred), features, label, environments,
        categorical, ranges and the thresholds used.
    """
    registry.use(mlflow_tracking_uri)  # a curated_schema_uri may be a runs:/ or models:/ URI
    _check_fraction("categorical_drift_threshold", categorical_drift_threshold)
    _check_fraction("numeric_drift_threshold", numeric_drift_threshold)
    _check_fraction("categorical_skew_threshold", categorical_skew_threshold)
    _check_fraction("numeric_skew_threshold", numeric_skew_threshold)
    _check_fraction("presence_tolerance", presence_tolerance)
    _check_fraction("min_domain_mass", min_domain_mass)
    if range_margin < 0 or math.isnan(range_margin):
        raise ValueError(f"range_margin must be >= 0, got {range_margin}")
    if numeric_drift_histogram not in HISTOGRAMS:
        raise ValueError(
            f"numeric_drift_histogram must be one of {', '.join(HISTOGRAMS)}, got {numeric_drift_histogram!r}"
        )
    if max_string_domain_size < 1:
        raise ValueError(f"max_string_domain_size must be >= 1, got {max_string_domain_size}")
    curated = tfdv_io.one_source(curated_schema_path, curated_schema_uri, "curated schema", required=False)

    if curated:
        schema = tfdv_io.load_schema(curated, "curated schema")
        text = tfdv_io.schema_text(schema)
        logger.info("using the curated schema %s (%d features)", curated, len(schema.feature))
        _write(schema_path, f"# Curated schema from {curated}\n" + text)
        return {
            "source": "curated",
            "curated_schema_uri": curated,
            "features": len(schema.feature),
            "environments": list(schema.default_environment),
        }

    stats = tfdv_io.load_statistics(statistics_path)
    schema, summary = infer(
        stats,
        label=label,
        categorical_columns=categorical_columns,
        thresholds={
            "categorical_drift": categorical_drift_threshold,
            "numeric_drift": numeric_drift_threshold,
            "categorical_skew": categorical_skew_threshold,
            "numeric_skew": numeric_skew_threshold,
        },
        presence_tolerance=presence_tolerance,
        range_margin=range_margin,
        min_domain_mass=min_domain_mass,
        max_string_domain_size=max_string_domain_size,
        unbounded_columns=unbounded_columns,
        numeric_drift_histogram=numeric_drift_histogram,
    )
    header = (
        f"# Inferred by infer_schema from the statistics of {stats.datasets[0].name or 'the data'}"
        f" ({stats.datasets[0].num_examples} rows).\n"
        "# Review it (types, domains, ranges, presence, comparator thresholds) and commit it;\n"
        "# pass it back as curated_schema_uri to use it instead of inferring.\n"
    )
    if summary["disabled_no_values"]:
        header += (
            "# No value seen, so no known type (lifecycle_stage DISABLED, not validated until you"
            f" set the type and enable them): {', '.join(summary['disabled_no_values'])}\n"
        )
    _write(schema_path, header + tfdv_io.schema_text(schema))
    return {"source": "inferred", **summary}


def infer(
    stats,
    *,
    label: str,
    categorical_columns,
    thresholds: dict,
    presence_tolerance: float,
    range_margin: float,
    min_domain_mass: float,
    max_string_domain_size: int,
    unbounded_columns,
    numeric_drift_histogram: str = "quantiles",
):
    """Returns (schema, summary) inferred from ``stats`` (see the module docstring)."""
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import schema_pb2

    dataset = stats.datasets[0]
    by_name = {f.path.step[0]: f for f in dataset.features if len(f.path.step) == 1}
    names = sorted(by_name)
    for what, given in (("label", [label] if label else []), ("categorical_columns", categorical_columns),
                        ("unbounded_columns", unbounded_columns)):
        unknown = [c for c in given if c not in by_name]
        if unknown:
            raise ValueError(f"{what} {unknown!r} not in the statistics; features are {names}")

    schema = tfdv.infer_schema(
        stats, infer_feature_shape=False, max_string_domain_size=max_string_domain_size
    )
    schema.default_environment.extend([TRAINING, SERVING])
    if label:
        tfdv.get_feature(schema, label).not_in_environment.append(SERVING)

    rows = max(dataset.num_examples, 1)
    source = schema_pb2.HistogramSelection.Type.Value(numeric_drift_histogram.upper())
    categorical, ranges, unbounded, presence, sparse, empty = [], {}, [], {}, [], []
    for feature in schema.feature:
        fstats = by_name.get(feature.name)
        if fstats is None:
            continue
        common = _common(fstats)
        observed = common.num_non_missing / rows if common else 0.0
        if observed == 0:
            # No value ever seen: the type is a guess. Not validated until a person sets it.
            feature.lifecycle_stage = schema_pb2.DISABLED
            empty.append(feature.name)
            continue
        floor = math.floor(max(0.0, observed - presence_tolerance) * 1000) / 1000
        if floor > 0:
            feature.presence.min_fraction = floor
        else:
            feature.presence.min_count = 0  # normally sparse: a batch may have no value at all
            sparse.append(feature.name)
        presence[feature.name] = floor
        serving = SERVING in _environments(schema, feature)

        is_categorical = _make_categorical(feature, fstats, feature.name in categorical_columns)
        if is_categorical:
            categorical.append(feature.name)
        if feature.HasField("domain") or feature.HasField("string_domain"):
            feature.distribution_constraints.min_domain_mass = min_domain_mass

        moves = feature.name in unbounded_columns or (
            feature.type in (schema_pb2.INT, schema_pb2.FLOAT) and bool(_TIME_NAME.search(feature.name))
        )
        if moves:
            unbounded.append(feature.name)
        elif feature.type in (schema_pb2.INT, schema_pb2.FLOAT) and not is_categorical:
            bounds = _range(feature, fstats, range_margin)
            if bounds:
                ranges[feature.name] = bounds

        if moves:
            continue
        uses_linf = (is_categorical and fstats.HasField("string_stats")) or feature.type == schema_pb2.BYTES
        if uses_linf:
            feature.drift_comparator.infinity_norm.threshold = thresholds["categorical_drift"]
            if serving:
                feature.skew_comparator.infinity_norm.threshold = thresholds["categorical_skew"]
        else:
            if is_categorical:
                logger.warning(
                    "%s is categorical but its statistics are numeric: drift uses Jensen-Shannon on "
                    "its histogram; pass it in compute_statistics' categorical_columns for L-infinity",
                    feature.name,
                )
            drift = feature.drift_comparator.jensen_shannon_divergence
            drift.threshold = thresholds["numeric_drift"]
            drift.source.type = source
            if serving:
                skew = feature.skew_comparator.jensen_shannon_divergence
                skew.threshold = thresholds["numeric_skew"]
                skew.source.type = source

    summary = {
        "features": len(schema.feature),
        "label": label,
        "environments": [TRAINING, SERVING],
        "categorical": sorted(categorical),
        "unbounded": sorted(unbounded),
        "ranges": ranges,
        "presence_min_fraction": presence,
        "sparse": sorted(sparse),
        "disabled_no_values": sorted(empty),
        "numeric_drift_histogram": numeric_drift_histogram,
        "thresholds": thresholds,
        "presence_tolerance": presence_tolerance,
        "range_margin": range_margin,
        "min_domain_mass": min_domain_mass,
    }
    logger.info("inferred %d features (categorical: %s, unbounded: %s)", len(schema.feature),
                summary["categorical"], summary["unbounded"])
    return schema, summary


def _environments(schema, feature) -> set[str]:
    """TFDV's rule: in_environment when given, else the defaults minus not_in_environment."""
    if feature.in_environment:
        return set(feature.in_environment)
    return set(schema.default_environment) - set(feature.not_in_environment)


def _make_categorical(feature, fstats, named: bool) -> bool:
    """Marks integer codes categorical; True for every categorical feature (strings, codes)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    if feature.type == schema_pb2.BYTES:
        return True
    if feature.type != schema_pb2.INT:
        return False
    if feature.HasField("bool_domain"):
        return named
    if named or fstats.HasField("string_stats"):
        feature.int_domain.is_categorical = True
        return True
    return False


def _range(feature, fstats, margin: float):
    """Sets int_domain/float_domain min and max from the statistics, widened by the margin."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    if not fstats.HasField("num_stats") or feature.HasField("bool_domain"):
        return None
    num = fstats.num_stats
    if num.common_stats.num_non_missing == 0:
        return None
    low, high = num.min, num.max
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    span = high - low if high > low else max(abs(high), 1.0)
    lower, upper = low - margin * span, high + margin * span
    if low >= 0:
        lower = max(0.0, lower)  # counts, prices, scaled [0,1] features: never negative
    if feature.type == schema_pb2.INT:
        feature.int_domain.min, feature.int_domain.max = math.floor(lower), math.ceil(upper)
        return [feature.int_domain.min, feature.int_domain.max]
    feature.float_domain.min, feature.float_domain.max = lower, upper
    return [lower, upper]


def _common(fstats):
    kind = fstats.WhichOneof("stats")
    if kind in ("num_stats", "string_stats", "bytes_stats", "struct_stats"):
        return getattr(fstats, kind).common_stats
    return None


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value}")


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
