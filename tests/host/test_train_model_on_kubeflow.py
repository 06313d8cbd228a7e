"""train_model_on_kubeflow on the host: the TrainJob's pods' cluster (components/train_model/
_hardware.py, pure JSON) and the TrainJob the launcher creates (no API calls; the runtime test
runs it against the fake API)."""

from __future__ import annotations

import json

import pytest

from components.train_model import _hardware

# What train_model_on_kubeflow gives every pod of a 3-node TrainJob "train-1a2b" (JobSet's
# headless service: <job>-node-0-<index>.<job>), without a task: the pods share one env.
CLUSTER = {"worker": [f"train-1a2b-node-0-{i}.train-1a2b:2222" for i in range(3)]}


def test_a_trainjob_pod_is_the_worker_of_its_job_completion_index():
    shared = json.dumps({"cluster": CLUSTER})
    for index in range(3):
        config = json.loads(_hardware.tf_config({"TF_CONFIG": shared, "JOB_COMPLETION_INDEX": str(index)}))
        assert config == {"cluster": CLUSTER, "task": {"type": "worker", "index": index}}
        assert _hardware.is_chief(json.dumps(config)) == (index == 0)  # worker 0: no chief in the cluster
    assert _hardware.cluster_workers(shared) == 3
    # A TF_CONFIG with its own task (a TFJob's) keeps it; without an index it is left alone.
    own = json.dumps({"cluster": CLUSTER, "task": {"type": "worker", "index": 2}})
    assert _hardware.tf_config({"TF_CONFIG": own, "JOB_COMPLETION_INDEX": "0"}) == own
    assert _hardware.tf_config({"TF_CONFIG": shared}) == shared


def test_a_bad_job_completion_index_is_named():
    with pytest.raises(ValueError, match="JOB_COMPLETION_INDEX must be a non-negative integer, got 'x'"):
        _hardware.tf_config({"TF_CONFIG": json.dumps({"cluster": CLUSTER}), "JOB_COMPLETION_INDEX": "x"})


# --- the TrainJob the launcher creates (components/train_model_on_kubeflow/runtime.py) --------

MODEL_URI = "minio://mlpipeline/v2/artifacts/training/0b6f4f4e-8c1a/train-model-on-kubeflow/1a2b/model"
_LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"


def trainjob(**overrides) -> dict:
    from components.train_model_on_kubeflow import runtime

    shape = dict(
        spec_uri=f"{MODEL_URI}_job/spec.json", image="registry.example.com/ct/trainer:1", num_nodes=3,
        cpu_per_node="8", memory_per_node="32Gi", gpus_per_node=2, gpu_resource="nvidia.com/gpu",
        training_runtime="kfp-ct-tensorflow", training_runtime_kind="TrainingRuntime",
        pipeline_run_id="0b6f4f4e-8c1a-4a3e-9d7e-2f6b1c9a5e11", pipeline_task_name="train-model-on-kubeflow",
        model_uri=MODEL_URI,
        environ={"AWS_ENDPOINT_URL": "http://minio-service.kubeflow:9000", "SECRET": "x"},
    )
    shape.update(overrides)
    return runtime.trainjob(runtime.trainjob_name(MODEL_URI), "ct-prod", **shape)


def test_the_name_is_the_model_uris_and_fits_jobsets_pod_host_names():
    import re

    from components.train_model_on_kubeflow import runtime

    name = runtime.trainjob_name(MODEL_URI)
    assert name == runtime.trainjob_name(MODEL_URI) != runtime.trainjob_name(MODEL_URI + "x")  # per task run
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name)  # RFC 1035, as the TrainJob CRD requires
    assert len(f"{name}-node-0-99") <= 63  # JobSet's pod host names are DNS labels too


def test_gpus_are_limits_on_their_resource_and_cpu_memory_requests():
    resources = trainjob()["spec"]["trainer"]["resourcesPerNode"]
    assert resources == {"requests": {"cpu": "8", "memory": "32Gi"}, "limits": {"nvidia.com/gpu": "2"}}
    amd = trainjob(gpus_per_node=1, gpu_resource="amd.com/gpu")["spec"]["trainer"]["resourcesPerNode"]
    assert amd["limits"] == {"amd.com/gpu": "1"}
    assert "limits" not in trainjob(gpus_per_node=0)["spec"]["trainer"]["resourcesPerNode"]


def test_labels_are_valid_label_values_and_only_the_storage_endpoint_is_copied():
    import re

    job = trainjob(pipeline_task_name="Train model / on Kubeflow! " * 4, pipeline_run_id="")
    labels = job["metadata"]["labels"]
    assert "pipeline/runid" not in labels  # nothing to say: no label
    assert all(re.fullmatch(_LABEL_VALUE, v) and len(v) <= 63 for v in labels.values()), labels
    assert labels["pipeline/task"].startswith("Train-model-on-Kubeflow-")
    env = {e["name"]: e for e in job["spec"]["trainer"]["env"]}
    assert env["AWS_ENDPOINT_URL"] == {"name": "AWS_ENDPOINT_URL", "value": "http://minio-service.kubeflow:9000"}
    assert "SECRET" not in env
    assert {n for n, e in env.items() if "valueFrom" in e} == {
        "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    }
    # Every pod is the worker of its JOB_COMPLETION_INDEX in the one TF_CONFIG they share.
    shared = env["TF_CONFIG"]["value"]
    name = job["metadata"]["name"]
    config = json.loads(_hardware.tf_config({"TF_CONFIG": shared, "JOB_COMPLETION_INDEX": "2"}))
    assert config["cluster"]["worker"][2] == f"{name}-node-0-2.{name}:2222"
    assert config["task"] == {"type": "worker", "index": 2}


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"num_nodes": 0}, "num_nodes must be at least 1, got 0"),
        ({"gpus_per_node": -1}, "gpus_per_node must be >= 0, got -1"),
        ({"memory_per_node": "16 GB"}, "memory_per_node must be a Kubernetes quantity .* got '16 GB'"),
        ({"training_runtime_kind": "TFJob"}, "training_runtime_kind must be one of .* got 'TFJob'"),
        ({"data_uri": ""}, "data_uri .* is required"),
    ],
)
def test_bad_arguments_are_refused_by_name_before_any_call(bad, named):
    from components.train_model_on_kubeflow import runtime

    arguments = dict(
        model_dir="/tmp/m", eval_data_path="/tmp/e.parquet", model_uri=MODEL_URI, label="churned",
        data_uri="minio://b/data.csv", kubeconfig="/nonexistent/kubeconfig",
    )
    with pytest.raises(ValueError, match=named):
        runtime.run(**{**arguments, **bad})


def test_a_failed_pods_state_says_how_it_ended():
    from kubernetes import client as k8s

    from components.train_model_on_kubeflow import runtime

    def pod(status: k8s.V1PodStatus) -> k8s.V1Pod:
        labels = {runtime.INDEX_LABEL: "1"}
        return k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="train-1-node-0-1-x", labels=labels), status=status)

    def container(state: k8s.V1ContainerState) -> list:
        return [k8s.V1ContainerStatus(
            name="node", image="i", image_id="", ready=False, restart_count=0, state=state
        )]

    def ended(code: int) -> list:
        terminated = k8s.V1ContainerStateTerminated(exit_code=code, reason="Error")
        return container(k8s.V1ContainerState(terminated=terminated))

    killed = pod(k8s.V1PodStatus(phase="Failed", container_statuses=ended(137)))
    assert runtime._pod_state(killed) == (
        "Failed, exit code 137 (Error): killed (SIGKILL: out of memory, evicted or preempted)"
    )
    assert runtime._failed(killed) and runtime._index(killed) == 1
    preempted = pod(k8s.V1PodStatus(
        phase="Failed", reason="Preempted", message="Preempted by a higher priority pod",
        container_statuses=ended(143), conditions=[
            k8s.V1PodCondition(type="DisruptionTarget", status="True", reason="PreemptionByScheduler")
        ],
    ))
    assert runtime._pod_state(preempted) == (
        "Failed, Preempted: Preempted by a higher priority pod, exit code 143 (Error): terminated (SIGTERM), "
        "disrupted: PreemptionByScheduler"
    )
    waiting = k8s.V1ContainerStateWaiting(reason="ImagePullBackOff", message="no")
    statuses = container(k8s.V1ContainerState(waiting=waiting))
    pending = pod(k8s.V1PodStatus(phase="Pending", container_statuses=statuses))
    assert runtime._pod_state(pending) == "Pending, waiting: ImagePullBackOff (no)"
    assert not runtime._failed(pending)
