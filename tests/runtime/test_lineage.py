"""Lineage the next run can read: run 1's artifacts live in KFP's MinIO store (``minio://``
URIs on a real S3-compatible server); register_model stores what later runs need in MLflow;
a lifecycle rule then empties run 1's pipeline root; run 2 still finds production's schema and
statistics (through resolve_baseline, from MLflow) and measures drift against them."""

import json
from pathlib import Path

import saved_models

from components import uris
from components.compute_statistics import runtime as statistics
from components.fingerprint_data import runtime as fingerprint
from components.infer_schema import runtime as schemas
from components.make_demo_data import runtime as demo
from components.register_model import runtime as register
from components.resolve_baseline import runtime as baseline
from components.validate_data import runtime as validate

ROWS = 1500
MODEL = "lineage-churn"


def upload(local: Path, uri: str) -> str:
    """What KFP's launcher does with an output artifact: copy it to the MinIO pipeline root."""
    uris.write_bytes(uri, local.read_bytes())
    return uri


def data_gate(tmp_path: Path, stats: Path, schema_uri: str, previous_statistics_uri: str) -> dict:
    schema = tmp_path / "schema.pbtxt"
    schemas.run(
        statistics_path=str(stats), schema_path=str(schema), label=demo.LABEL, curated_schema_uri=schema_uri
    )
    out = {n: tmp_path / n for n in ("anomalies.pbtxt", "report.json", "report.md", "report.html")}
    validate.run(
        statistics_path=str(stats), schema_path=str(schema), anomalies_path=str(out["anomalies.pbtxt"]),
        verdict_path=str(out["report.json"]), report_path=str(out["report.md"]),
        html_path=str(out["report.html"]), previous_statistics_uri=previous_statistics_uri,
        log_metric=lambda *_: None,
    )
    return json.loads(out["report.json"].read_text())


def test_run_two_reads_production_lineage_after_run_one_is_gone(tmp_path, s3_env, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)  # the mlflow-tracking secret's key
    data_uri = f"minio://{s3_env}/churn/latest/train.csv"
    run1 = f"minio://{s3_env}/v2/artifacts/training/run-1"

    # Run 1: data on MinIO, statistics and schema as MinIO artifacts, then registration.
    uris.write_bytes(data_uri, demo.write(demo.generate(ROWS, seed=0), tmp_path / "d1.csv").read_bytes())
    day1 = fingerprint.run(data_uri=data_uri)
    (tmp_path / "run1").mkdir()
    stats1 = tmp_path / "run1" / "statistics"
    statistics.run(output_path=str(stats1), data_uri=day1["data_uri"])
    schema1 = tmp_path / "run1" / "schema"
    schemas.run(statistics_path=str(stats1), schema_path=str(schema1), label=demo.LABEL)
    artifact_uris = {
        "statistics": upload(stats1, f"{run1}/compute-statistics/statistics"),
        "schema": upload(schema1, f"{run1}/infer-schema/schema"),
    }
    model = tmp_path / "run1" / "model"
    metadata = saved_models.build(model)
    register.run(
        model_dir=str(model), model_metadata={**metadata, "data_hash": day1["fingerprint"]},
        model_uri=f"{run1}/train-model/model", registered_model_name=MODEL,
        lineage_paths={"statistics": str(stats1), "schema": str(schema1)},
        pipeline_artifact_uris=artifact_uris, alias="production",
    )
    # Before the lifecycle rule, a minio:// URI is readable too (the URI layer knows MinIO).
    assert uris.read_bytes(artifact_uris["schema"]) == schema1.read_bytes()

    # The lifecycle rule empties run 1's pipeline root; run 1's local files are gone too.
    filesystem, _ = uris.filesystem_for(run1)
    filesystem.delete_dir(run1.split("://", 1)[1])
    assert uris.list_files(run1) == []
    for path in (tmp_path / "run1").rglob("*"):
        if path.is_file():
            path.unlink()

    # Run 2: new data at the same URI; production's baseline comes back from MLflow.
    uris.write_bytes(data_uri, demo.write(demo.generate(ROWS, seed=1), tmp_path / "d2.csv").read_bytes())
    day2 = fingerprint.run(data_uri=data_uri)
    assert day2["fingerprint"] != day1["fingerprint"]
    schema_uri, statistics_uri, source = baseline.run(registered_model_name=MODEL)
    assert schema_uri.startswith("runs:/") and statistics_uri.startswith("runs:/"), source
    assert "version 1" in source
    stats2 = tmp_path / "stats2"
    statistics.run(output_path=str(stats2), data_uri=day2["data_uri"])
    (tmp_path / "run2").mkdir()
    report = data_gate(tmp_path / "run2", stats2, schema_uri, statistics_uri)
    drift = [c for c in report["checks"] if c["name"] == "drift"]
    assert len(drift) >= 5, report["checks"]  # measured against production, not a first run
    assert not any(c["name"] == "first_run" for c in report["checks"])
    assert report["passed"], [c for c in report["checks"] if c["status"] == "fail"]
