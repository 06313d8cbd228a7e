"""train_model_on_kubeflow against the fake Kubernetes API (tests/runtime/fake_kube.py, its
FakeTrainer) with the real kubernetes client: a real two-node TrainJob on loopback.

The launcher runs as its own process (this file run as a script), as its task's pod would;
the TrainJob's nodes are real processes running train_model's job entry point with
MultiWorkerMirroredStrategy. The launcher and the nodes share nothing but an S3-compatible
store (moto, addressed as KFP's minio://), reached by the nodes through the secret
references and endpoint the launcher puts in the TrainJob. The fake's authorizer is the
launcher's Role from manifests/rbac, so a call the Role does not allow fails the launcher.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from fake_kube import FakeKube, FakeTrainer, request_attributes

from components import images

ROOT = Path(__file__).resolve().parents[2]
NS = "ct-test"
RUN_ID = "0b6f4f4e-8c1a-4a3e-9d7e-2f6b1c9a5e11"
MINIO_SECRET = {"mlpipeline-minio-artifact": {"accesskey": "minio", "secretkey": "minio123"}}
WAIT_S = 240  # a hung job fails the test instead of hanging it
ARGS = dict(  # 320 demo rows, 1 epoch on 2 nodes: seconds of training, most of it TF's import
    label="churned", exclude_features=["signup_timestamp"], epochs=1, batch_size=32, learning_rate=0.01,
    hidden_units=[8], dropout=0.0, early_stopping_patience=0, seed=3, num_nodes=2, gpus_per_node=0,
    cpu_per_node="1", memory_per_node="2Gi",
    trainer_image=images.reference(images.TRAINER_GPU, "registry.example.com/ct"),
    pipeline_run_id=RUN_ID, pipeline_task_name="train-model-on-kubeflow", namespace=NS,
    poll_seconds=0.2, max_poll_seconds=1.0,
)


def manifests(path: str, kind: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((ROOT / "manifests" / path).read_text()) if d and d["kind"] == kind]


ROLE_RULES = manifests("rbac/base/train-launcher.yaml", "Role")[0]["rules"]
RUNTIME = manifests("trainer/base/trainingruntime.yaml", "TrainingRuntime")


@pytest.fixture(scope="module")
def store(s3_server, tmp_path_factory):
    """A bucket with the demo data, and this module's environment pointed at the store (the
    launcher task's: KFP's MinIO endpoint and secret)."""
    import boto3

    from components import uris
    from components.make_demo_data import runtime as demo

    with pytest.MonkeyPatch.context() as env:
        for key, value in {
            "AWS_ENDPOINT_URL": s3_server,
            "AWS_ACCESS_KEY_ID": "minio",
            "AWS_SECRET_ACCESS_KEY": "minio123",
            "AWS_REGION": "us-east-1",
        }.items():
            env.setenv(key, value)
        boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket="kubeflow")
        local = demo.write(demo.generate(320, seed=0), tmp_path_factory.mktemp("data") / "demo.csv")
        uris.write_bytes("minio://kubeflow/data/demo.csv", Path(local).read_bytes())
        yield "kubeflow"


def cluster(root: Path, runtimes: list[dict] = RUNTIME) -> FakeKube:
    """The fake API server with the Trainer, our TrainingRuntime and the launcher's Role."""
    trainer = FakeTrainer(
        runtimes, secrets=MINIO_SECRET, workdir=root, cwd=str(ROOT),
        # What the image sets for two nodes sharing two cores; TF's thread pools otherwise
        # assume the machine is theirs.
        node_env={"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    return FakeKube(trainer=trainer, rbac=ROLE_RULES)


class Launcher:
    """One attempt of the launcher task: this file as a script, with its own log."""

    def __init__(self, root: Path, fake: FakeKube, bucket: str, attempt: str):
        root.mkdir(parents=True, exist_ok=True)
        self.root, self.log = root, root / f"{attempt}.log"
        self.result = root / f"{attempt}.result.json"
        args = dict(
            ARGS, model_dir=str(root / "model"), eval_data_path=str(root / "eval.parquet"),
            tensorboard_dir=str(root / "tensorboard"), model_uri=f"minio://{bucket}/{root.name}/model",
            data_uri=f"minio://{bucket}/data/demo.csv", kubeconfig=fake.kubeconfig(root / "kubeconfig"),
        )
        (root / f"{attempt}.json").write_text(json.dumps(args))
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, str(root / f"{attempt}.json"), str(self.result)],
                stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT),
            )

    def wait(self) -> int:
        try:
            return self.proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"the launcher hung:\n{self.text()[-4000:]}")

    def text(self) -> str:
        return self.log.read_text()


def wait_until(condition, what: str, launcher: Launcher):
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if launcher.proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen:\n{launcher.text()[-4000:]}")
        time.sleep(0.1)


def running_job(fake: FakeKube) -> tuple[str, list] | None:
    """(name, nodes) of the one TrainJob once all its nodes run, else None."""
    with fake.lock:
        jobs = list(fake.trainer.jobs.items())
    if len(jobs) != 1:
        return None
    (_, name), job = jobs[0]
    return (name, job.nodes) if all(n.phase() == "Running" for n in job.nodes) else None


def foreign_job(runtime, model_uri: str, command: list[str]) -> dict:
    """A one-node TrainJob for ``model_uri`` running ``command``, as another launcher left it."""
    body = runtime.trainjob(
        runtime.trainjob_name(model_uri), NS, spec_uri="", image="", num_nodes=1, cpu_per_node="1",
        memory_per_node="1Gi", gpus_per_node=0, gpu_resource="", training_runtime="kfp-ct-tensorflow",
        training_runtime_kind="TrainingRuntime", pipeline_run_id=RUN_ID, pipeline_task_name="",
        model_uri=model_uri, environ={},
    )
    body["spec"]["trainer"]["command"] = command
    return body


def deleted(requests: list[dict]) -> list[str]:
    """The TrainJobs deleted, in order."""
    return [r["path"].split("?")[0].rsplit("/", 1)[1] for r in requests if r["method"] == "DELETE"]


def calls(fake: FakeKube) -> set[tuple[str, str, str]]:
    return {request_attributes(r["method"], r["path"])[:3] for r in fake.requests}


# --- a two-node job, its launcher lost and retried ----------------------------------------------


@pytest.fixture(scope="module")
def trained(store, tmp_path_factory) -> dict:
    """The launcher's first attempt is lost once the nodes run (SIGKILL: no cleanup, as when
    its pod's node dies); the retry adopts the running TrainJob and sees it to the end."""
    root = tmp_path_factory.mktemp("trained")
    with cluster(root) as fake:
        first = Launcher(root / "task", fake, store, "attempt1")
        wait_until(lambda: running_job(fake), "the TrainJob's nodes running", first)
        first.proc.kill()
        first.proc.wait()
        name, nodes = running_job(fake)
        retry = Launcher(root / "task", fake, store, "attempt2")
        code = retry.wait()
        assert code == 0, retry.text()[-6000:]
        for node in nodes:
            node.process.wait(timeout=WAIT_S)
        return {
            "root": root / "task", "name": name, "nodes": nodes, "retry": retry, "first": first,
            "created": list(fake.trainer.created), "left": dict(fake.trainer.jobs), "calls": calls(fake),
            "requests": list(fake.requests),
        }


def test_two_nodes_train_and_the_outputs_come_back_into_the_task(trained):
    import pandas as pd

    root = trained["root"]
    result = json.loads(trained["retry"].result.read_text())
    assert result["model_metadata"]["strategy"] == "multi_worker_mirrored"
    metrics = result["metrics"]
    assert metrics["epochs"] == 1 and metrics["train_rows"] + metrics["eval_rows"] == 320
    assert (root / "model" / "1" / "saved_model.pb").is_file()
    assert len(pd.read_parquet(root / "eval.parquet")) == metrics["eval_rows"]
    assert (root / "tensorboard" / "training_log.csv").is_file()
    # Both nodes trained, in one collective; the chief (worker 0) wrote the outputs.
    chief, worker = (n.log_path.read_text() for n in trained["nodes"])
    assert "chief: outputs written under" in chief
    assert "worker: trained in lockstep" in worker
    assert all(n.process.returncode == 0 for n in trained["nodes"])


def test_the_retry_adopts_the_job_its_lost_attempt_created_and_deletes_it_at_the_end(trained):
    assert len(trained["created"]) == 1  # created once, by the first attempt; never again
    assert "adopting TrainJob" in trained["retry"].text()
    assert deleted(trained["requests"]) == [trained["name"]]
    (delete,) = [r for r in trained["requests"] if r["method"] == "DELETE"]
    assert delete["body"]["propagationPolicy"] == "Foreground"
    assert trained["left"] == {}


def test_the_trainjob_carries_the_runs_labels_the_jobs_shape_and_no_secret(trained):
    (job,) = trained["created"]
    name = trained["name"]
    assert name.startswith("train-") and len(f"{name}-node-0-1") <= 63
    meta = job["metadata"]
    assert meta["labels"] == {
        "pipeline/runid": RUN_ID,
        "pipeline/task": "train-model-on-kubeflow",
        "app.kubernetes.io/part-of": "kfp-continuous-training",
        "app.kubernetes.io/managed-by": "train-model-on-kubeflow",
    }
    assert meta["annotations"]["kfp-continuous-training/model-uri"].endswith("/task/model")
    assert job["spec"]["runtimeRef"] == {
        "apiGroup": "trainer.kubeflow.org", "kind": "TrainingRuntime", "name": "kfp-ct-tensorflow",
    }
    trainer = job["spec"]["trainer"]
    assert trainer["numNodes"] == 2 and trainer["image"] == ARGS["trainer_image"]
    assert trainer["resourcesPerNode"] == {"requests": {"cpu": "1", "memory": "2Gi"}}  # no GPU asked
    assert trainer["command"][:4] == ["python", "-m", "components.train_model.job", "--spec"]
    env = {e["name"]: e for e in trainer["env"]}
    assert json.loads(env["TF_CONFIG"]["value"]) == {
        "cluster": {"worker": [f"{name}-node-0-{i}.{name}:2222" for i in range(2)]}
    }
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {
        "name": "mlpipeline-minio-artifact", "key": "accesskey", "optional": True,
    }
    assert env["MLFLOW_TRACKING_URI"]["valueFrom"]["secretKeyRef"]["name"] == "mlflow-tracking"
    assert "minio123" not in json.dumps(job)  # credentials travel as references only


def test_the_chiefs_log_is_in_the_steps_log(trained):
    chief, worker = (n.pod["metadata"]["name"] for n in trained["nodes"])
    log = trained["retry"].text()
    streamed = [line for line in log.splitlines() if f"[{chief}] " in line]
    assert any("chief: outputs written under" in line for line in streamed)
    assert f"[{worker}] " not in log  # one log, the chief's
    assert f"pod {chief} (node 0): Running" in log


def test_every_call_is_one_the_launchers_role_allows(trained):
    allowed = {
        (group, resource, verb)
        for rule in ROLE_RULES
        for group in rule["apiGroups"] for resource in rule["resources"] for verb in rule["verbs"]
    }
    made = trained["calls"]
    assert made <= allowed
    # What the launcher does, so the check above is not vacuous.
    assert made == {
        ("trainer.kubeflow.org", "trainjobs", "create"),
        ("trainer.kubeflow.org", "trainjobs", "get"),
        ("trainer.kubeflow.org", "trainjobs", "delete"),
        ("", "pods", "list"),
        ("", "pods/log", "get"),
    }


# --- failures and termination ------------------------------------------------------------------


def test_an_evicted_node_fails_the_step_naming_the_pod_and_the_job_is_deleted(store, tmp_path):
    with cluster(tmp_path) as fake:
        launcher = Launcher(tmp_path / "task", fake, store, "attempt1")
        wait_until(lambda: running_job(fake), "the TrainJob's nodes running", launcher)
        name, nodes = running_job(fake)
        pod = fake.trainer.disrupt(NS, name, 1)
        assert launcher.wait() != 0
        log = launcher.text()
        assert f"TrainJobFailed: TrainJob {NS}/{name} failed (FailedJobs: jobset failed" in log
        assert f"pod {pod} (node 1): Failed, Evicted: The node was low on resource: memory." in log
        assert "disrupted: TerminationByKubelet" in log
        assert fake.trainer.jobs == {}
        assert all(n.ended() for n in nodes)
        assert not (tmp_path / "task" / "model").exists()


def test_a_job_that_cannot_start_fails_the_step_at_once_naming_why(store, tmp_path):
    """A platform team's runtime that needs a secret the namespace lacks: the pods wait forever
    (CreateContainerConfigError); the step says so instead of waiting with them."""
    import copy

    runtime = copy.deepcopy(RUNTIME[0])
    pod = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    pod["containers"][0]["env"] = [
        {"name": "TEAM_TOKEN", "valueFrom": {"secretKeyRef": {"name": "team-credentials", "key": "token"}}}
    ]
    with cluster(tmp_path, [runtime]) as fake:
        launcher = Launcher(tmp_path / "task", fake, store, "attempt1")
        assert launcher.wait() != 0
        log = launcher.text()
        assert "cannot start: pod train-" in log
        assert 'waiting: CreateContainerConfigError (secret "team-credentials" not found)' in log
        assert fake.trainer.jobs == {} and len(fake.trainer.created) == 1


def test_a_job_of_the_same_name_from_another_task_is_left_alone(store, tmp_path):
    from kubernetes import client, config

    from components.train_model_on_kubeflow import runtime

    with cluster(tmp_path) as fake:
        model_uri = f"minio://{store}/task/model"
        foreign = foreign_job(runtime, model_uri, command=["sleep", "60"])
        foreign["metadata"]["annotations"][runtime.MODEL_URI_ANNOTATION] = "minio://elsewhere/model"
        kubeconfig = fake.kubeconfig(tmp_path / "kubeconfig")
        api = client.CustomObjectsApi(config.new_client_from_config(config_file=kubeconfig))
        api.create_namespaced_custom_object(runtime.GROUP, runtime.VERSION, NS, runtime.PLURAL, foreign)
        launcher = Launcher(tmp_path / "task", fake, store, "attempt1")
        assert launcher.wait() != 0
        log = launcher.text()
        assert "TrainJobConflict" in log and "was made for minio://elsewhere/model" in log
        assert list(fake.trainer.jobs) == [(NS, foreign["metadata"]["name"])]  # still there
        assert deleted(fake.requests) == [] and len(fake.trainer.created) == 1


def test_a_retry_replaces_its_failed_job_and_a_terminated_task_deletes_the_new_one(store, tmp_path):
    from kubernetes import client, config

    from components.train_model_on_kubeflow import runtime

    with cluster(tmp_path) as fake:
        # The earlier attempt's job failed and was left behind (its launcher lost before cleanup).
        model_uri = f"minio://{store}/task/model"
        failed = foreign_job(runtime, model_uri, command=["sh", "-c", "exit 3"])
        kubeconfig = fake.kubeconfig(tmp_path / "kubeconfig")
        api = client.CustomObjectsApi(config.new_client_from_config(config_file=kubeconfig))
        where = (runtime.GROUP, runtime.VERSION, NS, runtime.PLURAL)
        api.create_namespaced_custom_object(*where, failed)
        name = failed["metadata"]["name"]
        deadline = time.monotonic() + WAIT_S
        while not runtime._terminal(api.get_namespaced_custom_object(*where, name)):
            assert time.monotonic() < deadline, "the failed job never failed"
            time.sleep(0.1)

        launcher = Launcher(tmp_path / "task", fake, store, "attempt2")
        wait_until(lambda: len(fake.trainer.created) == 2 and running_job(fake), "a new job", launcher)
        _, nodes = running_job(fake)
        launcher.proc.send_signal(signal.SIGTERM)  # what KFP does to a terminated run's pod
        assert launcher.wait() != 0
        log = launcher.text()
        assert f"TrainJob {NS}/{name} of an earlier attempt failed (FailedJobs" in log
        assert "SIGTERM: this task was terminated; deleting its TrainJob" in log
        assert fake.trainer.jobs == {}
        assert deleted(fake.requests) == [name, name]  # the failed one, then its replacement
        assert all(n.ended() for n in nodes)


# --- the launcher task ---------------------------------------------------------------------------


def _launch(args_path: str, result_path: str) -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from components.train_model_on_kubeflow import runtime

    result = runtime.run(**json.loads(Path(args_path).read_text()))
    Path(result_path).write_text(json.dumps(result))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    os.environ.pop("TF_CONFIG", None)
    _launch(sys.argv[1], sys.argv[2])
