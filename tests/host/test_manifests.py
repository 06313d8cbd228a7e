"""manifests/: every kustomize overlay renders, with the kinds and fields deploy_model relies on."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components import images, interface

ROOT = Path(__file__).resolve().parents[2] / "manifests"
SYSTEMS = ("kserve", "rbac", "mlflow", "prediction-log-sink", "trainer")
ENVS = ("dev", "prod")

PIPELINES = ROOT.parent / "pipelines"
# requirements/host.txt installs kubectl into the venv: these tests never skip for want of it.
KUBECTL = shutil.which("kubectl", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]))


def render(system: str, env: str) -> dict[str, list[dict]]:
    assert KUBECTL, "kubectl is missing: run scripts/setup-venv.sh (requirements/host.txt installs it)"
    out = subprocess.run(
        [KUBECTL, "kustomize", str(ROOT / system / "overlays" / env)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    by_kind: dict[str, list[dict]] = {}
    for doc in yaml.safe_load_all(out):
        if doc:
            by_kind.setdefault(doc["kind"], []).append(doc)
    return by_kind


def test_every_system_has_base_and_both_overlays():
    for system in SYSTEMS:
        for part in ("base", "overlays/dev", "overlays/prod"):
            assert (ROOT / system / part / "kustomization.yaml").is_file(), f"{system}/{part}"


@pytest.mark.parametrize("env", ENVS)
def test_inference_service_template(env):
    objects = render("kserve", env)
    assert sorted(objects) == ["InferenceService", "ServingRuntime"]
    (isvc,) = objects["InferenceService"]
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc["metadata"]["namespace"] == f"ct-{env}"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] in ("Knative", "Standard")
    predictor = isvc["spec"]["predictor"]
    assert predictor["model"]["modelFormat"]["name"] == "tensorflow"
    assert predictor["model"]["storageUri"]
    assert predictor["model"]["resources"]["limits"]["memory"]
    assert predictor["serviceAccountName"] == "kfp-ct-model-reader"
    assert predictor["minReplicas"] <= predictor["maxReplicas"]
    assert "canaryTrafficPercent" not in predictor  # set by deploy_model per rollout only
    # TF Serving (chosen by modelFormat) stays the default; overlays/checked opts in to ours.
    assert "runtime" not in predictor["model"] and "logger" not in predictor


def test_prod_keeps_replicas_warm_and_dev_scales_to_zero():
    dev = render("kserve", "dev")["InferenceService"][0]["spec"]["predictor"]
    prod = render("kserve", "prod")["InferenceService"][0]["spec"]["predictor"]
    assert dev["minReplicas"] == 0 and prod["minReplicas"] >= 2
    assert prod["model"]["runtimeVersion"]


REQUIREMENTS = ROOT.parent / "images" / "runtime" / "requirements.txt"
# TF Serving releases trail TensorFlow's. Where the TensorFlow that trains the model has no TF
# Serving release yet, the prod overlay serves with the newest one, named here: tensorflow/serving
# has tags up to 2.20.0 and no 2.21. A new TensorFlow pin without an entry must match exactly.
TF_SERVING_FOR_TENSORFLOW = {"2.21": "2.20"}


def major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def test_prod_serving_runtime_matches_the_training_tensorflow():
    pins = re.findall(r"^tensorflow==([\d.]+)\s*$", REQUIREMENTS.read_text(), flags=re.MULTILINE)
    assert len(pins) == 1, f"expected one exact tensorflow pin in {REQUIREMENTS}, found {pins}"
    trained_with = major_minor(pins[0])
    prod = render("kserve", "prod")["InferenceService"][0]["spec"]["predictor"]["model"]
    served_with = major_minor(str(prod["runtimeVersion"]))
    expected = TF_SERVING_FOR_TENSORFLOW.get(trained_with, trained_with)
    assert served_with == expected, (
        f"the prod overlay serves with TF Serving {prod['runtimeVersion']} but the model is trained "
        f"with tensorflow {pins[0]}: set runtimeVersion to {expected}.x in "
        "manifests/kserve/overlays/prod/kustomization.yaml"
    )


@pytest.mark.parametrize("env", ENVS)
def test_rbac_is_least_privilege(env):
    objects = render("rbac", env)
    assert sorted(objects) == ["Role", "RoleBinding", "ServiceAccount"]
    assert "ClusterRole" not in objects and "ClusterRoleBinding" not in objects
    roles = {role["metadata"]["name"]: role for role in objects["Role"]}
    assert all(role["metadata"]["namespace"] == f"ct-{env}" for role in roles.values())
    assert roles["kfp-ct-deployer"]["rules"] == [
        {
            "apiGroups": ["serving.kserve.io"],
            "resources": ["inferenceservices"],
            "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"],
        }
    ]
    # train_model_on_kubeflow: its TrainJobs and their pods' state and logs, nothing more
    # (tests/runtime/test_train_model_on_kubeflow.py runs the launcher under this Role).
    assert roles["kfp-ct-train-launcher"]["rules"] == [
        {
            "apiGroups": ["trainer.kubeflow.org"],
            "resources": ["trainjobs"],
            "verbs": ["create", "get", "list", "watch", "delete"],
        },
        {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]},
    ]
    assert len(roles) == 2 and len(objects["RoleBinding"]) == 2
    for binding in objects["RoleBinding"]:
        assert binding["roleRef"]["kind"] == "Role" and binding["roleRef"]["name"] in roles
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "kfp-ct-pipeline-runner", "namespace": f"ct-{env}"}
        ]
    names = {sa["metadata"]["name"] for sa in objects["ServiceAccount"]}
    assert names == {"kfp-ct-pipeline-runner", "kfp-ct-model-reader", "kfp-ct-trainer"}


@pytest.mark.parametrize("env", ENVS)
def test_tensorflow_training_runtime(env):
    """What train_model_on_kubeflow's TrainJobs reference and rely on (see its runtime.py)."""
    from components.train_model_on_kubeflow import runtime

    (trainer,) = render("trainer", env)["TrainingRuntime"]
    assert trainer["apiVersion"] == runtime.API_VERSION
    defaults = interface.defaults(ROOT.parent / "components" / "train_model_on_kubeflow" / "component.py",
                                  "train_model_on_kubeflow")
    assert trainer["metadata"]["name"] == defaults["training_runtime"]
    assert trainer["kind"] == defaults["training_runtime_kind"]
    assert trainer["metadata"]["namespace"] == f"ct-{env}"
    assert trainer["spec"]["mlPolicy"] == {"numNodes": 1}  # no framework policy: TF_CONFIG is the launcher's
    jobset = trainer["spec"]["template"]["spec"]
    assert jobset["failurePolicy"] == {"maxRestarts": 0}  # a lost worker fails the job; the retry resumes
    (node,) = jobset["replicatedJobs"]
    assert node["name"] == runtime.NODE
    assert node["template"]["metadata"]["labels"]["trainer.kubeflow.org/trainjob-ancestor-step"] == "trainer"
    pod = node["template"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and node["template"]["spec"]["backoffLimit"] == 0
    accounts = {sa["metadata"]["name"] for sa in render("rbac", env)["ServiceAccount"]}
    assert pod["serviceAccountName"] == "kfp-ct-trainer" and pod["serviceAccountName"] in accounts
    (container,) = pod["containers"]
    assert container["name"] == runtime.NODE
    assert container["ports"] == [{"name": "tf-worker", "containerPort": runtime.WORKER_PORT}]
    assert container["image"].rpartition(":")[2] == images.TAG


@pytest.mark.parametrize("env", ENVS)
def test_mlflow_server(env):
    objects = render("mlflow", env)
    assert sorted(objects) == ["Deployment", "PersistentVolumeClaim", "Secret", "Service"]
    (deployment,) = objects["Deployment"]
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] != "mlflow-server", "the overlay must set the image"
    assert "--backend-store-uri=sqlite:////mlflow/mlflow.db" in container["args"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    (claim,) = objects["PersistentVolumeClaim"]
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert volumes[0]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    (service,) = objects["Service"]
    assert service["spec"]["ports"][0]["port"] == 5000
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    (secret,) = objects["Secret"]
    assert secret["metadata"]["name"] == "mlflow-tracking" and "MLFLOW_TRACKING_URI" in secret["data"]


def test_deploy_model_renders_the_same_template():
    """The runtime reads manifests/kserve/base; its annotations must survive the overlays."""
    base = yaml.safe_load((ROOT / "kserve" / "base" / "inferenceservice.yaml").read_text())
    rendered = render("kserve", "prod")["InferenceService"][0]
    assert rendered["metadata"]["annotations"] == base["metadata"]["annotations"]
    assert rendered["metadata"]["annotations"]["serving.kserve.io/enable-tag-routing"] == "true"


def kubeflow_secret_refs() -> set[tuple[str, str, str]]:
    """(golden, secret, key) for every secret key a compiled Kubeflow spec mounts as env."""
    refs = set()
    for path in sorted(PIPELINES.glob("*.yaml")):
        documents = list(yaml.safe_load_all(path.read_text()))
        if path.name == "schedules.yaml" or len(documents) < 2:
            continue
        executors = documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
        for settings in executors.values():
            for mount in settings.get("secretAsEnv", []):
                for pair in mount["keyToEnv"]:
                    refs.add((path.stem, mount["secretName"], pair["secretKey"]))
    return refs


@pytest.mark.parametrize("env", ENVS)
def test_every_secret_key_the_specs_mount_is_in_the_rendered_secret(env):
    rendered = {
        secret["metadata"]["name"]: set(secret.get("data", {})) | set(secret.get("stringData", {}))
        for system in SYSTEMS
        for secret in render(system, env).get("Secret", [])
    }
    refs = kubeflow_secret_refs()
    ours = {(golden, name, key) for golden, name, key in refs if name in rendered}
    # mlpipeline-minio-artifact belongs to the Kubeflow Pipelines install, not to manifests/.
    assert {name for _, name, _ in refs} - set(rendered) == {"mlpipeline-minio-artifact"}
    mounting_mlflow = {golden for golden, name, _ in ours if name == "mlflow-tracking"}
    assert mounting_mlflow >= {"training", "drift_retraining"}
    missing = sorted(f"{golden}: {name}/{key}" for golden, name, key in ours if key not in rendered[name])
    assert missing == [], f"the specs mount keys the {env} secret lacks"


# --- Serving with our model server (ServingRuntime kfp-ct-tensorflow) and logging every
# prediction through KServe's inference logger to the prediction-log sink.

RUNTIME_ARGS = ["--model-dir=/mnt/models", "--model-name={{.Name}}", "--host=0.0.0.0", "--http-port=8080"]
"""What KServe needs from the container: the model where the storage initializer puts
storageUri, the InferenceService's name (KServe fills {{.Name}}), every interface, the port
KServe routes to. tests/runtime/test_serving_runtime.py runs these args for real."""


def one(objects: dict[str, list[dict]], kind: str) -> dict:
    (obj,) = objects[kind]
    return obj


@pytest.mark.parametrize("env", [*ENVS, "checked"])
def test_serving_runtime(env):
    runtime = one(render("kserve", env), "ServingRuntime")
    assert runtime["apiVersion"] == "serving.kserve.io/v1alpha1"
    assert runtime["metadata"]["name"] == "kfp-ct-tensorflow"
    spec = runtime["spec"]
    # autoSelect false: a tensorflow model keeps TF Serving unless it names this runtime.
    assert spec["supportedModelFormats"] == [{"name": "tensorflow", "version": "2", "autoSelect": False}]
    assert spec["protocolVersions"] == ["v1", "v2"]
    (container,) = spec["containers"]
    assert container["name"] == "kserve-container"  # the name KServe merges the predictor into
    assert container["image"] == images.RUNTIME
    assert container["command"] == ["python", "-m", "components.model_server"]
    assert container["args"] == RUNTIME_ARGS
    # On a cluster the inference logger records predictions; the pod's disk is not the place.
    assert not any(a.startswith("--log-dir") for a in container["args"])


def test_checked_overlay_switches_prod_to_our_runtime_and_logs_to_the_sink():
    checked, prod = render("kserve", "checked"), render("kserve", "prod")
    sink = render("prediction-log-sink", "prod")
    isvc, runtime = one(checked, "InferenceService"), one(checked, "ServingRuntime")
    predictor = isvc["spec"]["predictor"]
    assert predictor["model"]["runtime"] == runtime["metadata"]["name"]
    assert predictor["model"]["protocolVersion"] in runtime["spec"]["protocolVersions"]
    assert predictor["model"]["modelFormat"]["name"] in {
        f["name"] for f in runtime["spec"]["supportedModelFormats"]
    }
    # KServe replaces the runtime image's tag with runtimeVersion: prod's TF Serving version must go.
    assert "runtimeVersion" not in predictor["model"]

    service = one(sink, "Service")
    assert predictor["logger"] == {"mode": "all", "url": f"http://{service['metadata']['name']}"}
    # The short name resolves only in the InferenceService's own namespace, on the Service's port 80.
    assert (
        service["metadata"]["namespace"] == isvc["metadata"]["namespace"] == runtime["metadata"]["namespace"]
    )
    assert service["spec"]["ports"][0]["port"] == 80

    # Nothing else differs from prod.
    expected = one(prod, "InferenceService")
    expected["spec"]["predictor"]["model"].pop("runtimeVersion")
    predictor.pop("logger")
    predictor["model"].pop("runtime")
    assert isvc == expected


@pytest.mark.parametrize("env", ENVS)
def test_prediction_log_sink(env):
    from components import prediction_log_sink

    objects = render("prediction-log-sink", env)
    assert sorted(objects) == ["Deployment", "PersistentVolumeClaim", "Service"]
    deployment = one(objects, "Deployment")
    assert deployment["metadata"]["namespace"] == f"ct-{env}"
    # Requests and responses are paired in memory: both halves must reach one process.
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == images.RUNTIME
    assert container["command"] == ["python", "-m", "components.prediction_log_sink"]
    args = prediction_log_sink.parse_args(container["args"])  # the module's own parser takes them
    assert args.host == "0.0.0.0"
    assert [p["containerPort"] for p in container["ports"]] == [args.port]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == args.log_dir
    (volume,) = pod["volumes"]
    assert volume["name"] == mount["name"]
    assert (
        volume["persistentVolumeClaim"]["claimName"]
        == one(objects, "PersistentVolumeClaim")["metadata"]["name"]
    )
    service = one(objects, "Service")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] in ("http", args.port)
