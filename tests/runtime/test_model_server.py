"""The local model server against real clients: tritonclient (an Open Inference Protocol v2
client) for metadata and JSON and binary tensors, and raw v1 bodies in TF Serving's format."""

import json
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
