"""The data gate with real TFDV on real files: every bad-input case, drift, skew, first run,
reports that open offline, and the reference datasets (chicago_taxi, penguins)."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from report_pages import chart_titles
from tensorflow_metadata.proto.v0 import anomalies_pb2

from components.compute_statistics import runtime as statistics
from components.infer_schema import runtime as schemas
from components.make_demo_data import runtime as demo
from components.tfdv_io import DataReadError
from components.validate_data import runtime

ROWS = 3000


class Workspace:
    def __init__(self, root: Path):
        self.root = root
        self.count = 0

    def stats(self, frame: pd.DataFrame | Path, suffix: str = ".csv", **kwargs) -> Path:
        self.count += 1
        if isinstance(frame, Path):
            data = frame
        else:
            data = demo.write(frame, self.root / f"data{self.count}{suffix}")
        path = self.root / f"stats{self.count}.pb"
        statistics.run(output_path=str(path), data_uri=str(data), **kwargs)
        return path

    def schema(self, stats: Path, label: str, **kwargs) -> Path:
        self.count += 1
        path = self.root / f"schema{self.count}.pbtxt"
        schemas.run(statistics_path=str(stats), schema_path=str(path), label=label, **kwargs)
        return path


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return Workspace(tmp_path_factory.mktemp("validate"))


@pytest.fixture(scope="module")
def train(ws):
    """The first run: statistics and the schema inferred from them."""
    stats = ws.stats(demo.generate(ROWS, seed=0), categorical_columns=["contract_type"])
    return stats, ws.schema(stats, demo.LABEL)


@pytest.fixture(scope="module")
def previous(ws):
    return ws.stats(demo.generate(ROWS, seed=1), categorical_columns=["contract_type"])


@pytest.fixture(scope="module")
def clean(ws):
    return ws.stats(demo.generate(ROWS, seed=2), suffix=".parquet", categorical_columns=["contract_type"])


def validate(tmp_path, stats, schema, **kwargs):
    metrics = {}
    out = {name: tmp_path / name for name in ("anomalies.pbtxt", "report.json", "report.md", "report.html")}
    result = runtime.run(
        statistics_path=str(stats),
        schema_path=str(schema),
        anomalies_path=str(out["anomalies.pbtxt"]),
        verdict_path=str(out["report.json"]),
        report_path=str(out["report.md"]),
        html_path=str(out["report.html"]),
        log_metric=metrics.__setitem__,
        **kwargs,
    )
    return result, metrics, out


def failing(result, feature):
    return [c for c in result.failures if c.subject == feature]


def test_clean_data_passes_with_scores_for_every_feature(tmp_path, ws, train, previous, clean):
    stats, schema = train
    serving = ws.stats(demo.generate(ROWS, seed=3).drop(columns=[demo.LABEL]),
                       categorical_columns=["contract_type"])
    result, metrics, out = validate(tmp_path, clean, schema, previous_statistics_path=str(previous),
                                    serving_statistics_uri=str(serving))
    assert result.passed, result.summary()
    assert metrics["data_is_valid"] == 1.0 and metrics["first_run"] == 0.0
    features = [f.name for f in tfdv.load_schema_text(str(schema)).feature]
    conforms = {c.subject for c in result.checks if c.name == "schema" and c.status == "pass"}
    assert conforms == set(features)
    # Drift for every feature (the ungated timestamp too), skew for every serving feature.
    for name in features:
        assert any(re.fullmatch(rf"drift_(jsd|linf)__{name}", m) for m in metrics), name
        if name != demo.LABEL:
            assert any(re.fullmatch(rf"skew_(jsd|linf)__{name}", m) for m in metrics), name
    assert "drift_jsd__monthly_charges" in metrics and "drift_linf__plan" in metrics
    assert "drift_linf__contract_type" in metrics  # integer codes measured as categories
    assert metrics["drift_jsd__monthly_charges"] < 0.1
    report = json.loads(out["report.json"].read_text())
    assert report["passed"] and report["gate"] == "data-is-valid"
    assert report["details"]["scores"]["drift"]["plan"][0]["metric"] == "linf"
    assert report["details"]["anomalies_format"] == "text"
    anomalies = text_format.Parse(out["anomalies.pbtxt"].read_text(), anomalies_pb2.Anomalies())
    assert not anomalies.anomaly_info and len(anomalies.drift_skew_info) == len(features)


BAD_INPUT = [
    ("rename_column", "monthly_charges", "SCHEMA_MISSING_COLUMN", "missing from the data"),
    ("rename_column", "monthly_charge_usd", "SCHEMA_NEW_COLUMN", "renamed from 'monthly_charges'"),
    ("missing_column", "tenure_months", "SCHEMA_MISSING_COLUMN", "missing from the data"),
    ("type_change", "age", "UNEXPECTED_DATA_TYPE", r"arrived as STRING, the schema expects INT \('\d+ years"),
    ("null_explosion", "monthly_charges", "FEATURE_TYPE_LOW_FRACTION_PRESENT", "null explosion"),
    ("outliers", "age", "INT_TYPE_BIG_INT", "above the allowed maximum"),
    ("outliers", "monthly_charges", "FLOAT_TYPE_SMALL_FLOAT", "below the allowed minimum"),
    ("unseen_categories", "plan", "ENUM_TYPE_UNEXPECTED_STRING_VALUES", "enterprise"),
]


@pytest.mark.parametrize("scenario, feature, kind, sentence", BAD_INPUT)
def test_bad_input_fails_with_a_reason_naming_the_feature(
    tmp_path, ws, train, previous, scenario, feature, kind, sentence
):
    stats, schema = train
    bad = ws.stats(demo.corrupt(demo.generate(ROWS, seed=2), scenario))
    result, metrics, out = validate(tmp_path, bad, schema, previous_statistics_path=str(previous))
    assert not result.passed
    assert metrics["data_is_valid"] == 0.0
    checks = [c for c in failing(result, feature) if c.kind == kind]
    assert checks, f"no {kind} failure for {feature}: {result.summary()}"
    assert re.search(sentence, checks[0].reason), checks[0].reason
    assert f"column '{feature}'" in checks[0].reason
    assert feature in result.summary()
    assert feature in out["report.md"].read_text()


def test_reasons_carry_observed_values_and_thresholds(tmp_path, ws, train):
    _, schema = train
    null = ws.stats(demo.corrupt(demo.generate(ROWS, seed=2), "null_explosion"))
    result, _, _ = validate(tmp_path, null, schema)
    check = next(c for c in failing(result, "monthly_charges"))
    assert 0.35 < check.value < 0.45 and check.threshold == pytest.approx(0.9)
    outliers = ws.stats(demo.corrupt(demo.generate(ROWS, seed=2), "outliers"))
    result, _, _ = validate(tmp_path, outliers, schema)
    age = next(c for c in failing(result, "age") if c.kind == "INT_TYPE_BIG_INT")
    assert age.value >= 400 and age.threshold == 162  # [18, 90] widened by one span (72)
    unseen = ws.stats(demo.corrupt(demo.generate(ROWS, seed=2), "unseen_categories"))
    result, _, _ = validate(tmp_path, unseen, schema)
    plan = next(c for c in failing(result, "plan"))
    assert 0.25 < plan.value < 0.35 and plan.threshold == pytest.approx(0.01)


def test_drift_against_the_previous_run(tmp_path, ws, train, previous):
    _, schema = train
    drifted = ws.stats(demo.corrupt(demo.generate(ROWS, seed=2), "drift"),
                       categorical_columns=["contract_type"])
    result, metrics, _ = validate(tmp_path, drifted, schema, previous_statistics_uri=str(previous))
    assert not result.passed
    charges = [c for c in failing(result, "monthly_charges") if c.name == "drift"]
    region = [c for c in failing(result, "region") if c.name == "drift"]
    assert charges and charges[0].kind == "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"
    assert region and region[0].kind == "COMPARATOR_L_INFTY_HIGH"
    assert "drifted from the previous run" in region[0].reason and "'north'" in region[0].reason
    assert metrics["drift_jsd__monthly_charges"] > 0.1 and metrics["drift_linf__region"] > 0.5
    assert {c.subject for c in result.failures} == {"monthly_charges", "region"}


def test_skew_against_serving_statistics(tmp_path, ws, train, clean):
    _, schema = train
    serving_frame = demo.corrupt(demo.generate(ROWS, seed=4), "drift").drop(columns=[demo.LABEL])
    serving = ws.stats(serving_frame, categorical_columns=["contract_type"])
    result, metrics, _ = validate(tmp_path, clean, schema, serving_statistics_path=str(serving),
                                  first_run_policy="pass")
    assert not result.passed
    skewed = {c.subject for c in result.failures if c.name == "skew"}
    assert skewed == {"monthly_charges", "region"}
    skew = [c for c in result.failures if c.name == "skew"]
    assert all("differs between training and serving" in c.reason for c in skew)
    # The serving data is also checked against the schema's SERVING environment: the shifted
    # charges leave their range there too. Nothing else fails.
    assert {c.subject for c in result.failures} == {"monthly_charges", "region"}
    assert metrics["skew_linf__region"] > 0.5
    # The label is absent from serving data, as the SERVING environment says: no complaint.
    assert not failing(result, demo.LABEL)


@pytest.mark.parametrize("policy, passed, status", [("pass", True, "pass"), ("warn", True, "warn"),
                                                    ("fail", False, "fail")])
def test_first_run_policy_is_applied_and_recorded(tmp_path, train, clean, policy, passed, status):
    _, schema = train
    result, metrics, out = validate(tmp_path, clean, schema, first_run_policy=policy)
    assert result.passed is passed
    first = [c for c in result.checks if c.name == "first_run"]
    assert len(first) == 1 and first[0].status == status and first[0].threshold == policy
    assert metrics["first_run"] == 1.0
    assert not any(m.startswith("drift_") for m in metrics)
    report = json.loads(out["report.json"].read_text())
    assert any(f"first-run policy '{policy}'" in note for note in report["notes"])
    assert f"first-run policy '{policy}'" in out["report.md"].read_text()


def test_fail_on_anomalies_raises_after_writing_every_output(tmp_path, ws, train):
    _, schema = train
    bad = ws.stats(demo.corrupt(demo.generate(ROWS, seed=2), "missing_column"))
    with pytest.raises(runtime.DataValidationError, match="tenure_months") as raised:
        validate(tmp_path, bad, schema, fail_on_anomalies=True)
    assert not raised.value.verdict.passed
    for name in ("anomalies.pbtxt", "report.json", "report.md", "report.html"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert json.loads((tmp_path / "report.json").read_text())["passed"] is False


def test_html_report_is_self_contained_and_names_the_failing_feature(tmp_path, ws, train, previous):
    _, schema = train
    bad = ws.stats(demo.corrupt(demo.generate(ROWS, seed=2), "type_change"))
    _, _, out = validate(tmp_path, bad, schema, previous_statistics_path=str(previous))
    page = out["report.html"].read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "<script" not in page.lower() and "@import" not in page
    assert "column &#x27;age&#x27; arrived as STRING, the schema expects INT" in page
    assert "Per-feature statistics" in page and "<td>age</td>" in page


def test_bad_arguments_and_unreadable_statistics_are_clear_errors(tmp_path, train, clean):
    _, schema = train
    with pytest.raises(ValueError, match="first_run_policy must be one of"):
        validate(tmp_path, clean, schema, first_run_policy="ignore")
    with pytest.raises(ValueError, match="not both"):
        validate(tmp_path, clean, schema, previous_statistics_path=str(clean),
                 previous_statistics_uri=str(clean))
    with pytest.raises(DataReadError, match=r"previous statistics .*gone\.pb' does not exist"):
        validate(tmp_path, clean, schema, previous_statistics_uri=str(tmp_path / "gone.pb"))
    junk = tmp_path / "junk.pb"
    junk.write_text("this is not statistics")
    with pytest.raises(DataReadError, match=r"junk\.pb"):
        validate(tmp_path, clean, schema, serving_statistics_uri=str(junk))
    with pytest.raises(ValueError, match="environment 'STAGING' is not in the schema"):
        validate(tmp_path, clean, schema, environment="STAGING")


def test_chicago_taxi_sparse_columns_never_fail(tmp_path, ws, datasets_dir):
    data = datasets_dir / "chicago_taxi" / "data.csv"
    taxi = pd.read_csv(data, dtype=str, keep_default_na=False)
    sparse = {"pickup_census_tract", "dropoff_census_tract", "company", "dropoff_latitude"}
    # The whole file against the schema inferred from it: valid, sparse columns included.
    full = ws.stats(data)
    schema = ws.schema(full, "big_tipper")
    result, _, _ = validate(tmp_path, full, schema, first_run_policy="pass")
    assert result.passed, result.summary()
    # Two random halves, as two runs: no drift, nothing on the sparse columns (one of them,
    # pickup_census_tract, has no value at all in the first half). The one failure is real: a
    # 72120 s (20 hour) trip in the second half, beyond twice the first half's range.
    first, second = ws.root / "taxi_first.csv", ws.root / "taxi_second.csv"
    taxi.iloc[::2].to_csv(first, index=False)
    taxi.iloc[1::2].to_csv(second, index=False)
    first_stats, second_stats = ws.stats(first), ws.stats(second)
    schema = ws.schema(first_stats, "big_tipper")
    result, metrics, _ = validate(tmp_path, second_stats, schema, previous_statistics_path=str(first_stats))
    assert [(c.subject, c.kind, c.value) for c in result.failures] == [
        ("trip_seconds", "INT_TYPE_BIG_INT", 72120)
    ]
    assert not [c for c in result.checks if c.subject in sparse and c.status != "pass"]
    assert "drift_linf__company" in metrics and "drift_jsd__fare" in metrics
    assert max(v for k, v in metrics.items() if k.startswith("drift_")) < 0.1
    # The gate still catches a real problem there: the company column disappears.
    broken = ws.root / "taxi_broken.csv"
    taxi.iloc[1::2].drop(columns=["company"]).to_csv(broken, index=False)
    result, _, _ = validate(tmp_path, ws.stats(broken), schema, previous_statistics_path=str(first_stats))
    assert [c.kind for c in failing(result, "company")] == ["SCHEMA_MISSING_COLUMN"]


def test_penguins_skewed_is_flagged_against_labelled(tmp_path, ws, datasets_dir):
    labelled = ws.stats(datasets_dir / "penguins" / "labelled.csv")
    skewed = ws.stats(datasets_dir / "penguins" / "skewed.csv")
    schema = ws.schema(labelled, "species")
    result, metrics, out = validate(tmp_path, skewed, schema, previous_statistics_path=str(labelled))
    # skewed.csv differs from labelled.csv in one value: culmen_length_mm = -1 in a [0, 1]
    # feature. That, and only that, fails the gate; one bad value moves no distribution.
    assert not result.passed
    assert [(c.subject, c.kind, c.value, c.threshold) for c in result.failures] == [
        ("culmen_length_mm", "FLOAT_TYPE_SMALL_FLOAT", -1, 0)
    ]
    assert "below the allowed minimum 0" in result.failures[0].reason
    assert "culmen_length_mm" in out["report.html"].read_text()
    assert metrics["data_is_valid"] == 0.0
    assert max(v for k, v in metrics.items() if k.startswith("drift_")) < 0.1



def test_html_report_draws_every_failing_feature_over_the_previous_run_and_serving(
    tmp_path, ws, train, previous
):
    """A page tests/host/test_reports_in_browser.py opens in Chromium (report_pages)."""
    _, schema = train
    categorical = ["contract_type"]
    drifted = ws.stats(demo.corrupt(demo.generate(ROWS, seed=2), "drift"), categorical_columns=categorical)
    serving = ws.stats(demo.generate(ROWS, seed=3).drop(columns=[demo.LABEL]),
                       categorical_columns=categorical)
    result, _, out = validate(tmp_path, drifted, schema, previous_statistics_path=str(previous),
                              serving_statistics_path=str(serving))
    page = out["report.html"].read_text()
    assert {c.subject for c in result.failures} == {"monthly_charges", "region"}
    assert "Content-Security-Policy" in page and "<script" not in page.lower()
    assert sorted(chart_titles(page)) == ["monthly_charges: distribution", "region: top values"]
    assert page.index("<svg") < page.index("<h2>Checks</h2>"), "pictures come before the tables"
    region = page[page.index("region: top values"):]
    region = region[:region.index("</figure>")]
    assert all(f">{name}</text>" in region for name in ("this data", "previous run", "serving"))
    assert "drifted from the previous run" in region  # the caption says why it is drawn
    # The picture shows the drift: 'north' holds most of this data, a quarter of the previous run.
    shares = {name: float(share) for name, share in re.findall(
        r"(this data|previous run|serving): north ([\d.]+)%", region)}
    assert shares["this data"] > 70 and shares["previous run"] < 40 and shares["serving"] < 40
    # TFDV runs the drift and skew sentences together; the reason names the value alone.
    reasons = {c.name: c.reason for c in result.failures if c.subject == "region"}
    assert reasons["drift"].endswith("(largest change: 'north')"), reasons

    (tmp_path / "all").mkdir()
    _, _, every = validate(tmp_path / "all", drifted, schema, previous_statistics_path=str(previous),
                           plot_all_features=True)
    titles = chart_titles(every["report.html"].read_text())
    features = {f.path.step[0] for f in tfdv.load_stats_binary(str(drifted)).datasets[0].features}
    assert {t.split(":")[0] for t in titles} == features and len(titles) == len(features)
