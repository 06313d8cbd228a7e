"""The compiled training pipeline, end to end under kfp.local in the runtime image, with a real
MLflow server and a real KServe model server: good data, corrupted data, a worse candidate.

The scenarios build on each other (production is established by the first), so they run in
file order and share one pipeline root.
"""

import json
import socket
import urllib.request
from pathlib import Path

import pytest

from components import make_demo_data
from launch import local

MODEL = "e2e-churn"
ROWS = 1500


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = local.init(tmp_path_factory.mktemp("e2e"))
    names = {"mlflow": "kfp-ct-mlflow-e2e", "serving": "kfp-ct-serving-e2e"}
    mlflow_uri = local.ensure_mlflow(root / "mlflow", port=free_port(), name=names["mlflow"])
    env = {
        "root": root,
        "mlflow": mlflow_uri,
        "serving_dir": root / "serving",
        "serving_port": free_port(),
        "names": names,
    }
    env["serving_dir"].mkdir()
    yield env
    for name in names.values():
        local.stop_container(name)


def data(scenario: str) -> str:
    return make_demo_data(rows=ROWS, seed=0, scenario=scenario, file_format="csv").outputs["data"].path


def run(env, data_uri: str, endpoint: str = "") -> local.RunResult:
    return local.run_pipeline(
        "training",
        env["root"],
        data_uri=data_uri,
        epochs=6,
        batch_size=32,
        thresholds={"auc": 0.65},
        change_thresholds={"auc": 0.02},
        mlflow_tracking_uri=env["mlflow"],
        registered_model_name=MODEL,
        service_name=MODEL,
        deploy_target="local",
        local_serving_dir=str(env["serving_dir"]),
        local_endpoint=endpoint,
        accelerator_count=0,
    )


def predict(url: str, instance: dict) -> list:
    request = urllib.request.Request(
        f"{url}/v1/models/{MODEL}:predict",
        data=json.dumps({"instances": [instance]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["predictions"]


INSTANCE = {
    "signup_timestamp": 1600000000, "age": 40, "tenure_months": 3, "monthly_charges": 80.5,
    "total_charges": 241.5, "support_calls": 4, "plan": "basic", "region": "north",
    "payment_method": "voucher", "contract_type": 0,
}


def newest_run_dir(root: Path) -> Path:
    runs = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("training-")]
    return max(runs, key=lambda p: p.stat().st_mtime)


def test_a_good_data_is_registered_promoted_and_served(env):
    result = run(env, data("none"))
    assert not result.error, result.error
    assert result.gate("data-is-valid")["passed"], result.gate("data-is-valid")
    assert result.gate("model-is-blessed")["passed"], result.gate("model-is-blessed")
    assert result.gate("deployment-is-healthy")["passed"], result.gate("deployment-is-healthy")
    assert result.summary["state"] == "SUCCEEDED"
    assert {"validate-data", "train-model", "evaluate-model", "deploy-model"} <= set(result.steps)

    version = local.mlflow_alias_version(env["mlflow"], MODEL, "production")
    assert version == local.mlflow_alias_version(env["mlflow"], MODEL, "candidate") == "1"

    names = env["names"]
    url = local.ensure_model_server(env["serving_dir"], port=env["serving_port"], name=names["serving"])
    env["url"] = url
    env["served_before"] = predict(url, INSTANCE)
    assert 0.0 <= float(env["served_before"][0]) <= 1.0


def test_b_corrupted_data_stops_at_the_data_gate(env):
    result = run(env, data("type_change"), endpoint=env["url"])
    gate = result.gate("data-is-valid")
    assert gate is not None and gate["passed"] is False
    assert any(f["subject"] == "age" for f in gate["failures"]), gate["failures"]
    assert result.gate("model-is-blessed") is None  # evaluation never ran
    assert not (newest_run_dir(env["root"]) / "train-model").exists()  # training never ran
    assert result.summary["stopped_at_gate"] == "data-is-valid"
    assert local.mlflow_alias_version(env["mlflow"], MODEL, "production") == "1"


def test_c_worse_candidate_is_not_blessed_and_production_keeps_serving(env):
    result = run(env, data("label_shift"), endpoint=env["url"])
    assert result.gate("data-is-valid")["passed"], result.gate("data-is-valid")
    blessing = result.gate("model-is-blessed")
    assert blessing["passed"] is False
    assert any("auc" in (f["subject"] + f["reason"]).lower() for f in blessing["failures"]), blessing
    assert result.gate("deployment-is-healthy") is None
    assert local.mlflow_alias_version(env["mlflow"], MODEL, "production") == "1"
    assert predict(env["url"], INSTANCE) == env["served_before"]


def test_d_the_production_version_can_be_served_from_the_registry(env):
    port = free_port()
    url = local.serve_model(
        name=MODEL, registered_model=MODEL, alias="production", tracking_uri=env["mlflow"], port=port
    )
    try:
        assert predict(url, INSTANCE) == env["served_before"]
    finally:
        local.stop_container(f"kfp-ct-serve-{MODEL}")
