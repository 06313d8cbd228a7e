"""register_model against a real MLflow server: version, lineage tags, alias, round trip."""

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import saved_models

from components import model_io, registry, uris
from components.deploy_model import _local, _smoke
from components.make_demo_data import runtime as demo
from components.register_model import runtime


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
        "details": {},
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
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_unblessed_model_is_refused(model_dir, mlflow_server, tmp_path):
    with pytest.raises(runtime.NotBlessedError, match="failed its gate"):
        register(model_dir, mlflow_server, tmp_path, "churn-unblessed", blessing=blessing(passed=False))


def test_unreachable_server_names_the_uri(model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)
    with pytest.raises(registry.RegistryUnavailable, match=r"http://127.0.0.1:9 did not answer after 2"):
        register(model_dir, "http://127.0.0.1:9", tmp_path, "churn-x", registry_attempts=2)


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
