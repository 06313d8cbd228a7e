"""Requests checked against the model's contract, and every prediction logged: the contract
alone on demo data, then the real model server (HTTP, v1 and v2) with a real SavedModel."""

import json
import re
import urllib.error
import urllib.request

import numpy as np
import pytest
import saved_models

from components import model_io, prediction_log, request_contract
from components.deploy_model import _local
from components.make_demo_data import runtime as demo

NAME = "churn"


@pytest.fixture(scope="module")
def frame():
    return demo.generate(400, seed=3)


@pytest.fixture(scope="module")
def contract(frame):
    return request_contract.build(frame, saved_models.FEATURES)


def clean_rows(frame, n=3):
    rows = frame[list(saved_models.FEATURES)].head(n).to_dict(orient="records")
    for row in rows:
        row["contract_type"] = int(row["contract_type"])
    return rows


def test_the_contract_holds_types_ranges_and_categories(frame, contract):
    age = contract["features"]["age"]
    assert age["type"] == "float" and age["min"] == frame["age"].min() and age["max"] == frame["age"].max()
    assert contract["features"]["region"]["categories"] == sorted(frame["region"].dropna().unique())
    assert contract["features"]["contract_type"]["type"] == "int"


@pytest.mark.parametrize(
    ("feature", "value", "message"),
    [
        ("age", "forty", "feature 'age': expected a number (float), got 'forty'"),
        ("age", True, "feature 'age': expected a number (float), got True"),
        ("contract_type", 2.5, "feature 'contract_type': expected an integer category code (int64), got 2.5"),
        ("plan", 7, "feature 'plan': expected a string, got 7"),
    ],
)
def test_a_wrong_type_is_refused_naming_row_feature_value_and_type(frame, contract, feature, value, message):
    rows = clean_rows(frame)
    rows[1][feature] = value
    with pytest.raises(request_contract.RequestError, match=re.escape("row 1: " + message)):
        request_contract.check(rows, contract)


def test_a_missing_feature_is_refused(frame, contract):
    rows = clean_rows(frame)
    del rows[0]["tenure_months"]
    with pytest.raises(request_contract.RequestError, match=r"row 0: missing features \['tenure_months'\]"):
        request_contract.check(rows, contract)


def test_unusual_values_are_flagged_and_missing_ones_are_not(frame, contract):
    rows = clean_rows(frame, 4)
    rows[0]["age"] = frame["age"].max() * 1000  # 1000x outside the training range
    rows[1]["region"] = "atlantis"
    rows[2]["favourite_colour"] = "blue"
    rows[3].update(age=float("nan"), plan=None, payment_method="", contract_type=model_io.MISSING_INT)
    flags = request_contract.check(rows, contract)
    assert [[f["flag"] for f in row] for row in flags] == [
        [request_contract.OUT_OF_RANGE],
        [request_contract.UNSEEN],
        [request_contract.UNEXPECTED],
        [],
    ]
    assert flags[0][0]["feature"] == "age" and flags[0][0]["expected"] == [
        frame["age"].min(),
        frame["age"].max(),
    ]
    assert request_contract.check(clean_rows(frame, 20), contract) == [[]] * 20


@pytest.fixture(scope="module")
def served(tmp_path_factory, frame, contract):
    """The real model server on a model that carries its contract, logging every request."""
    root = tmp_path_factory.mktemp("contract")
    saved_models.build(root / "model")
    request_contract.write(str(root / "model" / "1"), contract)
    logs = root / "logs"
    args = ["--log-dir", str(logs)]
    with _local.LocalServer(str(root / "model"), NAME, 120, str(root / "server.log"), args) as server:
        yield server, str(root / "model"), str(logs)


def post(url, body, headers=None):
    data = json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"content-type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}"), dict(exc.headers)


def test_the_server_refuses_flags_answers_and_logs(served, frame):
    server, model_dir, logs = served
    url = f"{server.url}/v1/models/{NAME}:predict"

    rows = clean_rows(frame, 3)
    status, body, headers = post(url, {"instances": rows}, {"x-request-id": "req-clean"})
    assert status == 200 and "flags" not in body  # TF Serving's answer, unchanged
    expected = model_io.predict(model_io.load(model_dir), frame[list(saved_models.FEATURES)].head(3))
    np.testing.assert_allclose(body["predictions"], expected, atol=1e-6)
    assert headers.get("x-request-id") == "req-clean"

    bad = clean_rows(frame, 1)
    bad[0]["age"] = "forty"
    status, body, _ = post(url, {"instances": bad}, {"x-request-id": "req-bad"})
    assert status == 400 and "feature 'age'" in json.dumps(body) and "forty" in json.dumps(body)

    odd = clean_rows(frame, 2)
    odd[1]["region"] = "atlantis"
    status, body, _ = post(url, {"instances": odd}, {"x-request-id": "req-odd"})
    assert status == 200 and len(body["predictions"]) == 2
    assert body["flags"][0] == [] and body["flags"][1][0]["flag"] == request_contract.UNSEEN

    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    assert 'kfp_ct_request_flags_total{feature="region",flag="unseen_category",model="churn"} 1.0' in metrics

    table = prediction_log.read(logs, NAME)
    by_request = table.groupby("request_id")
    assert set(by_request.groups) == {"req-clean", "req-bad", "req-odd"}
    assert list(by_request.get_group("req-clean")["status"]) == [200] * 3
    refused = by_request.get_group("req-bad").iloc[0]
    assert refused["status"] == 400 and "forty" in refused["error"]
    odd_rows = by_request.get_group("req-odd")
    assert list(odd_rows["flagged"]) == [False, True] and list(odd_rows["region"])[1] == "atlantis"
    np.testing.assert_allclose(
        by_request.get_group("req-clean")["prediction"].to_numpy(dtype=float), expected, atol=1e-6
    )
    assert (table["latency_ms"] > 0).all()


def test_v2_requests_are_flagged_too(served, frame):
    server, _, logs = served
    rows = clean_rows(frame, 2)
    rows[0]["age"] = 10_000.0
    inputs = []
    for name, kind in saved_models.FEATURES.items():
        datatype = {"float": "FP32", "int": "INT64", "string": "BYTES"}[kind]
        inputs.append({"name": name, "shape": [2], "datatype": datatype, "data": [r[name] for r in rows]})
    status, body, _ = post(f"{server.url}/v2/models/{NAME}/infer", {"inputs": inputs, "id": "v2-req"})
    assert status == 200, body
    flags = json.loads(body["parameters"]["flags"])
    assert flags[0][0]["feature"] == "age" and flags[0][0]["flag"] == request_contract.OUT_OF_RANGE
    assert flags[1] == []
    logged = prediction_log.read(logs, NAME)
    assert list(logged[logged["request_id"] == "v2-req"]["flagged"]) == [True, False]


def test_the_log_writer_survives_its_folder_being_removed(tmp_path):
    """Rotation or cleanup may delete the log folder under a running server: the next record
    goes to a new file, not into the deleted one."""
    import shutil

    writer = prediction_log.Writer(str(tmp_path))
    entry = prediction_log.record(request_id="a", model=NAME, version="1", inputs=[{"x": 1}], outputs=[0.5])
    writer.write(entry)
    shutil.rmtree(tmp_path / NAME)
    writer.write({**entry, "id": "b"})
    assert list(prediction_log.read(str(tmp_path), NAME)["request_id"]) == ["b"]
