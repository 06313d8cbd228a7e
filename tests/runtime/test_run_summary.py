"""record_verdict, summarize_run and resolve_baseline: the run record and the exit summary."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from components import run_records
from components.record_verdict import runtime as record_verdict
from components.resolve_baseline import runtime as resolve_baseline
from components.summarize_run import runtime as summarize_run
from components.verdict import FAIL, PASS, Verdict


def verdict_file(tmp_path, gate, *checks):
    verdict = Verdict(gate)
    for check in checks:
        verdict.add(*check)
    path = tmp_path / f"{gate}.report.json"
    path.write_text(verdict.to_json())
    return str(path)


def test_records_then_summary_names_the_gate_and_reason(tmp_path):
    record_dir = str(tmp_path / "records" / "run-1")
    data_report = verdict_file(
        tmp_path, "data-is-valid",
        ("schema", "age", FAIL, "column 'age' arrived as STRING, the schema expects INT"),
        ("schema", "plan", PASS, "ok"),
    )
    record = record_verdict.run(
        verdict_path=data_report, verdict_uri="gs://b/verdict.json", record_dir=record_dir,
        gate="data-is-valid",
    )
    assert record["passed"] is False and record["failures"][0]["subject"] == "age"

    summary_path = tmp_path / "summary.md"
    summary = summarize_run.run(
        status={"state": "SUCCEEDED", "pipeline_job_resource_name": "job-1"},
        record_dir=record_dir, summary_path=str(summary_path),
    )
    assert summary["stopped_at_gate"] == "data-is-valid"
    verdicts = {g["gate"]: g["verdict"] for g in summary["gates"]}
    assert verdicts == {
        "data-is-valid": "failed", "model-is-blessed": "not reached", "deployment-is-healthy": "not reached",
    }
    markdown = summary_path.read_text()
    assert "## Why data-is-valid failed" in markdown
    assert "age: column 'age' arrived as STRING" in markdown
    assert "gs://b/verdict.json" in markdown
    assert run_records.read_all(record_dir)["summary"]["state"] == "SUCCEEDED"


def test_a_report_that_is_not_a_verdict_is_refused(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{}")
    with pytest.raises(ValueError, match="not a verdict"):
        record_verdict.run(verdict_path=str(path), verdict_uri="u", record_dir=str(tmp_path), gate="g")


def test_summary_of_a_run_with_no_records(tmp_path):
    summary = summarize_run.run(
        status={"state": "FAILED", "error_message": "train-model crashed"},
        record_dir=str(tmp_path / "none"), summary_path=str(tmp_path / "s.md"),
    )
    assert summary["stopped_at_gate"] is None
    assert "**Error:** train-model crashed" in (tmp_path / "s.md").read_text()
    # The step that records a gate may be the one that failed: not "not reached".
    assert {g["verdict"] for g in summary["gates"]} == {"not recorded"}


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_summary_is_posted_to_the_webhook(tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        summarize_run.run(
            status={"state": "SUCCEEDED"}, record_dir=str(tmp_path), summary_path=str(tmp_path / "s.md"),
            webhook_url=f"http://127.0.0.1:{server.server_port}/hook",
        )
    finally:
        server.shutdown()
    assert len(_Hook.received) == 1
    assert _Hook.received[0]["summary"]["state"] == "SUCCEEDED"
    assert _Hook.received[0]["text"].startswith("# Run summary")


def test_unreachable_webhook_is_noted_not_fatal_and_its_token_never_shown(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr("time.sleep", lambda s: None)
    caplog.set_level("DEBUG")
    summarize_run.run(
        status={"state": "SUCCEEDED"}, record_dir=str(tmp_path), summary_path=str(tmp_path / "s.md"),
        webhook_url="http://127.0.0.1:9/services/T000/B000/s3cr3t-token?key=also-secret",
    )
    text = (tmp_path / "s.md").read_text()
    assert "The webhook at http://127.0.0.1:9 could not be reached" in text
    for secret in ("s3cr3t-token", "also-secret", "/services/"):
        assert secret not in text and secret not in caplog.text
        assert secret not in json.dumps(run_records.read_all(str(tmp_path)))


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/x/token", "hooks.example.com/token", "http:///token"])
def test_a_malformed_webhook_is_a_clear_error_after_the_summary_is_written(tmp_path, url):
    with pytest.raises(ValueError, match="http:// or https:// URL with a host") as raised:
        summarize_run.run(
            status={"state": "SUCCEEDED"}, record_dir=str(tmp_path), summary_path=str(tmp_path / "s.md"),
            webhook_url=url,
        )
    assert "token" not in str(raised.value)
    text = (tmp_path / "s.md").read_text()
    assert text.startswith("# Run summary") and "was not posted" in text and "token" not in text
    assert run_records.read_all(str(tmp_path))["summary"]["state"] == "SUCCEEDED"


def test_baseline_comes_from_the_production_version_tags(mlflow_server, tmp_path):
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    name = "resolve-baseline-test"
    client.create_registered_model(name)
    version = client.create_model_version(
        name, source="s3://bucket/models/1",
        tags={"schema_uri": "/s/schema.pbtxt", "statistics_uri": "/s/stats"},
    )
    assert resolve_baseline.run(mlflow_tracking_uri=mlflow_server, registered_model_name=name)[0] == ""
    client.set_registered_model_alias(name, "production", version.version)

    schema, stats, source = resolve_baseline.run(
        mlflow_tracking_uri=mlflow_server, registered_model_name=name
    )
    assert (schema, stats) == ("/s/schema.pbtxt", "/s/stats")
    assert f"version {version.version}" in source
    # A curated schema wins over production's.
    assert resolve_baseline.run(
        mlflow_tracking_uri=mlflow_server, registered_model_name=name, schema_uri="/curated.pbtxt"
    )[:2] == ("/curated.pbtxt", "/s/stats")


def test_no_registered_model_means_no_baseline():
    schema, stats, source = resolve_baseline.run()
    assert (schema, stats) == ("", "")
    assert source.startswith("none")


def test_a_registry_without_a_tracking_uri_is_an_error_not_a_first_run(monkeypatch):
    from components import registry

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    expected = "'mlflow-tracking' with the key 'MLFLOW_TRACKING_URI'"
    with pytest.raises(registry.TrackingUriMissing, match=expected):
        resolve_baseline.run(registered_model_name="churn-classifier")
