"""The ServingRuntime kfp-ct-tensorflow runs what it says: its container's command and args,
taken from the rendered manifest a user applies (manifests/kserve/overlays/checked), start our
model server on a real SavedModel that carries its request contract; v1 and v2 inference work
and a wrongly typed value is refused with 400. So the manifest cannot drift from the CLI."""

import json
import subprocess
import urllib.error
import urllib.request

import numpy as np
import pytest
import rendered
import saved_models
from conftest import free_port, stop

from components import model_io, request_contract
from components.deploy_model import _smoke
from components.make_demo_data import runtime as demo


@pytest.fixture(scope="module")
def manifest():
    objects = rendered.render("kserve/overlays/checked")
    (isvc,) = objects["InferenceService"]
    (runtime,) = objects["ServingRuntime"]
    assert isvc["spec"]["predictor"]["model"]["runtime"] == runtime["metadata"]["name"]
    (container,) = runtime["spec"]["containers"]
    return container, isvc["metadata"]["name"]


@pytest.fixture(scope="module")
def frame():
    return demo.generate(400, seed=3)


@pytest.fixture(scope="module")
def served(manifest, frame, tmp_path_factory):
    """The manifest's command, as KServe would start it, with what differs here substituted."""
    container, name = manifest
    root = tmp_path_factory.mktemp("runtime")
    model_dir = root / "models"  # what the storage initializer leaves at /mnt/models
    saved_models.build(model_dir)
    request_contract.write(str(model_dir / "1"), request_contract.build(frame, saved_models.FEATURES))
    port = free_port()
    cmd = rendered.command(
        container,
        {
            "/mnt/models": str(model_dir),
            "{{.Name}}": name,  # KServe fills it with the InferenceService's name
            # A pod has its own network namespace; this test shares the machine's (host
            # networking, other sessions' servers): listen on loopback only, and on a free port
            # instead of 8080, which another server here may hold.
            "0.0.0.0": "127.0.0.1",
            "8080": str(port),
        },
    )
    log_path = root / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _smoke.wait_until_ready(url, name, 120, process)
        except _smoke.SmokeTestError as exc:
            process.kill()
            pytest.fail(f"{cmd} did not serve: {exc}\n{log_path.read_text()[-2000:]}")
        yield url, name, str(model_dir)
        stop(process)


def post(url, body):
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def rows(frame, n):
    out = frame[list(saved_models.FEATURES)].head(n).to_dict(orient="records")
    for row in out:
        row["contract_type"] = int(row["contract_type"])
    return out


def test_v1_inference_answers_as_the_model_does(served, frame):
    url, name, model_dir = served
    status, body = post(f"{url}/v1/models/{name}:predict", {"instances": rows(frame, 3)})
    assert status == 200, body
    expected = model_io.predict(model_io.load(model_dir), frame[list(saved_models.FEATURES)].head(3))
    np.testing.assert_allclose(body["predictions"], expected, atol=1e-6)


def test_a_wrong_type_is_refused_with_400(served, frame):
    url, name, _ = served
    bad = rows(frame, 1)
    bad[0]["age"] = "forty"
    status, body = post(f"{url}/v1/models/{name}:predict", {"instances": bad})
    assert status == 400
    assert "feature 'age'" in json.dumps(body) and "forty" in json.dumps(body)


def test_v2_inference_works_as_the_runtime_declares(served, frame):
    url, name, model_dir = served
    datatypes = {"float": "FP32", "int": "INT64", "string": "BYTES"}
    data = rows(frame, 2)
    inputs = [
        {"name": f, "shape": [2], "datatype": datatypes[kind], "data": [r[f] for r in data]}
        for f, kind in saved_models.FEATURES.items()
    ]
    status, body = post(f"{url}/v2/models/{name}/infer", {"inputs": inputs})
    assert status == 200, body
    expected = model_io.predict(model_io.load(model_dir), frame[list(saved_models.FEATURES)].head(2))
    np.testing.assert_allclose(body["outputs"][0]["data"], expected, atol=1e-5)
