"""Assertions on the compiled IR of the goldens: the gates, the GPU request, retries, caching,
and the Vertex variant's single document."""

from pathlib import Path

import pytest
import yaml
from kfp import components as kfp_components

from components import images

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


def load(name: str) -> list[dict]:
    return list(yaml.safe_load_all((PIPELINES / f"{name}.yaml").read_text()))


def all_tasks(spec: dict) -> dict[str, dict]:
    """Every task in every DAG of the spec, by task name."""
    tasks = dict(spec["root"]["dag"]["tasks"])
    for component in spec["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    return tasks


def executor(spec: dict, task: dict) -> dict:
    component = spec["components"][task["componentRef"]["name"]]
    return spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]


@pytest.fixture(params=["training", "training_vertex"])
def training(request):
    return request.param, load(request.param)


def test_goldens_load_with_kfps_own_loader():
    for path in PIPELINES.glob("*.yaml"):
        if path.name == "schedules.yaml":
            continue
        assert kfp_components.load_component_from_file(str(path)).name


def test_gates_are_conditions_on_the_verdict_outputs(training):
    _, (spec, *_) = training
    tasks = all_tasks(spec)
    conditions = {
        t["taskInfo"]["name"]: t["triggerPolicy"]["condition"]
        for t in tasks.values()
        if "triggerPolicy" in t and "condition" in t["triggerPolicy"]
    }
    assert "validate-data-Output" in conditions["data-is-valid"]
    assert "== true" in conditions["data-is-valid"]
    assert "evaluate-model-Output" in conditions["model-is-blessed"]
    # Training sits inside the data gate; registration and deployment inside the model gate.
    gate_of = {}
    for name, component in spec["components"].items():
        for task_name in component.get("dag", {}).get("tasks", {}):
            gate_of[task_name] = name
    assert gate_of["train-model"] == gate_of["evaluate-model"]
    assert gate_of["register-model"] == gate_of["deploy-model"] != gate_of["train-model"]


def test_training_requests_an_accelerator_in_the_gpu_image(training):
    name, (spec, *_) = training
    container = executor(spec, all_tasks(spec)["train-model"])
    assert container["image"] == images.TRAINER_GPU
    accelerator = container["resources"]["accelerator"]
    assert accelerator["resourceType"] == "{{$.inputs.parameters['pipelinechannel--accelerator_type']}}"
    assert accelerator["resourceCount"] == "{{$.inputs.parameters['pipelinechannel--accelerator_count']}}"
    default = spec["root"]["inputDefinitions"]["parameters"]["accelerator_type"]["defaultValue"]
    assert default == ("nvidia.com/gpu" if name == "training" else "NVIDIA_TESLA_T4")


def test_network_steps_retry_and_deploy_is_never_cached(training):
    _, (spec, *_) = training
    tasks = all_tasks(spec)
    for name in ("compute-statistics", "evaluate-model", "register-model", "train-model"):
        assert tasks[name]["retryPolicy"]["maxRetryCount"] >= 2, name
    for name in ("deploy-model", "register-model", "evaluate-model", "resolve-baseline"):
        assert tasks[name]["cachingOptions"] == {}, name  # {} is enableCache false
    assert tasks["train-model"]["cachingOptions"] == {"enableCache": True}


def test_exit_handler_always_summarises(training):
    _, (spec, *_) = training
    summary = spec["root"]["dag"]["tasks"]["summarize-run"]
    assert summary["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    assert summary["inputs"]["parameters"]["status"]["taskFinalStatus"]["producerTask"] == "exit-handler-1"


def test_vertex_variant_is_one_document_and_kubeflow_has_kubernetes_settings():
    assert len(load("training_vertex")) == 1
    kubeflow = load("training")
    assert len(kubeflow) == 2
    executors = kubeflow[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    train = executors["exec-train-model"]
    assert train["secretAsEnv"][0]["secretName"] == "mlflow-tracking"
    assert train["secretAsEnv"][0]["optional"] is True
    node_selector = train["nodeSelector"]["nodeSelectorJson"]["componentInputParameter"]
    assert node_selector.endswith("train_node_selector")
    assert train["tolerations"][0]["tolerationJson"]["componentInputParameter"].endswith("train_tolerations")


def test_drift_pipeline_retrains_only_when_drift_is_detected():
    spec, *_ = load("drift_retraining")
    tasks = all_tasks(spec)
    gate = next(t for t in tasks.values() if t["taskInfo"]["name"] == "drift-detected")
    condition = gate["triggerPolicy"]["condition"]
    assert "validate-data-Output" in condition and "== false" in condition
    branch = spec["components"][gate["componentRef"]["name"]]["dag"]["tasks"]
    # The training steps themselves (built by the same function as the training pipeline, not
    # a nested pipeline): the training data's own fingerprint, statistics and data gate.
    assert {"fingerprint-data-2", "compute-statistics-2", "validate-data-2"} <= set(branch)
    assert any(t["taskInfo"]["name"] == "data-is-valid" for t in branch.values())


def test_every_drift_pipeline_task_that_talks_to_mlflow_gets_the_secret():
    spec, platform = load("drift_retraining")
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for name, component in spec["components"].items():
        if "mlflow_tracking_uri" not in component.get("inputDefinitions", {}).get("parameters", {}):
            continue
        if "executorLabel" not in component:
            continue  # a DAG passing the parameter through
        mounts = executors.get(component["executorLabel"], {}).get("secretAsEnv", [])
        assert "mlflow-tracking" in {m["secretName"] for m in mounts}, name


@pytest.mark.parametrize("name", ["monitoring", "monitoring_vertex"])
def test_monitoring_retrains_only_when_serving_says_so(name):
    spec, *platform = load(name)
    tasks = all_tasks(spec)
    monitor = tasks["monitor-model"]
    assert monitor["cachingOptions"] == {}  # the logs grow: never a cache hit
    gate = next(t for t in tasks.values() if t["taskInfo"]["name"] == "serving-says-retrain")
    condition = gate["triggerPolicy"]["condition"]
    assert "monitor-model-Output" in condition and "'retrain'" in condition
    branch = spec["components"][gate["componentRef"]["name"]]["dag"]["tasks"]
    # the gated training steps of the training pipeline, data gate first
    assert {"resolve-baseline", "fingerprint-data", "validate-data"} <= set(branch)
    assert any(t["taskInfo"]["name"] == "data-is-valid" for t in branch.values())
    # the monitor's verdict is in the run record (the summary and its webhook say why)
    records = [t for t in tasks.values() if t["componentRef"]["name"].startswith("comp-record-verdict")]
    gates = {t["inputs"]["parameters"]["gate"]["runtimeValue"]["constant"] for t in records}
    assert "model-is-healthy" in gates
    assert len(platform) == (1 if name == "monitoring" else 0)  # Vertex: one document
