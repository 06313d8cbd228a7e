"""train_model as a platform's job (components/train_model/job.py): the entry point run as
real processes, as a job's replicas run it, and the launcher's side around it.

The launcher writes the spec into a staging folder, the replicas (``python -m
components.train_model.job --spec URI``) train, the chief stages the outputs and result.json,
and the launcher collects them into KFP output artifacts. Once in one process with the staging
folder in an S3-compatible store (minio://, a Kubeflow pipeline root), once as two processes
on loopback that get only Vertex AI's ``CLUSTER_SPEC`` (no ``TF_CONFIG``), as a CustomJob's
workerpool0 and workerpool1 replicas do. Model quality and the equivalence with a single-worker
run are test_multi_worker.py's; this proves the job's plumbing, on 320 rows and 2 epochs.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import free_port
from kfp import dsl

from components import uris
from components.train_model import job

ARGS = dict(  # 320 rows: 256 train, 64 eval
    label="churned", exclude_features=["signup_timestamp"], epochs=2, batch_size=32, learning_rate=0.01,
    dropout=0.0, early_stopping_patience=0, hidden_units=[8], seed=7,
)
STAGED = sorted([
    "eval_data.parquet", "model", "model/1/saved_model.pb", "result.json", "spec.json", "tensorboard",
    "tensorboard/training_log.csv",
])
REPLICA_TIMEOUT_S = 300  # a hung collective fails the test instead of hanging it


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[str, str]:
    """Demo data and its TFDV schema (text proto, as check_data writes it)."""
    import tensorflow_data_validation as tfdv

    from components.make_demo_data import runtime as demo

    folder = tmp_path_factory.mktemp("inputs")
    df = demo.generate(320, seed=0)
    data = str(demo.write(df, folder / "demo.csv"))
    schema = tfdv.infer_schema(tfdv.generate_statistics_from_dataframe(df))
    tfdv.write_schema_text(schema, str(folder / "schema.pbtxt"))
    return data, str(folder / "schema.pbtxt")


def replica(spec_uri: str, log: Path, **env) -> subprocess.Popen:
    """One replica of the job: the entry point in its own process, with the platform's env."""
    clean = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "CLUSTER_SPEC")}
    clean.update(TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1", **env)
    with open(log, "w") as out:
        return subprocess.Popen(job.command(spec_uri), env=clean, stdout=out, stderr=subprocess.STDOUT)


def finish(processes: list[subprocess.Popen], logs: list[Path]) -> None:
    for process in processes:
        try:
            process.wait(timeout=REPLICA_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
    failed = [(p, log) for p, log in zip(processes, logs, strict=True) if p.wait() != 0]
    assert not failed, "\n\n".join(f"{log.name}:\n{log.read_text()[-4000:]}" for _, log in failed)


def staged(output_uri: str) -> list[str]:
    """The staging folder's top-level entries, with the two files that mark a complete model
    and training log."""
    base = uris.filesystem_for(output_uri)[1].rstrip("/")
    files = {p[len(base) + 1:] for p in uris.list_files(output_uri)}
    marks = {"model/1/saved_model.pb", "tensorboard/training_log.csv"} & files
    return sorted({f.split("/")[0] for f in files} | marks)


def kfp_outputs(root: Path):
    """The launcher task's outputs as KFP's executor hands them over (local URIs here)."""
    model = dsl.Model(name="model", uri=str(root / "model"))
    eval_data = dsl.Dataset(name="eval_data", uri=str(root / "eval_data"))
    eval_data.uri += ".parquet"  # as the launchers do, like train_model
    return model, eval_data, dsl.Metrics(name="metrics", uri=str(root / "metrics")), dsl.Artifact(
        name="tensorboard", uri=str(root / "tensorboard"))


def collect_into(output_uri: str, root: Path):
    model, eval_data, metrics, tensorboard = kfp_outputs(root)
    result = job.collect(output_uri, model_dir=model.path, eval_data_path=eval_data.path,
                         tensorboard_dir=tensorboard.path)
    job.apply(result, model=model, eval_data=eval_data, metrics=metrics)
    return model, eval_data, metrics, tensorboard


def test_one_replica_stages_in_an_object_store_and_the_launcher_collects_kfp_outputs(
    tmp_path, s3_env, inputs
):
    import pandas as pd

    from components import model_io

    data, schema = inputs
    model_uri = f"minio://{s3_env}/root/run-1/train-model-on-kubeflow/model"
    output_uri = f"{model_uri}_job"
    launcher_values = {**ARGS, "data_uri": data, "replica_count": 1, "machine_type": "n1-standard-8",
                       "checkpoint_uri": job.checkpoint_folder("", model_uri)}
    args = job.training_args(launcher_values)
    assert "replica_count" not in args and "machine_type" not in args
    spec_uri = job.write_spec(output_uri, args, schema_path=schema)
    assert json.loads(uris.read_bytes(spec_uri))["schema_uri"] == f"{output_uri}/schema.pbtxt"

    finish([replica(spec_uri, tmp_path / "replica.log")], [tmp_path / "replica.log"])

    assert staged(output_uri) == sorted([*STAGED, "schema.pbtxt"])
    assert uris.list_files(f"{model_uri}_checkpoints"), "the checkpoint folder is the object store's too"
    model, eval_data, metrics, tensorboard = collect_into(output_uri, tmp_path / "outputs")
    # What train_model's own component would have put on its outputs.
    assert model.metadata["strategy"] == "default" and model.metadata["data_uri"] == data
    assert model.metadata["features"]["plan"] == "string"  # typed from the staged schema
    assert metrics.metadata["epochs"] == 2 and metrics.metadata["train_rows"] == 256
    assert "eval_auc" in metrics.metadata
    rows = pd.read_parquet(eval_data.path)
    assert len(rows) == eval_data.metadata["rows"] == 64
    assert model_io.predict(model.path, rows).shape[0] == 64
    assert (Path(tensorboard.path) / "training_log.csv").is_file()


def test_two_replicas_with_vertex_cluster_spec_train_together_and_only_the_chief_stages(tmp_path, inputs):
    data, _ = inputs
    output_uri = str(tmp_path / "model_job")
    args = job.training_args({**ARGS, "data_uri": data, "checkpoint_uri": str(tmp_path / "checkpoints")})
    spec_uri = job.write_spec(output_uri, args)
    pools = {"workerpool0": [f"127.0.0.1:{free_port()}"], "workerpool1": [f"127.0.0.1:{free_port()}"]}
    logs = [tmp_path / "workerpool0.log", tmp_path / "workerpool1.log"]
    replicas = [
        replica(spec_uri, log, CLUSTER_SPEC=json.dumps(
            {"cluster": pools, "environment": "cloud", "task": {"type": pool, "index": 0}}))
        for pool, log in zip(pools, logs, strict=True)
    ]
    finish(replicas, logs)

    chief_log, worker_log = (log.read_text() for log in logs)
    assert "TF_CONFIG from Vertex AI's CLUSTER_SPEC" in chief_log and "TF_CONFIG from" in worker_log
    assert "chief: outputs written" in chief_log and "the chief writes the outputs" in worker_log
    assert staged(output_uri) == STAGED  # each output once: the chief's
    model, _, metrics, _ = collect_into(output_uri, tmp_path / "outputs")
    assert model.metadata["strategy"] == "multi_worker_mirrored"
    assert metrics.metadata["train_rows"] == 256 and metrics.metadata["epochs"] == 2


def test_a_job_that_left_no_result_is_an_error_and_a_new_spec_drops_an_old_result(tmp_path):
    output_uri = str(tmp_path / "model_job")
    (tmp_path / "model_job").mkdir()
    (tmp_path / "model_job" / "result.json").write_text("{}")  # an earlier job's
    job.write_spec(output_uri, {"label": "churned", "data_uri": "gs://acme/data.csv"})
    with pytest.raises(job.JobOutputError, match=r"left no .*model_job/result.json: its chief"):
        collect_into(output_uri, tmp_path / "outputs")
    with pytest.raises(ValueError, match=r"not \['replica_count'\]"):
        job.write_spec(output_uri, {"label": "churned", "data_uri": "x.csv", "replica_count": 2})
    with pytest.raises(ValueError, match="needs data_uri"):
        job.write_spec(output_uri, {"label": "churned"})
