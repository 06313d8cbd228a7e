"""check_data against the three components it replaces in the default pipeline: on the same
data, real TFDV, its statistics, schema, anomalies, verdict, reports and drift metrics are the
ones compute_statistics, infer_schema and validate_data write, on a good first run, a good run
against production's schema and statistics, and a corrupted run; resolve_inputs against
fingerprint_data and resolve_baseline."""

import json
from pathlib import Path

import pytest
from tensorflow_metadata.proto.v0 import statistics_pb2

from components.check_data import runtime as check_data
from components.compute_statistics import runtime as compute_statistics
from components.fingerprint_data import runtime as fingerprint_data
from components.infer_schema import runtime as infer_schema
from components.make_demo_data import runtime as demo
from components.resolve_baseline import runtime as resolve_baseline
from components.resolve_inputs import runtime as resolve_inputs
from components.validate_data import runtime as validate_data

ROWS = 2000
OUTPUTS = ("statistics", "schema", "anomalies", "verdict", "report", "html")
CATEGORICAL = ["contract_type"]


def separately(out: Path, data: Path, **baseline) -> tuple[dict, dict]:
    """The three components one after the other, as the fine-grained pipeline ran them."""
    out.mkdir()
    paths = {name: str(out / name) for name in OUTPUTS}
    metrics = {}
    compute_statistics.run(
        output_path=paths["statistics"], data_uri=str(data), categorical_columns=CATEGORICAL
    )
    infer_schema.run(
        statistics_path=paths["statistics"], schema_path=paths["schema"], label=demo.LABEL,
        categorical_columns=CATEGORICAL, curated_schema_uri=baseline.get("schema", ""),
    )
    validate_data.run(
        statistics_path=paths["statistics"], schema_path=paths["schema"], anomalies_path=paths["anomalies"],
        verdict_path=paths["verdict"], report_path=paths["report"], html_path=paths["html"],
        previous_statistics_uri=baseline.get("statistics", ""), log_metric=metrics.__setitem__,
    )
    return paths, metrics


def together(out: Path, data: Path, **baseline) -> tuple[dict, dict, check_data.CheckResult]:
    out.mkdir()
    paths = {name: str(out / name) for name in OUTPUTS}
    metrics = {}
    result = check_data.run(
        statistics_path=paths["statistics"], schema_path=paths["schema"], anomalies_path=paths["anomalies"],
        verdict_path=paths["verdict"], report_path=paths["report"], html_path=paths["html"],
        log_metric=metrics.__setitem__, data_uri=str(data), label=demo.LABEL,
        categorical_columns=CATEGORICAL, curated_schema_uri=baseline.get("schema", ""),
        previous_statistics_uri=baseline.get("statistics", ""),
    )
    return paths, metrics, result


def assert_same_outputs(one: dict, other: dict) -> None:
    for name in ("schema", "anomalies", "verdict", "report", "html"):
        assert Path(one[name]).read_text() == Path(other[name]).read_text(), name
    stats = [statistics_pb2.DatasetFeatureStatisticsList.FromString(Path(p["statistics"]).read_bytes())
             for p in (one, other)]
    assert stats[0] == stats[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("check-data")
    return {
        "first": demo.write(demo.generate(ROWS, seed=0), root / "first.csv"),
        "next": demo.write(demo.generate(ROWS, seed=1), root / "next.parquet"),
        "bad": demo.write(demo.corrupt(demo.generate(ROWS, seed=2), "type_change"), root / "bad.csv"),
    }


@pytest.fixture(scope="module")
def production(files, tmp_path_factory):
    """The first run's schema and statistics, as resolve_baseline hands them to later runs."""
    paths, _ = separately(tmp_path_factory.mktemp("production") / "out", files["first"])
    return {"schema": paths["schema"], "statistics": paths["statistics"]}


def test_a_first_run_writes_what_the_three_components_write(files, tmp_path):
    expected, expected_metrics = separately(tmp_path / "separate", files["first"])
    paths, metrics, result = together(tmp_path / "together", files["first"])
    assert_same_outputs(paths, expected)
    assert metrics == expected_metrics and metrics["first_run"] == 1.0
    assert result.passed  # first_run_policy "warn": a warning, not a failure
    statistics, schema, anomalies, verdict = result.metadata
    assert statistics["rows"] == ROWS and statistics["data_uri"] == str(files["first"])
    assert schema["source"] == "inferred"
    assert anomalies["format"] == validate_data.ANOMALIES_FORMAT
    assert verdict == {"passed": True, "summary": result.verdict.summary()}


def test_a_run_against_production_matches_and_passes(files, production, tmp_path):
    expected, expected_metrics = separately(tmp_path / "separate", files["next"], **production)
    paths, metrics, result = together(tmp_path / "together", files["next"], **production)
    assert_same_outputs(paths, expected)
    assert metrics == expected_metrics and metrics["first_run"] == 0.0
    assert any(name.startswith("drift_") for name in metrics)  # drift measured against production
    assert result.passed and result.metadata[1]["source"] == "curated"


def test_corrupted_data_fails_with_the_same_reasons(files, production, tmp_path):
    expected, _ = separately(tmp_path / "separate", files["bad"], **production)
    paths, _, result = together(tmp_path / "together", files["bad"], **production)
    assert_same_outputs(paths, expected)
    assert not result.passed
    failed = {c["subject"]: c["reason"] for c in json.loads(Path(paths["verdict"]).read_text())["checks"]
              if c["status"] == "fail"}
    assert "not an integer" in failed["age"], failed


def test_fail_on_anomalies_raises_after_writing_every_output(files, production, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    paths = {name: str(out / name) for name in OUTPUTS}
    with pytest.raises(validate_data.DataValidationError):
        check_data.run(
            statistics_path=paths["statistics"], schema_path=paths["schema"],
            anomalies_path=paths["anomalies"], verdict_path=paths["verdict"],
            report_path=paths["report"], html_path=paths["html"], data_uri=str(files["bad"]),
            label=demo.LABEL, curated_schema_uri=production["schema"],
            previous_statistics_uri=production["statistics"], fail_on_anomalies=True,
        )
    assert all(Path(p).stat().st_size > 0 for p in paths.values())


def test_resolve_inputs_is_fingerprint_data_and_resolve_baseline(files, production, tmp_path):
    result = resolve_inputs.run(
        data_uri=str(files["next"]), snapshot_uri=str(tmp_path / "snapshots"),
        schema_uri=production["schema"], statistics_uri=production["statistics"],
    )
    expected = fingerprint_data.run(data_uri=str(files["next"]), snapshot_uri=str(tmp_path / "snapshots"))
    assert result["data"] == expected
    assert result["data_uri"] == expected["data_uri"] != str(files["next"])  # the snapshot
    assert result["fingerprint"] == expected["fingerprint"]
    schema, statistics, source = resolve_baseline.run(
        schema_uri=production["schema"], statistics_uri=production["statistics"]
    )
    assert (result["schema_uri"], result["statistics_uri"], result["baseline_source"]) == (
        schema, statistics, source
    )
    assert schema == production["schema"] and source == "explicit"
    with pytest.raises(ValueError, match="data_uri is required"):
        resolve_inputs.run(data_uri=" ")
