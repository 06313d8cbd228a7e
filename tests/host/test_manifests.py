"""manifests/: every kustomize overlay renders, with the kinds and fields deploy_model relies on."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2] / "manifests"
SYSTEMS = ("kserve", "rbac", "mlflow")
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
    assert list(objects) == ["InferenceService"]
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
    (role,) = objects["Role"]
    assert role["metadata"]["namespace"] == f"ct-{env}"
    assert role["rules"] == [
        {
            "apiGroups": ["serving.kserve.io"],
            "resources": ["inferenceservices"],
            "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"],
        }
    ]
    (binding,) = objects["RoleBinding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "kfp-ct-pipeline-runner", "namespace": f"ct-{env}"}
    ]
    names = {sa["metadata"]["name"] for sa in objects["ServiceAccount"]}
    assert names == {"kfp-ct-pipeline-runner", "kfp-ct-model-reader"}


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
