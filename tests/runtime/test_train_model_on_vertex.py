"""train_model_on_vertex: the launcher's runtime with the real GAPIC JobServiceClient (REST,
configured by aiplatform.init) against the local fake Vertex API (tests/host/fake_vertex.py).

In the runtime image, where the launcher runs: its aiplatform is 1.x (the host's is 2.x; the
GAPIC v1 client is the same in both) and the URI layer has pyarrow. The fake runs no
container: when a job succeeds it stages what the job's chief writes (the worker side is
test_train_model_job.py's), in the folder the job's command names.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))  # the fake Vertex API
from fake_vertex import FakeVertex, sdk_pointed_at  # noqa: E402
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform
from kfp import dsl

import components
from components import images, uris, vertex
from components.train_model import job
from components.train_model_on_vertex import runtime

PROJECT, REGION = "acme-ml", "europe-west4"
MODEL_URI = "gs://acme-pipelines/root/123/train-model-on-vertex/model"
DATA_URI = "gs://acme-data/churn/2026-12-01.csv"
KEY = job.task_key(MODEL_URI)
RESULT = {
    "model_metadata": {"framework": "tensorflow", "strategy": "multi_worker_mirrored", "label": "churned"},
    "eval_data_metadata": {"rows": 64, "label": "churned"},
    "metrics": {"eval_auc": 0.81, "epochs": 2},
}


@pytest.fixture
def vertex_api(monkeypatch):
    """The fake (knowing one project) and the real SDK's configuration pointed at it."""
    monkeypatch.delenv(vertex.PIPELINE_LABELS_ENV, raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with FakeVertex(projects={PROJECT}) as fake, sdk_pointed_at(fake, monkeypatch):
        aiplatform.init(credentials=AnonymousCredentials())
        fake.on_job_succeeded = stage_result
        yield fake


@pytest.fixture
def paths(tmp_path) -> dict:
    """The task's local paths: model_dir stands for the /gcs/ path of MODEL_URI."""
    (tmp_path / "schema.pbtxt").write_text('feature { name: "age" type: INT }\n')
    return dict(
        model_dir=str(tmp_path / "gcs" / "model"), eval_data_path=str(tmp_path / "gcs" / "eval_data.parquet"),
        tensorboard_dir=str(tmp_path / "gcs" / "tensorboard"), schema_path=str(tmp_path / "schema.pbtxt"),
    )


def stage_result(custom_job: dict) -> None:
    """What the job's chief leaves in the staging folder its --spec names."""
    command = custom_job["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["command"]
    staging = Path(command[command.index("--spec") + 1]).parent
    (staging / "model" / "1").mkdir(parents=True, exist_ok=True)
    (staging / "model" / "1" / "saved_model.pb").write_bytes(b"\x08\x01")
    (staging / "tensorboard").mkdir(exist_ok=True)
    (staging / "tensorboard" / "training_log.csv").write_text("epoch,loss\n0,0.6\n1,0.5\n")
    (staging / "eval_data.parquet").write_bytes(b"PAR1 rows PAR1")
    (staging / "result.json").write_text(json.dumps(RESULT))


def train(paths, **overrides):
    arguments = dict(
        model_uri=MODEL_URI, label="churned", data_uri=DATA_URI, project=PROJECT, location=REGION,
        poll_seconds=0.0, **paths,
    )
    return runtime.run(**{**arguments, **overrides})


def created(fake) -> list[dict]:
    """The CustomJobs the launcher sent, as v1 JSON with enum names (aiplatform 1.x's REST
    transport sends enums as numbers, 2.x as names; the API takes both)."""
    from google.cloud.aiplatform_v1 import types
    from google.protobuf import json_format

    return [json_format.MessageToDict(json_format.ParseDict(r.body, types.CustomJob.pb()()))
            for r in fake.calls("POST", r"/customJobs$")]


# ------------------------------------------------------------------------------ the request


def test_the_job_has_vertex_pools_the_trainer_image_the_entry_point_env_and_labels(vertex_api, paths,
                                                                                 monkeypatch):
    monkeypatch.setenv(vertex.PIPELINE_LABELS_ENV, '{"vertex-ai-pipelines-run-billing-id": "8717761889"}')
    train(
        paths, replica_count=3, machine_type="n1-highmem-16", accelerator_type="NVIDIA_TESLA_T4",
        accelerator_count=2, env={"TF_CPP_MIN_LOG_LEVEL": "1"}, labels={"team": "ml"},
        service_account="trainer@acme-ml.iam.gserviceaccount.com",
        network="projects/123456789012/global/networks/ml", pipeline_run_id="training-vertex-20261201",
        trainer_image="europe-docker.pkg.dev/acme/ct/trainer:0.1.0", epochs=7,
    )

    (body,) = created(vertex_api)
    staging = paths["model_dir"] + "_job"
    assert body["displayName"] == f"train-model-{KEY}"
    chief, workers = body["jobSpec"]["workerPoolSpecs"]
    assert chief["replicaCount"] == "1" and workers["replicaCount"] == "2"  # int64: a JSON string
    for pool in (chief, workers):
        assert pool["machineSpec"] == {
            "machineType": "n1-highmem-16", "acceleratorType": "NVIDIA_TESLA_T4", "acceleratorCount": 2}
        assert pool["diskSpec"] == {"bootDiskType": "pd-ssd", "bootDiskSizeGb": 100}
        assert pool["containerSpec"] == {
            "imageUri": "europe-docker.pkg.dev/acme/ct/trainer:0.1.0",
            "command": ["python", "-m", "components.train_model.job", "--spec", f"{staging}/spec.json"],
            "env": [{"name": "TF_CPP_MIN_LOG_LEVEL", "value": "1"}],
        }
    assert body["jobSpec"]["baseOutputDirectory"] == {"outputUriPrefix": f"{MODEL_URI}_job"}
    assert body["jobSpec"]["serviceAccount"] == "trainer@acme-ml.iam.gserviceaccount.com"
    assert body["jobSpec"]["network"] == "projects/123456789012/global/networks/ml"
    assert body["labels"] == {
        "kfp-ct-task": KEY, "kfp-ct-pipeline-run": "training-vertex-20261201", "team": "ml",
        "vertex-ai-pipelines-run-billing-id": "8717761889",
    }
    # What the replicas read: train_model's arguments only, with URIs they reach.
    spec = json.loads(Path(staging, "spec.json").read_text())
    assert spec["output_uri"] == staging and spec["schema_uri"] == f"{staging}/schema.pbtxt"
    assert Path(spec["schema_uri"]).read_text() == Path(paths["schema_path"]).read_text()
    assert spec["args"]["data_uri"] == DATA_URI and spec["args"]["epochs"] == 7
    assert spec["args"]["checkpoint_uri"] == f"{MODEL_URI}_checkpoints"
    assert not set(spec["args"]) & {"replica_count", "machine_type", "project", "env", "labels"}


def test_one_replica_is_the_chief_alone_on_a_cpu_machine_in_this_releases_trainer_image(vertex_api, paths):
    train(paths, replica_count=1, accelerator_type="NVIDIA_TESLA_T4", accelerator_count=0)  # 0: CPU
    (body,) = created(vertex_api)
    (chief,) = body["jobSpec"]["workerPoolSpecs"]
    assert chief["machineSpec"] == {"machineType": "n1-standard-8"}
    assert chief["containerSpec"]["imageUri"] == images.TRAINER_GPU
    assert body["labels"] == {"kfp-ct-task": KEY}


# ------------------------------------------------------------------------------- the job's life


def test_the_job_is_polled_to_success_and_its_outputs_become_the_tasks(vertex_api, paths, caplog):
    caplog.set_level(logging.INFO, logger=runtime.__name__)
    result = train(paths)

    (name,) = vertex_api.custom_jobs
    logged = [r.getMessage() for r in caplog.records]
    states = [m.rsplit(": ", 1)[1] for m in logged if m.startswith(name + ": ")]
    assert states == ["JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"]
    assert len(vertex_api.calls("GET", r"/customJobs/")) == 3  # one read per state change here
    assert result["model_metadata"] == {**RESULT["model_metadata"], "vertex_custom_job": name}
    assert result["metrics"] == RESULT["metrics"]
    assert result["eval_data_metadata"] == RESULT["eval_data_metadata"]
    assert Path(paths["model_dir"], "1", "saved_model.pb").read_bytes() == b"\x08\x01"
    assert Path(paths["eval_data_path"]).read_bytes() == b"PAR1 rows PAR1"
    assert Path(paths["tensorboard_dir"], "training_log.csv").is_file()


def test_reads_the_service_refuses_for_a_while_are_read_again(vertex_api, paths, caplog):
    vertex_api.unavailable_job_reads = 3
    result = train(paths)

    assert result["metrics"] == RESULT["metrics"]
    assert len(vertex_api.calls("GET", r"/customJobs/")) == 3 + 3  # each refused read read again
    refused = [r.getMessage() for r in caplog.records if "trying again" in r.getMessage()]
    assert len(refused) == 3 and "unavailable" in refused[0], refused


def test_a_failed_job_is_an_error_naming_its_message_and_console_page(vertex_api, paths):
    vertex_api.job_plan = ("JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_FAILED")
    vertex_api.job_error = "The replica workerpool1-0 exited with a non-zero status of 137 (out of memory)."
    failed = "JOB_STATE_FAILED: The replica workerpool1-0 exited"
    with pytest.raises(runtime.TrainingJobFailed, match=failed) as caught:
        train(paths)
    job_id = next(iter(vertex_api.custom_jobs)).rsplit("/", 1)[1]
    assert (f"https://console.cloud.google.com/agent-platform/locations/{REGION}/training/{job_id}"
            f"?project={PROJECT}") in str(caught.value)
    assert not Path(paths["model_dir"]).exists()  # nothing collected


def test_a_terminated_task_cancels_its_job(vertex_api, paths):
    def terminate_when_running(custom_job):  # what Kubernetes does to a cancelled run's pod
        if custom_job["state"] == "JOB_STATE_RUNNING":
            os.kill(os.getpid(), signal.SIGTERM)

    vertex_api.on_job_state = terminate_when_running
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(runtime.TaskTerminated, match="SIGTERM.*the custom job was cancelled"):
        train(paths)

    (cancel,) = vertex_api.calls("POST", r":cancel$")
    (name,) = vertex_api.custom_jobs
    assert cancel.path == f"/v1/{name}:cancel"
    assert vertex_api.custom_jobs[name]["state"] == "JOB_STATE_CANCELLING"
    assert signal.getsignal(signal.SIGTERM) is before  # the task's own handler is back
    # Vertex finishes the cancellation; a retry of the task then starts a new job.
    vertex_api.on_job_state = None
    assert runtime._client(REGION).get_custom_job(name=name).state.name == "JOB_STATE_CANCELLED"
    train(paths)
    assert len(created(vertex_api)) == 2


def earlier_attempts_job(plan) -> str:
    """A job of this task run, as an attempt whose pod was lost (no cancel) left it."""
    client = runtime._client(REGION)
    pool = {"machine_spec": {"machine_type": "n1-standard-8"}, "replica_count": 1,
            "container_spec": {"image_uri": images.TRAINER_GPU, "command": ["true"]}}
    return client.create_custom_job(
        parent=f"projects/{PROJECT}/locations/{REGION}",
        custom_job={"display_name": f"train-model-{KEY}", "labels": {runtime.TASK_LABEL: KEY},
                    "job_spec": {"worker_pool_specs": [pool]}},
    ).name


def test_a_retry_waits_for_the_job_its_earlier_attempt_started(vertex_api, paths):
    name = earlier_attempts_job(vertex_api.job_plan)
    Path(paths["model_dir"] + "_job").mkdir(parents=True)
    (Path(paths["model_dir"] + "_job") / "spec.json").write_text("{}")  # the earlier attempt's
    vertex_api.on_job_succeeded = lambda custom_job: stage_result(
        {"jobSpec": {"workerPoolSpecs": [{"containerSpec": {"command": job.command(
            paths["model_dir"] + "_job/spec.json")}}]}})

    result = train(paths)

    assert len(created(vertex_api)) == 1  # the earlier attempt's only
    assert result["model_metadata"]["vertex_custom_job"] == name
    assert (Path(paths["model_dir"] + "_job") / "spec.json").read_text() == "{}"  # not rewritten
    other = train(paths, model_uri=MODEL_URI.replace("/123/", "/124/"))  # another task run: its own job
    assert len(created(vertex_api)) == 2 and other["model_metadata"]["vertex_custom_job"] != name


def test_a_retry_after_a_failed_job_starts_a_new_one(vertex_api, paths):
    vertex_api.job_plan = ("JOB_STATE_FAILED",)
    with pytest.raises(runtime.TrainingJobFailed):
        train(paths)
    vertex_api.job_plan = ("JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED")
    result = train(paths)
    first, second = vertex_api.custom_jobs
    assert len(created(vertex_api)) == 2 and result["model_metadata"]["vertex_custom_job"] == second


# -------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("overrides", "error", "named"),
    [
        ({"replica_count": 0}, ValueError, "replica_count must be at least 1"),
        ({"machine_type": ""}, ValueError, "machine_type"),
        ({"accelerator_count": 1}, ValueError, "accelerator_count 1 needs an accelerator_type"),
        ({"accelerator_type": "nvidia.com/gpu", "accelerator_count": 1}, ValueError,
         "'nvidia.com/gpu' is not a Vertex AI accelerator type"),
        ({"boot_disk_size_gb": 50}, ValueError, "boot_disk_size_gb must be at least 100"),
        ({"labels": {"Team": "ml"}}, ValueError, "label 'Team'"),
        ({"env": {"A=B": "1"}}, ValueError, "env names"),
        ({"project": "{{$.pipeline_google_cloud_project_id}}"}, ValueError, "pass project and location"),
        ({"location": "mars-north1"}, ValueError, "'mars-north1' is not a Vertex AI region"),
        ({"model_uri": "/tmp/local/model"}, uris.UriError, "'/tmp/local/model'"),
        ({"data_uri": ""}, ValueError, "needs data_uri"),
    ],
)
def test_bad_inputs_are_refused_by_name_before_a_job_starts(vertex_api, paths, overrides, error, named):
    with pytest.raises(error, match=named.replace("$", r"\$").replace("{", r"\{").replace("(", r"\(")):
        train(paths, **overrides)
    assert created(vertex_api) == []


def test_an_unknown_project_fails_with_the_apis_answer(vertex_api, paths):
    with pytest.raises(vertex.VertexApiError, match=r"listing the custom jobs of projects/other-project"):
        train(paths, project="other-project")


def test_the_fake_refuses_what_vertex_refuses(vertex_api):
    from google.api_core import exceptions as api_exceptions

    vertex_api.on_job_succeeded = None
    client = runtime._client(REGION)
    parent = f"projects/{PROJECT}/locations/{REGION}"
    pool = {"machine_spec": {"machine_type": "n1-standard-8"}, "replica_count": 2,
            "container_spec": {"image_uri": images.TRAINER_GPU}}
    with pytest.raises(api_exceptions.BadRequest, match=r"replica_count must be 1 \(chief\), not 2"):
        client.create_custom_job(parent=parent, custom_job={"display_name": "x", "job_spec": {
            "worker_pool_specs": [pool]}})
    done = client.create_custom_job(parent=parent, custom_job={"display_name": "x", "job_spec": {
        "worker_pool_specs": [{**pool, "replica_count": 1}]}})
    vertex_api.job_plan = ("JOB_STATE_SUCCEEDED",)
    for _ in range(3):
        client.get_custom_job(name=done.name)
    with pytest.raises(api_exceptions.BadRequest, match="Cannot cancel"):
        client.cancel_custom_job(name=done.name)


# -------------------------------------------------------------------------- the component body


def test_the_component_puts_the_jobs_result_on_train_models_outputs(vertex_api, paths):
    vertex_api.job_plan = ("JOB_STATE_SUCCEEDED",)  # no wait between reads

    class OnFuse(dsl.Model):  # Vertex mounts the gs:// artifact at /gcs/...; here, model_dir
        @property
        def path(self):
            return paths["model_dir"]

    class EvalOnFuse(dsl.Dataset):
        @property
        def path(self):
            return paths["eval_data_path"]

    model = OnFuse(uri=MODEL_URI)
    eval_data = EvalOnFuse(uri=MODEL_URI.replace("/model", "/eval_data"))
    metrics = dsl.Metrics(uri=MODEL_URI.replace("/model", "/metrics"))
    tensorboard = dsl.Artifact(uri=paths["tensorboard_dir"])
    schema = dsl.Artifact(uri=paths["schema_path"])

    components.train_model_on_vertex.python_func(
        schema=schema, model=model, eval_data=eval_data, metrics=metrics, tensorboard=tensorboard,
        label="churned", data=dsl.Dataset(uri=DATA_URI), project=PROJECT, location=REGION,
    )

    (name,) = vertex_api.custom_jobs
    assert model.metadata == {**RESULT["model_metadata"], "vertex_custom_job": name}
    assert eval_data.metadata == RESULT["eval_data_metadata"] and eval_data.uri.endswith("eval_data.parquet")
    assert metrics.metadata == RESULT["metrics"]
    spec = json.loads(Path(paths["model_dir"] + "_job", "spec.json").read_text())
    assert spec["args"]["data_uri"] == DATA_URI  # the data artifact's URI: what the replicas read
    (body,) = created(vertex_api)
    assert len(body["jobSpec"]["workerPoolSpecs"]) == 2  # the default: a chief and one worker
