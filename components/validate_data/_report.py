"""Sentences a person understands, and the per-feature statistics tables of the reports."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from components import svg

MEASUREMENT_KINDS = {
    "linf": "L_INFTY", "jsd": "JENSEN_SHANNON_DIVERGENCE", "nad": "NORMALIZED_ABSOLUTE_DIFFERENCE"
}
_TRIPPED_KINDS = {
    "linf": "COMPARATOR_L_INFTY_HIGH",
    "jsd": "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH",
    "nad": "COMPARATOR_NORMALIZED_ABSOLUTE_DIFFERENCE_HIGH",
}
_LABELS = {"linf": "L-infinity distance", "jsd": "Jensen-Shannon divergence",
           "nad": "normalized absolute difference"}
_BIG = {"INT_TYPE_BIG_INT", "FLOAT_TYPE_BIG_FLOAT"}
_SMALL = {"INT_TYPE_SMALL_INT", "FLOAT_TYPE_SMALL_FLOAT"}
_TYPE_KINDS = {
    "UNEXPECTED_DATA_TYPE", "INT_TYPE_NOT_INT_STRING", "FLOAT_TYPE_NOT_FLOAT_STRING",
    "FLOAT_TYPE_STRING_NOT_FLOAT", "INT_TYPE_STRING_NOT_INT", "BOOL_TYPE_NOT_BOOL_STRING",
}


def in_environment(schema, feature, environment: str | None) -> bool:
    """TFDV's rule: in_environment when given, else the defaults minus not_in_environment."""
    if environment is None:
        return True
    if feature.in_environment:
        return environment in feature.in_environment
    if not schema.default_environment:
        return True
    return environment in schema.default_environment and environment not in feature.not_in_environment


def disabled(feature) -> bool:
    """Features TFDV does not validate (deprecated, planned, alpha, debug-only, disabled)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    stages = (schema_pb2.DEPRECATED, schema_pb2.DISABLED, schema_pb2.PLANNED, schema_pb2.ALPHA,
              schema_pb2.DEBUG_ONLY)
    return feature.deprecated or feature.lifecycle_stage in stages


def feature_stats(stats) -> dict:
    return {".".join(f.path.step): f for f in stats.datasets[0].features if f.path.step}


@dataclass
class Context:
    """What the sentences need: the schema, the validated statistics, the environment."""

    schema: object
    stats: object
    environment: str | None

    def __post_init__(self):
        self.by_name = feature_stats(self.stats)
        self.rows = max(int(self.stats.datasets[0].num_examples), 1)

    def expected(self, feature) -> bool:
        return in_environment(self.schema, feature, self.environment)

    def type_name(self, name: str) -> str:
        from tensorflow_metadata.proto.v0 import statistics_pb2

        fstats = self.by_name.get(name)
        if fstats is None:
            return "absent"
        return statistics_pb2.FeatureNameStatistics.Type.Name(fstats.type)

    @staticmethod
    def schema_type(feature) -> str:
        from tensorflow_metadata.proto.v0 import schema_pb2

        name = schema_pb2.FeatureType.Name(feature.type)
        return "STRING" if name == "BYTES" else name

    def common(self, name: str):
        fstats = self.by_name.get(name)
        if fstats is None:
            return None
        kind = fstats.WhichOneof("stats")
        return getattr(fstats, kind).common_stats if kind else None

    def present(self, name: str) -> float | None:
        common = self.common(name)
        return None if common is None else common.num_non_missing / self.rows

    def feature(self, name: str):
        return next((f for f in self.schema.feature if f.name == name), None)

    def domain_values(self, feature) -> set[str] | None:
        if feature is None:
            return None
        if feature.HasField("string_domain"):
            return set(feature.string_domain.value)
        if feature.HasField("domain"):
            for domain in self.schema.string_domain:
                if domain.name == feature.domain:
                    return set(domain.value)
        return None

    def examples(self, name: str, limit: int = 3) -> list[str]:
        fstats = self.by_name.get(name)
        if fstats is None or not fstats.HasField("string_stats"):
            return []
        return [v.value for v in fstats.string_stats.top_values[:limit]]


def anomaly_sentence(context: Context, feature: str, kind: str, reason, *, new_columns, missing_columns):
    """(sentence, observed value, threshold) for one TFDV anomaly reason."""
    column = f"column '{feature}'"
    schema_feature = context.feature(feature)
    fstats = context.by_name.get(feature)
    if kind == "SCHEMA_MISSING_COLUMN":
        hint = f" (renamed? new column(s): {_names(new_columns)})" if new_columns else ""
        return f"{column} is missing from the data; the schema requires it{hint}", "absent", "present"
    if kind == "SCHEMA_NEW_COLUMN":
        hint = f" (renamed from {_names(missing_columns)}?)" if missing_columns else ""
        return (f"{column} is not in the schema{hint}; add it to the schema or stop sending it",
                "present", "not in schema")
    if kind in ("INT_TYPE_NOT_INT_STRING", "FLOAT_TYPE_NOT_FLOAT_STRING", "INT_TYPE_STRING_NOT_INT",
                "FLOAT_TYPE_STRING_NOT_FLOAT"):
        expected = "an integer" if kind.startswith("INT") else "a number"
        examples = context.examples(feature)
        shown = f": {', '.join(repr(e) for e in examples)}" if examples else ""
        return (f"{column} holds text that is not {expected}{shown}", context.type_name(feature),
                Context.schema_type(schema_feature) if schema_feature is not None else None)
    if kind in _TYPE_KINDS or "Expected data of type" in reason.description:
        observed = context.type_name(feature)
        expected = Context.schema_type(schema_feature) if schema_feature is not None else "?"
        examples = context.examples(feature)
        shown = f" ({', '.join(repr(e) for e in examples)})" if examples else ""
        return f"{column} arrived as {observed}, the schema expects {expected}{shown}", observed, expected
    if kind == "FEATURE_TYPE_LOW_FRACTION_PRESENT":
        present = context.present(feature) or 0.0
        floor = schema_feature.presence.min_fraction if schema_feature is not None else None
        return (f"{column} is present in {present:.1%} of rows, the schema requires at least "
                f"{floor:.1%}: {1 - present:.1%} of its values are missing (a null explosion)",
                round(present, 4), floor)
    if kind == "FEATURE_TYPE_LOW_NUMBER_PRESENT":
        common = context.common(feature)
        count = int(common.num_non_missing) if common else 0
        floor = schema_feature.presence.min_count if schema_feature is not None else None
        return f"{column} has values in only {count} rows, the schema requires {floor}", count, floor
    if kind in _BIG or kind in _SMALL:
        low, high = _domain_bounds(schema_feature)
        num = fstats.num_stats if fstats is not None and fstats.HasField("num_stats") else None
        if kind in _BIG:
            value = num.max if num else None
            return (f"{column} has values up to {_num(value)}, above the allowed maximum {_num(high)} "
                    f"(allowed range [{_num(low)}, {_num(high)}]): outliers or a unit change", value, high)
        value = num.min if num else None
        return (f"{column} has values down to {_num(value)}, below the allowed minimum {_num(low)} "
                f"(allowed range [{_num(low)}, {_num(high)}]): outliers or a unit change", value, low)
    if kind == "ENUM_TYPE_UNEXPECTED_STRING_VALUES":
        listed = reason.description.split(":", 1)[-1].strip().rstrip(".") if ":" in reason.description else ""
        share = _unseen_share(context, feature, schema_feature)
        allowed = None
        if schema_feature is not None and schema_feature.distribution_constraints.HasField("min_domain_mass"):
            allowed = round(1 - schema_feature.distribution_constraints.min_domain_mass, 6)
        detail = f" ({share:.1%} of values, at most {allowed:.1%} allowed)" if share is not None and \
            allowed is not None else ""
        return (f"{column} has values the schema does not know: {listed or 'unseen categories'}{detail}",
                None if share is None else round(share, 4), allowed)
    return f"{column}: {reason.description or reason.short_description}", None, None


def conforming_sentence(context: Context, feature) -> str:
    name = feature.name
    parts = [f"column '{name}' matches the schema: {Context.schema_type(feature)}"]
    present = context.present(name)
    if present is not None:
        floor = feature.presence.min_fraction if feature.presence.HasField("min_fraction") else 0.0
        parts.append(f"present in {present:.1%} of rows (at least {floor:.1%} required)")
    fstats = context.by_name.get(name)
    low, high = _domain_bounds(feature)
    if fstats is not None and fstats.HasField("num_stats") and (low is not None or high is not None):
        parts.append(f"values in [{_num(fstats.num_stats.min)}, {_num(fstats.num_stats.max)}] "
                     f"(allowed [{_num(low)}, {_num(high)}])")
    domain = context.domain_values(feature)
    if domain is not None:
        parts.append(f"all values in its domain of {len(domain)}")
    return ", ".join(parts)


def comparator_sentence(kind: str, feature: str, measurement: dict, tripped: bool, anomalies) -> str:
    label = _LABELS.get(measurement["metric"], measurement["metric"])
    value, threshold = measurement["value"], measurement["threshold"]
    against = "the previous run" if kind == "drift" else "serving data"
    column = f"column '{feature}'"
    if threshold is None:
        return (f"{column} vs {against}: {label} {value:.4g} "
                "(measured, not gated: no comparator in the schema)")
    if not tripped:
        return f"{column} is stable against {against}: {label} {value:.4g} <= {threshold:g}"
    verb = "drifted from the previous run" if kind == "drift" else "differs between training and serving"
    largest = ""
    info = anomalies.anomaly_info.get(feature)
    if info is not None:
        # TFDV runs the sentences of several anomalies together ("...is: north The Linfty
        # distance between training and serving is 0.60..."): the value ends where one ends.
        match = re.search(r"maximum difference is: (.+?)(?=\s+The\s|\.(?:\s|$)|$)", info.description)
        if match:
            largest = f" (largest change: '{match.group(1).strip()}')"
    return f"{column} {verb}: {label} {value:.4g} is above the threshold {threshold:g}{largest}"


def tripped_kind(metric: str) -> str:
    return _TRIPPED_KINDS.get(metric, metric)


def statistics_rows(context: Context, previous, scores: dict) -> list[dict]:
    """One row per feature (schema and data): type, presence, range or top values, scores."""
    names = [f.name for f in context.schema.feature]
    names += sorted(n for n in context.by_name if n not in names)
    before = feature_stats(previous) if previous is not None else {}
    prev_rows = max(int(previous.datasets[0].num_examples), 1) if previous is not None else 1
    rows = []
    for name in names:
        fstats = context.by_name.get(name)
        row = {"feature": name, "type": context.type_name(name), "present": "", "min": "", "mean": "",
               "max": "", "distinct": "", "top values": "", "previous": "", "drift": "", "skew": ""}
        if fstats is not None:
            present = context.present(name)
            row["present"] = "" if present is None else f"{present:.1%}"
            if fstats.HasField("num_stats"):
                num = fstats.num_stats
                row.update({"min": _num(num.min), "mean": _num(num.mean), "max": _num(num.max)})
            elif fstats.HasField("string_stats"):
                strings = fstats.string_stats
                row["distinct"] = str(strings.unique)
                row["top values"] = ", ".join(
                    f"{v.value} ({v.frequency / context.rows:.0%})" for v in strings.top_values[:3]
                )
        old = before.get(name)
        if old is not None:
            if old.HasField("num_stats"):
                row["previous"] = f"mean {_num(old.num_stats.mean)}"
            elif old.HasField("string_stats") and old.string_stats.top_values:
                top = old.string_stats.top_values[0]
                row["previous"] = f"top {top.value} ({top.frequency / prev_rows:.0%})"
        for kind in ("drift", "skew"):
            values = scores.get(kind, {}).get(name, [])
            row[kind] = ", ".join(f"{m['metric']} {m['value']:.3g}" for m in values)
        rows.append(row)
    return rows


def markdown(result, context: Context, previous) -> str:
    rows = statistics_rows(context, previous, result.details.get("scores", {}))
    columns = _columns(rows, previous)
    lines = [result.to_markdown(title="Data validation"), "## Per-feature statistics", "",
             f"{context.stats.datasets[0].num_examples} rows.", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(str(row[c]).replace("|", "\\|") for c in columns) + " |")
    return "\n".join(lines) + "\n"


def html_page(result, context: Context, previous, serving=None, all_features: bool = False) -> str:
    """Verdict.to_html with the distributions of every failing feature (every feature with
    ``all_features``), this data over the previous run's and serving's, and the statistics
    table; no scripts, no external resources."""
    rows = statistics_rows(context, previous, result.details.get("scores", {}))
    columns = _columns(rows, previous)
    flagged = {c.subject for c in result.failures}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "\n".join(
        f'<tr class="{"fail" if row["feature"] in flagged else "pass"}">'
        + "".join(f"<td>{html.escape(str(row[c]))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    section = (f"<h2>Per-feature statistics</h2><p>{context.stats.datasets[0].num_examples} rows.</p>"
               f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>\n")
    return result.to_html(title="Data validation", figures=_figures(result, context, previous, serving,
                                                                    all_features), appendix=section)


def _figures(result, context: Context, previous, serving, all_features: bool) -> str:
    """The distribution charts, failing features first, each captioned with why it failed."""
    reasons: dict[str, list[str]] = {}
    for check in result.failures:
        if check.subject:
            reasons.setdefault(check.subject, []).append(check.reason)
    names = list(reasons)
    if all_features:
        names += [r["feature"] for r in statistics_rows(context, None, {}) if r["feature"] not in reasons]
    if not names:
        return ""
    datasets = [(label, stats) for label, stats in (("this data", context.stats), ("previous run", previous),
                                                    ("serving", serving)) if stats is not None]
    charts = []
    for name in names:
        charts += svg.feature_distribution(name, datasets, caption="; ".join(reasons.get(name, [])))
    against = " over ".join(label for label, _ in datasets)
    which = "every feature" if all_features else "failing features"
    return (f"<h2>Distributions: {which}</h2><p>{html.escape(against)}.</p>"
            f'<div class="charts">{"".join(charts)}</div>')


def _columns(rows, previous) -> list[str]:
    columns = ["feature", "type", "present", "min", "mean", "max", "distinct", "top values"]
    if previous is not None:
        columns.append("previous")
    columns += [k for k in ("drift", "skew") if any(r[k] for r in rows)]
    return columns


def _domain_bounds(feature):
    if feature is None:
        return None, None
    if feature.HasField("int_domain"):
        d = feature.int_domain
        return (d.min if d.HasField("min") else None), (d.max if d.HasField("max") else None)
    if feature.HasField("float_domain"):
        d = feature.float_domain
        return (d.min if d.HasField("min") else None), (d.max if d.HasField("max") else None)
    return None, None


def _unseen_share(context: Context, name: str, feature) -> float | None:
    domain = context.domain_values(feature)
    fstats = context.by_name.get(name)
    if domain is None or fstats is None or not fstats.HasField("string_stats"):
        return None
    buckets = fstats.string_stats.rank_histogram.buckets
    total = fstats.string_stats.common_stats.num_non_missing
    if not buckets or not total:
        return None
    return sum(b.sample_count for b in buckets if b.label not in domain) / total


def _num(value) -> str:
    if value is None:
        return "?"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def _names(names) -> str:
    return ", ".join(f"'{n}'" for n in names)
