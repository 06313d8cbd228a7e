"""The local model server against real clients: tritonclient (an Open Inference Protocol v2
client) for metadata and JSON and binary tensors, and raw v1 bodies in TF Serving's format."""

import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
import tritonclient.http as triton

from components import model_io
from components.make_demo_data import runtime as demo

NAME = "churn"
V2_TYPES = {"float32": "FP32", "int64": "INT64", "string": "BYTES"}


@pytest.fixture(scope="module")
def client(scorer_server):
    with triton.InferenceServerClient(url=scorer_server.url.removeprefix("http://")) as c:
        yield c


@pytest.fixture(scope="module")
def frame(scorer_dtypes):
    """Demo rows with a missing value of every dtype."""
    rows = demo.generate(16, seed=5)[list(scorer_dtypes)]
    rows["contract_type"] = rows["contract_type"].astype("float64")
    rows.loc[0, "total_charges"] = np.nan
    rows.loc[1, "plan"] = None
    rows.loc[2, "contract_type"] = np.nan
    return rows.reset_index(drop=True)


def test_metadata_lists_every_input_and_output_with_datatype_and_shape(client, scorer_dtypes):
    metadata = client.get_model_metadata(NAME)

    assert metadata["name"] == NAME
    assert {i["name"]: (i["datatype"], i["shape"]) for i in metadata["inputs"]} == {
        name: (V2_TYPES[dtype], [-1]) for name, dtype in scorer_dtypes.items()
    }
    assert metadata["outputs"] == [{"name": model_io.OUTPUT_KEY, "datatype": "FP32", "shape": [-1]}]


def triton_inputs(metadata: dict, frame, binary: bool) -> list:
    """Requests built only from the server's metadata, as a generic v2 client does."""
    inputs = []
    for entry in metadata["inputs"]:
        dtype = {"FP32": "float32", "INT64": "int64", "BYTES": "string"}[entry["datatype"]]
        values = model_io.column_values(frame[entry["name"]], dtype)
        if dtype == "string":
            values = np.array([v.encode() for v in values], dtype=object)
        tensor = triton.InferInput(entry["name"], [len(frame)], entry["datatype"])
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    return inputs


@pytest.mark.parametrize("binary", [False, True], ids=["json-tensors", "binary-tensors"])
def test_inference_matches_the_offline_predictions(client, scorer_dir, frame, binary):
    metadata = client.get_model_metadata(NAME)
    outputs = [triton.InferRequestedOutput(model_io.OUTPUT_KEY, binary_data=binary)]

    result = client.infer(NAME, triton_inputs(metadata, frame, binary), outputs=outputs)

    served = result.as_numpy(model_io.OUTPUT_KEY)
    assert served is not None and served.shape == (len(frame),)
    np.testing.assert_allclose(served, model_io.predict(scorer_dir, frame), atol=1e-5, rtol=0)


def post(url: str, body: bytes) -> dict:
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_v1_takes_missing_values_as_tf_serving_does(scorer_server, scorer_dir, frame):
    """NaN (the bare token), "" and -1: the format the README documents for both servers."""
    rows = []
    for record in frame.to_dict("records"):
        rows.append({
            **record,
            "total_charges": record["total_charges"],  # float NaN -> the NaN token below
            "plan": record["plan"] or "",
            "contract_type": -1 if np.isnan(record["contract_type"]) else int(record["contract_type"]),
        })
    body = json.dumps({"instances": rows}, allow_nan=True).encode()
    assert b"NaN" in body and b"null" not in body

    answer = post(f"{scorer_server.url}/v1/models/{NAME}:predict", body)

    np.testing.assert_allclose(answer["predictions"], model_io.predict(scorer_dir, frame), atol=1e-5, rtol=0)


def test_v1_still_reads_null_as_missing(scorer_server, scorer_dir, frame):
    body = json.dumps({"instances": [{**frame.iloc[0].to_dict(), "total_charges": None}]}).encode()

    answer = post(f"{scorer_server.url}/v1/models/{NAME}:predict", body)

    expected = model_io.predict(scorer_dir, frame.iloc[[0]].assign(total_charges=np.nan))
    np.testing.assert_allclose(answer["predictions"], expected, atol=1e-5, rtol=0)


# Batching: a server that batches at most 4 rows per model call and lets a batch that is not
# full wait up to 3 s for more, so that which requests share a call is decided by counts (4
# rows, or whatever came within the wait), never by how fast this machine happens to be.
MAX_ROWS, MAX_WAIT_MS = 4, 3000


ULP = {"rtol": 1e-6, "atol": 0}
"""Batched answers equal in-process ones up to float32 rounding: a row's last bit can depend
on where it sits in a model call (TensorFlow's vectorised kernels round the elements of a
full SIMD packet and a tail element differently), in process as well as served."""


@pytest.fixture(scope="module")
def batch_server(scorer_dir, tmp_path_factory):
    """The scorer with its request contract (train_model writes one), the check and logging on."""
    import shutil

    import saved_models

    from components import request_contract
    from components.deploy_model import _local

    root = tmp_path_factory.mktemp("batching")
    model_dir = shutil.copytree(scorer_dir, root / "model")
    contract = request_contract.build(demo.generate(500, seed=0), saved_models.FEATURES)
    request_contract.write(str(model_dir / "1"), contract)
    args = ["--max-batch-rows", str(MAX_ROWS), "--max-batch-wait-ms", str(MAX_WAIT_MS)]
    args += ["--log-dir", str(root / "logs")]
    with _local.LocalServer(str(model_dir), NAME, 120, str(root / "server.log"), args) as local:
        local.log_dir = root / "logs"
        yield local


def batch_calls(url: str) -> dict[str, float]:
    """The server's rows-per-model-call histogram for NAME: count (calls), sum (rows), and the
    cumulative count of calls with at most N rows as "le=N"."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("kfp_ct_batch_rows") and f'model="{NAME}"' in line:
            key, value = line.rsplit(" ", 1)
            if key.startswith("kfp_ct_batch_rows_bucket"):
                key = "le=" + key.split('le="')[1].split('"')[0].removesuffix(".0")
            else:
                key = key.split("{")[0].removeprefix("kfp_ct_batch_rows_")
            values[key] = float(value)
    return values


def burst(requests: list[tuple[str, bytes, str]]) -> list[tuple[int, dict, str]]:
    """All requests (path URL, body, x-request-id) sent at once from their own threads:
    (status, JSON answer, x-request-id answered) each, in order."""
    answers: list = [None] * len(requests)
    barrier = threading.Barrier(len(requests))

    def send(index: int) -> None:
        url, body, request_id = requests[index]
        headers = {"Content-Type": "application/json", "x-request-id": request_id}
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        barrier.wait()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = json.loads(response.read())
                answers[index] = (response.status, answer, response.headers["x-request-id"])
        except urllib.error.HTTPError as exc:
            answers[index] = (exc.code, json.loads(exc.read()), exc.headers.get("x-request-id"))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def v1(server, rows: list[dict], request_id: str) -> tuple[str, bytes, str]:
    return f"{server.url}/v1/models/{NAME}:predict", json.dumps({"instances": rows}).encode(), request_id


def delta(before: dict, after: dict) -> dict:
    return {key: after[key] - before.get(key, 0.0) for key in after}


@pytest.fixture(scope="module")
def rows(frame, scorer_dtypes):
    from components.deploy_model import _smoke

    return _smoke.instances(frame, scorer_dtypes)


def test_concurrent_requests_are_batched_up_to_the_bound_and_answered_as_in_process(
    batch_server, scorer_dir, frame, rows
):
    before = batch_calls(batch_server.url)

    answers = burst([v1(batch_server, [rows[i]], f"row-{i}") for i in range(8)])

    calls = delta(before, batch_calls(batch_server.url))
    assert [status for status, _, _ in answers] == [200] * 8
    served = np.array([answer["predictions"][0] for _, answer, _ in answers], dtype=np.float32)
    np.testing.assert_allclose(served, model_io.predict(scorer_dir, frame.iloc[:8]), **ULP)
    # 8 one-row requests in 2 model calls of exactly 4 rows: batched, never beyond the bound
    assert (calls["count"], calls["sum"]) == (2, 8)
    assert (calls["le=2"], calls["le=4"]) == (0, 2)


def test_a_bad_request_in_a_burst_gets_its_400_and_the_others_are_answered(
    batch_server, scorer_dir, frame, rows
):
    good = [v1(batch_server, [rows[i]], f"good-{i}") for i in range(3)]
    bad = v1(batch_server, [{**rows[3], "age": "forty"}], "bad")
    before = batch_calls(batch_server.url)

    answers = burst([*good, bad])

    calls = delta(before, batch_calls(batch_server.url))
    assert [status for status, _, _ in answers] == [200, 200, 200, 400]
    assert "'age'" in answers[3][1]["error"] and "forty" in answers[3][1]["error"]
    served = np.array([answer["predictions"][0] for _, answer, _ in answers[:3]], dtype=np.float32)
    np.testing.assert_allclose(served, model_io.predict(scorer_dir, frame.iloc[:3]), **ULP)
    # The bad request never joined the batch; the 3 others, one short of the bound, went
    # together once the wait bound was up instead of waiting for a fourth.
    assert (calls["count"], calls["sum"]) == (1, 3)


def test_v1_and_v2_requests_share_a_batch(batch_server, scorer_dir, frame, rows, scorer_dtypes):
    from components.deploy_model import _smoke

    v2_body = json.dumps({"inputs": _smoke.v2_inputs(frame.iloc[4:6], scorer_dtypes)}).encode()
    v2 = (f"{batch_server.url}/v2/models/{NAME}/infer", v2_body, "v2")
    before = batch_calls(batch_server.url)

    answers = burst([v1(batch_server, [rows[0]], "v1-0"), v2, v1(batch_server, [rows[1]], "v1-1")])

    calls = delta(before, batch_calls(batch_server.url))
    assert [status for status, _, _ in answers] == [200, 200, 200]
    expected = model_io.predict(scorer_dir, frame.iloc[[0, 4, 5, 1]])
    (_, first, _), (_, v2_answer, _), (_, last, _) = answers
    served = [first["predictions"][0], *v2_answer["outputs"][0]["data"], last["predictions"][0]]
    np.testing.assert_allclose(np.array(served, dtype=np.float32), expected, **ULP)
    assert (calls["count"], calls["sum"]) == (1, 4)


def test_every_request_of_a_batch_is_logged_with_its_own_id(batch_server, frame, rows):
    from components import prediction_log

    answers = burst([v1(batch_server, [rows[i]], f"logged-{i}") for i in range(4)])

    assert [request_id for _, _, request_id in answers] == [f"logged-{i}" for i in range(4)]
    logged = prediction_log.read(str(batch_server.log_dir), NAME).set_index("request_id")
    for i, (_, answer, _) in enumerate(answers):
        record = logged.loc[f"logged-{i}"]
        assert record["status"] == 200
        assert record["age"] == rows[i]["age"] and record["plan"] == rows[i]["plan"]
        assert record["prediction"] == answer["predictions"][0]
