"""A week of continuous training: the compiled training pipeline under kfp.local, in the
runtime image, with a real MLflow server and a real KServe model server, on one fixed
``data_uri`` whose content changes every day, the way a nightly schedule sees it.

Before each day the previous runs' folders in the pipeline root are deleted (the pipeline root
is scratch space on every platform), so every day after the first must find production's
schema, statistics and model in MLflow. The incoming data and the local model server's folder
sit in the pipeline root (``incoming/``, ``serving/``, never deleted) only because kfp.local
mounts nothing else into the task containers.
The days build on each other and run in file order. After the week, the monitoring pipeline
judges production from the model server's prediction logs: healthy traffic (with a few bad
requests) leaves it alone; shifted traffic with late labels retrains, promotes and alerts.
"""

import csv
import json
import shutil
import socket
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from components import make_demo_data
from launch import local

MODEL = "e2e-churn"
INCOMING, SERVING, LOGS = "incoming", "serving", "prediction-logs"
ROWS = 1500
DAYS = {  # day -> (make_demo_data scenario, seed)
    1: ("none", 0),
    2: ("none", 1),
    3: ("drift", 2),
    4: ("type_change", 3),
    5: ("label_shift", 4),
    6: ("none", 5),
}
INSTANCE = {
    "signup_timestamp": 1600000000, "age": 40, "tenure_months": 3, "monthly_charges": 80.5,
    "total_charges": 241.5, "support_calls": 4, "plan": "basic", "region": "north",
    "payment_method": "voucher", "contract_type": 0,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    """MLflow keeps its data outside the pipeline root, as on a cluster."""
    services = tmp_path_factory.mktemp("services")
    root = local.init(tmp_path_factory.mktemp("pipeline-root"))
    incoming = root / INCOMING
    incoming.mkdir()
    days = {}
    for day, (scenario, seed) in DAYS.items():
        generated = make_demo_data(rows=ROWS, seed=seed, scenario=scenario, file_format="csv")
        days[day] = incoming / f"day{day}.csv"
        shutil.copyfile(generated.outputs["data"].path, days[day])
    names = {"mlflow": "kfp-ct-mlflow-e2e", "serving": "kfp-ct-serving-e2e"}
    state = {
        "root": root,
        "days": days,
        "data_uri": incoming / "latest" / "train.csv",  # the schedule's fixed URI
        "mlflow": local.ensure_mlflow(services / "mlflow", port=free_port(), name=names["mlflow"]),
        "serving_dir": root / SERVING,
        "serving_port": free_port(),
        "names": names,
        "fingerprints": [],
        "url": "",
    }
    state["data_uri"].parent.mkdir()
    state["serving_dir"].mkdir()
    yield state
    for name in names.values():
        local.stop_container(name)


def run_day(week, day: int) -> local.RunResult:
    """Deletes every earlier run's folder, puts day's data at the fixed URI, runs the golden."""
    root = week["root"]
    for entry in root.iterdir():
        if entry.name not in (INCOMING, SERVING, LOGS):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    shutil.copyfile(week["days"][day], week["data_uri"])
    result = local.run_pipeline(
        "training",
        root,
        data_uri=str(week["data_uri"]),
        epochs=6,
        batch_size=32,
        thresholds={"auc": 0.65},
        change_thresholds={"auc": 0.05},
        mlflow_tracking_uri=week["mlflow"],
        registered_model_name=MODEL,
        service_name=MODEL,
        deploy_target="local",
        local_serving_dir=str(week["serving_dir"]),
        local_endpoint=week["url"],
        accelerator_count=0,
    )
    (run_dir,) = [p for p in root.iterdir() if p.name.startswith("training-")]
    fingerprint = json.loads((run_dir / "resolve-inputs" / "data").read_text())["fingerprint"]
    assert fingerprint not in week["fingerprints"], f"day {day}: the data's fingerprint did not change"
    week["fingerprints"].append(fingerprint)
    return result


def production(week) -> str | None:
    return local.mlflow_alias_version(week["mlflow"], MODEL, "production")


def served(week) -> tuple[str, list]:
    """The version the local model server's pointer names, and its answer to INSTANCE."""
    pointer = json.loads((week["serving_dir"] / f"{MODEL}.json").read_text())
    request = urllib.request.Request(
        f"{week['url']}/v1/models/{MODEL}:predict",
        data=json.dumps({"instances": [INSTANCE]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(pointer["model_version"]), json.load(response)["predictions"]


def failed_checks(gate: dict) -> dict[str, str]:
    return {f["subject"]: f["reason"] for f in gate["failures"]}


def verdict(gate: dict) -> dict:
    """The gate's whole JSON verdict (every check), read while the day's run is on disk."""
    return json.loads(Path(gate["verdict_uri"]).read_text())


def test_day_1_clean_data_is_registered_promoted_and_served(week):
    result = run_day(week, 1)
    assert not result.error, result.error
    for gate in ("data-is-valid", "model-is-blessed", "deployment-is-healthy"):
        assert result.gate(gate)["passed"], result.gate(gate)
    assert result.summary["state"] == "SUCCEEDED"
    # What ran: seven tasks, the gates' verdicts recorded by steps that run anyway (the data
    # gate's by evaluate-model: check-data is cached)
    assert sorted(result.steps) == [
        "check-data", "deploy-model", "evaluate-model", "register-model",
        "resolve-inputs", "summarize-run", "train-model",
    ], result.steps
    assert production(week) == "1"
    week["url"] = local.ensure_model_server(
        week["serving_dir"], port=week["serving_port"], name=week["names"]["serving"]
    )
    version, answer = served(week)
    assert version == "1" and 0.0 <= float(answer[0]) <= 1.0


def test_day_2_new_clean_sample_is_measured_against_production_and_replaces_it(week):
    result = run_day(week, 2)
    assert not result.error, result.error
    gate = result.gate("data-is-valid")
    assert gate["passed"], gate
    # Production's statistics came back from MLflow (the day-1 pipeline root is gone): drift
    # was measured for the features, not skipped as on a first run.
    checks = verdict(gate)["checks"]
    assert len([c for c in checks if c["name"] == "drift"]) >= 5, checks
    assert not any(c["name"] == "first_run" for c in checks), checks
    blessing = result.gate("model-is-blessed")
    assert blessing["passed"], blessing
    assert verdict(blessing)["details"]["baseline"]["version"] == "1"
    assert production(week) == "2"
    assert served(week)[0] == "2"
    week["served_day2"] = served(week)[1]


def test_day_3_drifted_data_stops_at_the_data_gate(week):
    result = run_day(week, 3)
    failures = failed_checks(result.gate("data-is-valid"))
    assert {"monthly_charges", "region"} & set(failures), failures
    assert result.gate("model-is-blessed") is None
    # recorded by the one step on the failing side of the gate
    steps = ["check-data", "record-verdict", "resolve-inputs", "summarize-run"]
    assert sorted(result.steps) == steps, result.steps
    assert result.summary["stopped_at_gate"] == "data-is-valid"
    assert production(week) == "2" and served(week) == ("2", week["served_day2"])


def test_day_4_corrupted_data_stops_at_the_data_gate(week):
    result = run_day(week, 4)
    failures = failed_checks(result.gate("data-is-valid"))
    assert "age" in failures, failures
    assert result.gate("model-is-blessed") is None
    assert production(week) == "2" and served(week) == ("2", week["served_day2"])


def test_day_5_a_worse_model_is_not_blessed_and_production_keeps_serving(week):
    result = run_day(week, 5)
    assert result.gate("data-is-valid")["passed"], result.gate("data-is-valid")
    blessing = result.gate("model-is-blessed")
    assert blessing["passed"] is False
    assert any("auc" in subject for subject in failed_checks(blessing)), blessing["failures"]
    assert result.gate("deployment-is-healthy") is None
    assert production(week) == "2" and served(week) == ("2", week["served_day2"])


def test_day_6_clean_data_again_is_promoted(week):
    result = run_day(week, 6)
    assert not result.error, result.error
    assert result.gate("deployment-is-healthy")["passed"], result.gate("deployment-is-healthy")
    assert production(week) == "3"
    assert served(week)[0] == "3"


def test_production_can_be_served_from_the_registry_alone(week):
    port = free_port()
    url = local.serve_model(
        name=MODEL, registered_model=MODEL, alias="production", tracking_uri=week["mlflow"], port=port
    )
    try:
        request = urllib.request.Request(
            f"{url}/v1/models/{MODEL}:predict",
            data=json.dumps({"instances": [INSTANCE]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.load(response)["predictions"] == served(week)[1]
    finally:
        local.stop_container(f"kfp-ct-serve-{MODEL}")


def test_a_failed_step_is_named_with_its_own_error(week, tmp_path):
    """A broken input: the run's error names the failing step and what it said (not kfp.local's
    follow-on "task not found"). Without the retries: they would only repeat the same error."""
    result = local.run_pipeline(
        "training", week["root"], retries=False, data_uri=str(week["days"][6]),
        schema_uri=str(tmp_path / "absent.pbtxt"), mlflow_tracking_uri=week["mlflow"],
        registered_model_name=MODEL, accelerator_count=0,
    )
    assert result.error.startswith("step check-data failed:"), result.error
    assert "absent.pbtxt" in result.error and "does not exist" in result.error, result.error


def test_reproduce_retrains_production_and_matches_its_recorded_metrics(week):
    from launch import lineage

    record = lineage.reproduce(week["mlflow"], f"{MODEL}@production")
    assert record["version"] == "3"
    metrics = record["metrics"]
    assert {"eval_auc", "roc_auc", "accuracy"} <= set(metrics), metrics
    worst = max(m["difference"] for m in metrics.values())
    assert worst <= 1e-3, metrics


def test_reproduce_refuses_when_the_data_changed_since(week):
    from launch import lineage

    shutil.copyfile(week["days"][1], week["data_uri"])  # the fixed URI moved on
    with pytest.raises(ValueError, match="changed since version 3"):
        lineage.reproduce(week["mlflow"], f"{MODEL}@production")


# --------------------------------------------------------------------------- monitoring


def demo_csv(scenario: str, seed: int, rows: int) -> str:
    return make_demo_data(rows=rows, seed=seed, scenario=scenario, file_format="csv").outputs["data"].path


def demo_rows(scenario: str, seed: int, rows: int) -> list[dict]:
    """make_demo_data's rows as a client sends them (CSV read back: numbers as numbers)."""
    with open(demo_csv(scenario, seed, rows), newline="") as stream:
        return [{k: _value(v) for k, v in row.items()} for row in csv.DictReader(stream)]


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text if text else None


def send(week, rows: list[dict], request_id: str) -> int:
    """One v1 request per row (label left out); returns the HTTP status."""
    instance = {k: v for k, v in rows[0].items() if k != "churned"}
    request = urllib.request.Request(
        f"{week['url']}/v1/models/{MODEL}:predict",
        data=json.dumps({"instances": [instance]}).encode(),
        headers={"Content-Type": "application/json", "x-request-id": request_id},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture(scope="module")
def webhook():
    """Where the run summaries (and so the alerts) are posted."""
    posts: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", posts
    server.shutdown()


def monitor(week, webhook, labels_uri: str = "") -> local.RunResult:
    result = local.run_pipeline(
        "monitoring",
        week["root"],
        log_uri=str(week["root"] / LOGS),
        training_data_uri=str(week["fresh"]),
        service_name=MODEL,
        labels_uri=labels_uri,
        epochs=6,
        change_thresholds={"auc": 0.05},
        mlflow_tracking_uri=week["mlflow"],
        registered_model_name=MODEL,
        deploy_target="local",
        local_serving_dir=str(week["serving_dir"]),
        local_endpoint=week["url"],
        accelerator_count=0,
        webhook_url=webhook[0],
    )
    assert not result.error, result.error
    return result


def test_monitoring_healthy_traffic_with_a_few_bad_requests_retrains_nothing(week, webhook):
    logs = week["root"] / LOGS
    week["url"] = local.ensure_model_server(
        week["serving_dir"], port=week["serving_port"], name=week["names"]["serving"], log_dir=logs
    )
    week["fresh"] = week["root"] / INCOMING / "fresh.csv"  # what a retraining trains on
    shutil.copyfile(demo_csv("none", 12, ROWS), week["fresh"])
    fresh = demo_rows("none", 13, 20)
    statuses = [send(week, [row], f"healthy-{i}") for i, row in enumerate(demo_rows("none", 9, 1000))]
    unseen = [send(week, [{**row, "plan": "enterprise"}], f"unseen-{i}") for i, row in enumerate(fresh[:15])]
    wrong = [send(week, [{**row, "age": "forty"}], f"wrong-{i}") for i, row in enumerate(fresh[15:20])]
    assert set(statuses) == {200} and set(unseen) == {200} and set(wrong) == {400}

    result = monitor(week, webhook)

    health = result.gate("model-is-healthy")
    details = verdict(health)["details"]
    assert health["passed"] and details["action"] == "none", health
    assert not any(step.startswith("train-model") for step in result.steps), result.steps
    checks = {c["name"]: c for c in verdict(health)["checks"]}
    # served rows only (the 400s are not); healthy traffic has a few out-of-range values too
    assert 15 / 1015 <= checks["flagged_share"]["value"] <= 0.05, checks["flagged_share"]
    assert "plan unseen_category x15" in checks["flagged_share"]["reason"], checks["flagged_share"]
    assert checks["error_rate"]["value"] == round(5 / 1020, 6), checks["error_rate"]  # the 400s
    assert production(week) == "3"


def test_monitoring_shifted_traffic_and_late_labels_retrain_promote_and_alert(week, webhook):
    logs = week["root"] / LOGS
    for entry in logs.iterdir():  # each window judges its own traffic
        shutil.rmtree(entry)
    shifted = demo_rows("drift", 11, 1200)
    labels = demo_rows("label_shift", 11, 1200)  # the same customers; the label no longer follows
    assert {send(week, [row], f"shifted-{i}") for i, row in enumerate(shifted)} == {200}
    labels_uri = week["root"] / INCOMING / "labels.csv"
    with open(labels_uri, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["request_id", "churned"])
        writer.writerows((f"shifted-{i}", row["churned"]) for i, row in enumerate(labels))

    result = monitor(week, webhook, labels_uri=str(labels_uri))

    health = result.gate("model-is-healthy")
    details = verdict(health)["details"]
    assert not health["passed"] and details["action"] == "retrain", health
    causes = failed_checks(health)
    assert any("monthly_charges" in subject for subject in causes), causes  # the cause is named
    measured = [c for c in verdict(health)["checks"] if c["name"] == "performance" and c["status"] == "fail"]
    assert measured and "1200 labelled rows" in measured[0]["reason"], measured
    # retrained on the fresh data, through the same gates, and promoted
    assert result.gate("data-is-valid")["passed"] and result.gate("model-is-blessed")["passed"]
    assert result.gate("deployment-is-healthy")["passed"]
    assert production(week) == "4" and served(week)[0] == "4"
    alert = webhook[1][-1]
    assert "model-is-healthy" in json.dumps(alert), alert
