"""register_model against a real MLflow server: version, lineage tags, alias, round trip; the
version is an MLflow model (pyfunc, signature, input example, LoggedModel) of the training run."""

import json
import shutil
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import saved_models
from conftest import stop
from relay import Relay

from components import model_io, registry, uris
from components.deploy_model import _local, _smoke
from components.make_demo_data import runtime as demo
from components.register_model import runtime
from components.train_model import runtime as train_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("model")
    metadata = saved_models.build(path)
    metadata.update(data_hash="ab" * 32, data_uri="gs://bucket/data/train.parquet")
    return path, metadata


def blessing(passed=True):
    return {
        "gate": "model-is-blessed",
        "passed": passed,
        "summary": "model-is-blessed: PASSED (2 checks, 0 warnings)",
        "checks": [
            {
                "name": "auc_min",
                "subject": "auc",
                "status": "pass",
                "reason": "ok",
                "value": 0.81,
                "threshold": 0.7,
                "kind": "absolute",
            },
            {
                "name": "auc_change",
                "subject": "auc",
                "status": "pass",
                "reason": "ok",
                "value": 0.004,
                "threshold": 0.01,
                "kind": "change",
            },
        ],
        "notes": [],
        "details": {
            "candidate": {"metrics": {"roc_auc": 0.81, "accuracy": 0.77}},
            "baseline": {"metrics": {"roc_auc": 0.806}},
        },
    }


def register(model_dir, mlflow_server, tmp_path, name, **kwargs):
    path, metadata = model_dir
    run_root = tmp_path / "pipeline-root"  # the run's scratch space
    run_root.mkdir(exist_ok=True)
    files = {
        "blessing": json.dumps(kwargs.pop("blessing", blessing())),
        "schema": 'feature { name: "age" type: INT }\n',
        "statistics": "binary statistics",
        "anomalies": "anomaly_info {}\n",
    }
    for key, text in files.items():
        (run_root / key).write_text(text)
    return runtime.run(
        model_dir=str(path),
        model_metadata=metadata,
        model_uri="gs://bucket/pipeline/model",
        registered_model_name=name,
        mlflow_tracking_uri=mlflow_server,
        lineage_paths={key: str(run_root / key) for key in files},
        pipeline_artifact_uris={key: f"minio://mlpipeline/v2/artifacts/run-123/{key}" for key in files},
        output_path=str(tmp_path / "registered.json"),
        **{"pipeline_run_id": f"run-{uuid.uuid4().hex[:8]}", **kwargs},
    )


def test_registers_a_version_with_lineage(model_dir, mlflow_server, tmp_path, monkeypatch):
    first = register(model_dir, mlflow_server, tmp_path, "churn-register", pipeline_run_id="run-122")
    second = register(model_dir, mlflow_server, tmp_path, "churn-register", pipeline_run_id="run-123")
    shutil.rmtree(tmp_path / "pipeline-root")  # a lifecycle rule empties the pipeline root

    assert (first["version"], second["version"]) == ("1", "2")
    assert second["model_uri"] == "models:/churn-register/2"
    assert json.loads((tmp_path / "registered.json").read_text()) == second
    client = registry.client(mlflow_server)
    version = client.get_model_version("churn-register", "2")
    assert version.run_id == second["run_id"]
    assert version.tags["data_hash"] == "ab" * 32
    assert version.tags["data_uri"] == "gs://bucket/data/train.parquet"
    # lineage lives in MLflow, with the registration run, and reads back through the URI layer
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    for key, file in registry.LINEAGE_FILES.items():
        if key in ("eval_data", "predictions"):
            assert registry.lineage_tag(key) not in version.tags  # not given: not recorded
            continue
        assert version.tags[registry.lineage_tag(key)] == f"runs:/{second['run_id']}/{file}"
    assert uris.read_bytes(version.tags["schema_uri"]) == b'feature { name: "age" type: INT }\n'
    assert uris.read_bytes(version.tags["statistics_uri"]) == b"binary statistics"
    assert json.loads(uris.read_bytes(version.tags["blessing_uri"]))["passed"] is True
    recorded = json.loads(version.tags["pipeline_artifact_uris"])
    assert recorded["schema"] == "minio://mlpipeline/v2/artifacts/run-123/schema"
    assert version.tags["pipeline_run_id"] == "run-123"
    assert version.tags["evaluation.passed"] == "true"
    assert version.tags["evaluation.auc_min.auc"] == "0.81"
    assert "PASSED" in version.tags["evaluation.summary"]
    assert version.tags["image_version"]
    # the alias moved to the new version; stages are never used
    assert registry.version_by_alias(mlflow_server, "churn-register", "candidate").version == "2"
    assert all(
        v.current_stage in ("None", "", None) for v in client.search_model_versions("name='churn-register'")
    )


def test_download_round_trip_gives_a_servable_folder(model_dir, mlflow_server, tmp_path):
    register(model_dir, mlflow_server, tmp_path, "churn-roundtrip")
    folder = registry.download_model(mlflow_server, "churn-roundtrip", "candidate", str(tmp_path / "dl"))
    assert (Path(folder) / "1" / "saved_model.pb").is_file()
    frame = demo.generate(20, seed=3)
    np.testing.assert_allclose(model_io.predict(folder, frame), model_io.predict(str(model_dir[0]), frame))


def test_server_cli_serves_a_registered_version(model_dir, mlflow_server, tmp_path):
    register(model_dir, mlflow_server, tmp_path, "churn-served")
    port = _local.free_port()
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "components.model_server",
            "--registered-model",
            "churn-served",
            "--alias",
            "candidate",
            "--tracking-uri",
            mlflow_server,
            "--http-port",
            str(port),
            "--download-dir",
            str(tmp_path / "served"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _smoke.wait_until_ready(url, "churn-served", 120, proc)
        frame = demo.generate(10, seed=4)[list(saved_models.FEATURES)]
        served = _smoke.predict_v1(url, "churn-served", frame)
        np.testing.assert_allclose(served, model_io.predict(str(model_dir[0]), frame), atol=1e-6)
    finally:
        stop(proc)
        log.close()


def test_unblessed_model_is_refused(model_dir, mlflow_server, tmp_path):
    with pytest.raises(runtime.NotBlessedError, match="failed its gate"):
        register(model_dir, mlflow_server, tmp_path, "churn-unblessed", blessing=blessing(passed=False))


def test_unreachable_server_names_the_uri(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # MLflow's own retries
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    with pytest.raises(registry.RegistryUnavailable, match=r"http://127.0.0.1:9 did not answer after 2"):
        register(model_dir, "http://127.0.0.1:9", tmp_path, "churn-x")


def test_tracking_uri_comes_from_the_environment(model_dir, mlflow_server, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    result = register(model_dir, "", tmp_path, "churn-env")
    assert result["tracking_uri"] == mlflow_server


@pytest.mark.parametrize("alias", ["latest", "v3", "has space"])
def test_reserved_or_malformed_alias_is_rejected(model_dir, tmp_path, alias):
    with pytest.raises(ValueError, match="alias"):
        register(model_dir, "http://127.0.0.1:9", tmp_path, "churn-y", alias=alias)


def test_a_retry_of_the_same_pipeline_run_reuses_its_version(model_dir, mlflow_server, tmp_path):
    first = register(model_dir, mlflow_server, tmp_path, "churn-retry", pipeline_run_id="job-42")
    retry = register(model_dir, mlflow_server, tmp_path, "churn-retry", pipeline_run_id="job-42")
    other = register(model_dir, mlflow_server, tmp_path, "churn-retry", pipeline_run_id="job-43")
    assert retry["version"] == first["version"] == "1" and retry["run_id"] == first["run_id"]
    assert other["version"] == "2"
    versions = registry.client(mlflow_server).search_model_versions("name='churn-retry'")
    assert sorted(v.version for v in versions) == ["1", "2"]


# --- the version is an MLflow model ---------------------------------------------------------------


def test_the_version_is_an_mlflow_model_in_the_tf_serving_layout(model_dir, mlflow_server, tmp_path):
    result = register(model_dir, mlflow_server, tmp_path, "churn-mlmodel")
    client = registry.client(mlflow_server)
    version = client.get_model_version("churn-mlmodel", result["version"])
    assert version.source.startswith("models:/m-")  # registered from an MLflow 3 LoggedModel
    logged = client.get_logged_model(version.source.removeprefix("models:/"))
    assert logged.source_run_id == version.run_id == result["run_id"]
    assert json.loads(logged.tags["mlflow.modelVersions"]) == [{"name": "churn-mlmodel", "version": 1}]
    assert result["source"] == logged.artifact_location  # what KServe's storageUri gets
    folder = Path(registry.download_model(mlflow_server, "churn-mlmodel", "candidate", str(tmp_path / "dl")))
    assert (folder / "MLmodel").is_file() and (folder / "1" / "saved_model.pb").is_file()
    info = mlflow.models.get_model_info(f"models:/churn-mlmodel/{result['version']}")
    assert info.flavors["python_function"]["loader_module"] == "components.register_model.mlflow_model"
    inputs = {c["name"]: c["type"] for c in info.signature.inputs.to_dict()}
    assert list(inputs) == list(model_io.serving_inputs(model_io.load(str(model_dir[0]))))
    assert inputs["plan"] == "string" and inputs["contract_type"] == "long"
    example = json.loads((folder / "input_example.json").read_text())
    assert example["columns"] == list(inputs)


def test_a_trained_model_loads_with_mlflow_and_predicts_like_the_serving_path(mlflow_server, tmp_path):
    """KFP's MLflow integration gives each task a nested run of the pipeline's run: training logs
    into its run, registration links the version to it and opens no run of its own; then
    ``mlflow.pyfunc.load_model("models:/NAME@production")`` predicts what model_io and the model
    server predict from the registered copy."""
    client = registry.client(mlflow_server)
    kfp_experiment = client.create_experiment(f"kfp-{uuid.uuid4().hex[:6]}")
    parent = client.create_run(kfp_experiment, run_name="pipeline-run").info.run_id

    def task_run(name):  # what KFP's driver injects into a task's container
        run = client.create_run(kfp_experiment, run_name=name, tags={"mlflow.parentRunId": parent})
        return {"MLFLOW_RUN_ID": run.info.run_id, "MLFLOW_EXPERIMENT_ID": kfp_experiment}

    data = demo.write(demo.generate(800, seed=5), tmp_path / "train.csv")
    eval_rows = tmp_path / "eval.parquet"
    train_env, register_env = task_run("train-model"), task_run("register-model")
    with pytest.MonkeyPatch.context() as env:
        for key, value in train_env.items():
            env.setenv(key, value)
        trained = train_model.run(
            data_uri=str(data), model_dir=str(tmp_path / "model"), eval_data_path=str(eval_rows),
            label=demo.LABEL, epochs=2, early_stopping_patience=0, verbose=0,
            mlflow_tracking_uri=mlflow_server,
        )
    assert trained.model_metadata["mlflow_run_id"] == train_env["MLFLOW_RUN_ID"]  # no run of its own

    name = f"churn-trained-{uuid.uuid4().hex[:6]}"
    (tmp_path / "blessing.json").write_text(json.dumps(blessing()))
    with pytest.MonkeyPatch.context() as env:
        for key, value in register_env.items():
            env.setenv(key, value)
        result = runtime.run(
            model_dir=str(tmp_path / "model"), model_metadata=trained.model_metadata, model_uri="",
            registered_model_name=name, mlflow_tracking_uri=mlflow_server, alias="production",
            lineage_paths={"eval_data": str(eval_rows), "blessing": str(tmp_path / "blessing.json")},
        )

    # The version's source run is the training run: params, epochs, fingerprint, evaluation.
    version = client.get_model_version(name, result["version"])
    assert version.run_id == result["run_id"] == train_env["MLFLOW_RUN_ID"]
    run = client.get_run(version.run_id)
    assert run.data.params["epochs"] == "2" and run.data.params["task"] == "binary"
    assert run.data.tags["data_hash"] == trained.model_metadata["data_hash"] == version.tags["data_hash"]
    assert sorted(m.step for m in client.get_metric_history(version.run_id, "loss")) == [0, 1]
    assert run.data.metrics["evaluation.roc_auc"] == 0.81
    assert run.data.metrics["evaluation.baseline.roc_auc"] == 0.806
    logged = client.get_logged_model(version.source.removeprefix("models:/"))
    assert logged.source_run_id == version.run_id
    assert {m.key for m in logged.metrics} >= {"evaluation.roc_auc", "loss", "val_loss"}
    assert version.tags["eval_data_uri"] == f"runs:/{version.run_id}/lineage/eval_data.parquet"
    # Registration opened no run: the KFP experiment holds the parent and the two task runs.
    runs = client.search_runs([kfp_experiment])
    assert sorted(r.info.run_id for r in runs) == sorted(
        [parent, train_env["MLFLOW_RUN_ID"], register_env["MLFLOW_RUN_ID"]]
    )
    assert client.get_run(register_env["MLFLOW_RUN_ID"]).data.tags["registered_model"] == f"{name}/1"

    # MLflow loads it; it predicts as model_io does and as the model server serving the registered copy.
    rows = pd.read_parquet(eval_rows)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@production")
    loaded = pyfunc.predict(rows)
    np.testing.assert_allclose(loaded, model_io.predict(str(tmp_path / "model"), rows), rtol=1e-6)
    served_dir = registry.download_model(mlflow_server, name, "production", str(tmp_path / "served"))
    model = model_io.load(served_dir)
    dtypes = {n: d.name for n, d in model_io.serving_inputs(model).items()}
    with _local.LocalServer(served_dir, name, 120, str(tmp_path / "server.log")) as server:
        served = _smoke.predict_v1(server.url, name, rows.head(50)[list(dtypes)], dtypes)
    np.testing.assert_allclose(served, loaded[:50], atol=1e-6)


def test_untracked_training_logs_into_the_injected_run(model_dir, mlflow_server, tmp_path, monkeypatch):
    client = registry.client(mlflow_server)
    kfp_experiment = client.create_experiment(f"kfp-{uuid.uuid4().hex[:6]}")
    injected = client.create_run(kfp_experiment, run_name="register-model").info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", injected)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", kfp_experiment)
    experiment = f"untouched-{uuid.uuid4().hex[:6]}"
    result = register(model_dir, mlflow_server, tmp_path, "churn-injected", experiment=experiment)
    assert result["run_id"] == injected
    assert client.get_experiment_by_name(experiment) is None  # no run opened elsewhere
    assert [r.info.run_id for r in client.search_runs([kfp_experiment])] == [injected]
    assert client.get_run(injected).data.tags["pipeline_run_id"].startswith("run-")


def _status_rewriter(mlflow_server, statuses: list[str], calls: list[str]):
    """A registry that copies artifacts asynchronously: create-model-version answers
    PENDING_REGISTRATION, get-model-version the next of ``statuses`` (then as the real server
    does). Every call's endpoint is recorded in ``calls``."""

    def intercept(method, path, body):
        endpoint = path.split("?")[0]
        calls.append(endpoint)
        created = endpoint.endswith("/model-versions/create")
        if created or (endpoint.endswith("/model-versions/get") and statuses):
            request = urllib.request.Request(
                mlflow_server + path, data=body, method=method, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request) as response:
                answer = json.load(response)
            status = "PENDING_REGISTRATION" if created else statuses.pop(0)
            answer["model_version"].update(status=status, status_message="copy failed: quota exceeded")
            return 200, json.dumps(answer).encode()
        return None

    return intercept


def test_the_alias_moves_only_once_the_version_is_ready(model_dir, mlflow_server, tmp_path):
    calls: list[str] = []
    pending = ["PENDING_REGISTRATION", "PENDING_REGISTRATION"]
    with Relay(lambda host, path: mlflow_server, _status_rewriter(mlflow_server, pending, calls)) as relay:
        result = register(model_dir, relay.url, tmp_path, "churn-pending")
    gets = [i for i, c in enumerate(calls) if c.endswith("/model-versions/get")]
    alias = calls.index("/api/2.0/mlflow/registered-models/alias")
    assert len(gets) == 3 and gets[-1] < alias  # pending, pending, READY, then the alias
    assert registry.version_by_alias(mlflow_server, "churn-pending", "candidate").version == result["version"]


def test_a_failed_registration_moves_no_alias(model_dir, mlflow_server, tmp_path):
    calls: list[str] = []
    failing = _status_rewriter(mlflow_server, ["FAILED_REGISTRATION"], calls)
    with Relay(lambda host, path: mlflow_server, failing) as relay:
        with pytest.raises(registry.VersionNotReady, match=r"is FAILED_REGISTRATION, not READY: copy failed"):
            register(model_dir, relay.url, tmp_path, "churn-failed")
    assert "/api/2.0/mlflow/registered-models/alias" not in calls
    assert registry.version_by_alias(mlflow_server, "churn-failed", "candidate") is None
