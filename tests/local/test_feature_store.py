"""The feature-store training pipeline end to end under kfp.local, in the runtime image, with a
real MLflow server: the demo Feast repository written and applied, its online store loaded by
materialize_features, then pipelines/training_feature_store.yaml once: build_training_set's
point-in-time training set through the gates to a registered, deployed model that carries the
training set's lineage record. One run, small data, few epochs."""

import json
import socket
from pathlib import Path

import pytest

from components import materialize_features
from launch import local

MODEL = "feast-churn"
CUSTOMERS = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_image(root: Path, code: str) -> str:
    """The last line ``python -c code`` prints in the runtime image (the host has no pyarrow)."""
    return local.run_once(["python", "-c", code], [root]).strip().splitlines()[-1]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    services = tmp_path_factory.mktemp("services")
    root = local.init(tmp_path_factory.mktemp("pipeline-root"))
    name = "kfp-ct-mlflow-feature-store"
    mlflow = local.ensure_mlflow(services / "mlflow", port=free_port(), name=name)
    repository = root / "feature_repo"
    written = local.run_once(
        ["python", "-m", "components.make_demo_data.feature_repo", str(repository),
         "--customers", str(CUSTOMERS), "--apply"],
        [root],
    )
    repo = json.loads(written.strip().splitlines()[-1])
    report = materialize_features(repository=str(repository)).outputs["report"]
    materialized = json.loads(Path(report.path).read_text())
    (root / "serving").mkdir()
    result = local.run_pipeline(
        "training_feature_store",
        root,
        retries=False,
        feature_repository=str(repository),
        entity_table_uri=repo["entity_table"],
        feature_service=repo["feature_service"],
        epochs=3,
        batch_size=32,
        thresholds={"auc": 0.6},
        mlflow_tracking_uri=mlflow,
        registered_model_name=MODEL,
        service_name=MODEL,
        deploy_target="local",
        local_serving_dir=str(root / "serving"),
        accelerator_count=0,
    )
    (run_dir,) = [p for p in root.iterdir() if p.name.startswith("training-feature-store-")]
    yield {"root": root, "repo": repo, "materialized": materialized, "result": result, "run_dir": run_dir,
           "mlflow": mlflow}
    local.stop_container(name)


def test_the_run_passes_every_gate_from_a_point_in_time_training_set(run):
    result = run["result"]
    assert not result.error, result.error
    for gate in ("data-is-valid", "model-is-blessed", "deployment-is-healthy"):
        assert result.gate(gate)["passed"], result.gate(gate)
    assert sorted(result.steps) == [
        "build-training-set", "check-data", "deploy-model", "evaluate-model", "register-model",
        "resolve-inputs", "summarize-run", "train-model",
    ], result.steps
    assert local.mlflow_alias_version(run["mlflow"], MODEL, "production") == "1"
    views = {view["name"]: view["entities"] for view in run["materialized"]["views"]}
    assert views == {"customer_daily": CUSTOMERS, "customer_profile": CUSTOMERS}


def test_the_training_set_carries_its_lineage_and_feeds_the_data_gate(run):
    (training_set,) = (run["run_dir"] / "build-training-set").glob("training_set*.parquet")
    record = json.loads(in_image(run["root"], (
        "import json; from components import feature_store; "
        f"print(json.dumps(feature_store.read_record({str(training_set)!r}).to_dict()))"
    )))
    assert record["repository"] == run["repo"]["repository"]
    assert record["feature_refs"] == run["repo"]["feature_refs"]
    assert record["entity_keys"] == ["customer_id"] and record["event_timestamp_column"] == "event_timestamp"
    assert record["registry_version"].startswith("sha256:")
    # resolve-inputs fingerprinted this very file: the gates read the training set.
    data = json.loads((run["run_dir"] / "resolve-inputs" / "data").read_text())
    assert data["data_uri"] == str(training_set)


def test_the_model_folder_carries_the_feature_store_record(run):
    records = list((run["run_dir"] / "train-model").rglob("feature_store.json"))
    assert records, "train_model wrote no feature_store.json into the model"
    record = json.loads(records[0].read_text())
    assert record["feature_refs"] and set(record["feature_refs"]) <= set(run["repo"]["feature_refs"])
    assert record["entity_keys"] == ["customer_id"]
