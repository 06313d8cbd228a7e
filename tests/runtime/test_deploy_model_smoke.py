"""deploy_model's smoke requests are ones TF Serving accepts: no JSON null, typed by the signature.

Between the fake cluster and the real local model server sits a gate that reads each v1 predict
body by TF Serving's REST rules (tensorflow_serving/util/json_tensor.cc): ``NaN``/``Infinity``
tokens are numbers, ``null`` is refused for every dtype, an int64 input takes only JSON
integers, a float input numbers, a string input strings. A body it refuses gets TF Serving's
400 answer, so a smoke request the cluster's runtime would refuse fails the deployment here too.
"""

import json
import math
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest
from fake_kube import FakeKube
from relay import Relay

from components import model_io
from components.deploy_model import _smoke, runtime
from components.make_demo_data import runtime as demo

NAME, NS, URI = "churn", "models", "gs://models/churn/a"
FLOAT_MAX_INT = (1 << 24) - 1  # the largest JSON integer TF Serving takes for a float input


def tf_serving_refusal(body: dict, scorer_dtypes: dict[str, str]) -> str:
    """Why TF Serving's JSON parser would refuse a row-format predict body ("" if it would not)."""
    rows = body.get("instances")
    if not isinstance(rows, list) or not rows:
        return "'instances' must be a non-empty list"
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or set(row) != set(scorer_dtypes):
            return f"instance {i} must have exactly the keys {sorted(scorer_dtypes)}"
        for name, value in row.items():
            dtype = scorer_dtypes[name]
            if value is None:
                return f"instance {i} key {name}: JSON Value: null Type: Null is not of expected type {dtype}"
            if isinstance(value, bool):
                return f"instance {i} key {name}: a boolean is not of expected type: {dtype}"
            if dtype == "int64" and not isinstance(value, int):
                return f"instance {i} key {name}: {value!r} is not of expected type: int64"
            if dtype == "float32":
                if not isinstance(value, (int, float)):
                    return f"instance {i} key {name}: {value!r} is not of expected type: float"
                if isinstance(value, int) and abs(value) > FLOAT_MAX_INT:
                    return f"instance {i} key {name}: {value} cannot be a float without loss of precision"
            if dtype == "string" and not isinstance(value, str):
                return f"instance {i} key {name}: {value!r} is not of expected type: string"
    return ""


class TfServingGate(Relay):
    """A front for a local model server that answers as TF Serving would for bodies TF Serving
    refuses, forwards the rest, and records every predict body."""

    def __init__(self, upstream: str, scorer_dtypes: dict[str, str]):
        self.bodies: list[bytes] = []
        self.refusals: list[str] = []

        def intercept(method: str, path: str, body: bytes | None):
            if method != "POST" or not path.endswith(":predict"):
                return None
            self.bodies.append(body)
            try:
                # Python's json, like TF Serving's RapidJSON with kParseNanAndInfFlag, reads
                # NaN and Infinity as numbers.
                refusal = tf_serving_refusal(json.loads(body), scorer_dtypes)
            except ValueError as exc:
                refusal = f"JSON Parse error: {exc}"
            if not refusal:
                return None
            self.refusals.append(refusal)
            return 400, json.dumps({"error": refusal}).encode()

        super().__init__(lambda host, path: upstream, intercept)

    def values(self):
        """Every value of every recorded instance."""
        return [v for body in self.bodies for row in json.loads(body)["instances"] for v in row.values()]


@pytest.fixture
def gate(scorer_server, scorer_dtypes):
    with TfServingGate(scorer_server.url, scorer_dtypes) as front:
        yield front


def eval_frame(rows: int = 12) -> pd.DataFrame:
    """Demo rows with a missing float, string and integer-coded value in the first rows (the
    ones deploy_model sends)."""
    frame = demo.generate(rows, seed=11)
    frame.loc[0, "total_charges"] = np.nan
    frame.loc[1, "payment_method"] = None
    frame.loc[2, "plan"] = None
    return frame


def deploy(tmp_path, scorer_dir, eval_path, gate):
    with FakeKube({URI: gate.url}, ready_after=1) as cluster:
        out = tmp_path / "out"
        healthy, _ = runtime.run(
            model_dir=scorer_dir,
            model_uri=URI,
            storage_uri=URI,
            eval_data_path=str(eval_path),
            deployment_dir=str(out / "deployment"),
            report_path=str(out / "report.md"),
            service_name=NAME,
            target="kserve",
            namespace=NS,
            ready_timeout_seconds=5,
            poll_interval_seconds=0.05,
            kubeconfig=cluster.kubeconfig(tmp_path / "kubeconfig"),
        )
    return healthy, (out / "report.md").read_text()


def test_the_gate_refuses_what_tf_serving_refuses(gate, scorer_dtypes):
    """The gate is strict: null, 3.0 for an int64 input and a number for a string are refused."""
    row = _smoke.instances(eval_frame(1)[list(scorer_dtypes)], scorer_dtypes)[0]
    for bad in ({"total_charges": None}, {"contract_type": 1.0}, {"plan": 3}, {"contract_type": None}):
        body = json.dumps({"instances": [{**row, **bad}]}).encode()
        request = urllib.request.Request(f"{gate.url}/v1/models/{NAME}:predict", data=body, method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 400 and "not of expected type" in refused.value.read().decode()


def test_kserve_smoke_requests_carry_no_null(tmp_path, scorer_dir, gate):
    frame = eval_frame()
    eval_path = demo.write(frame, tmp_path / "eval.parquet")

    healthy, report = deploy(tmp_path, scorer_dir, eval_path, gate)

    assert gate.refusals == [] and healthy, report
    assert gate.bodies and all(b"null" not in body for body in gate.bodies)
    values = gate.values()
    assert None not in values
    # The rows with missing values were sent, as the model's markers.
    assert any(isinstance(v, float) and math.isnan(v) for v in values) and "" in values
    assert b"NaN" in gate.bodies[0]


def test_missing_values_of_every_dtype_pass_tf_serving_and_match_offline(gate, scorer_dir, scorer_dtypes):
    frame = eval_frame()[list(scorer_dtypes)]
    frame["contract_type"] = frame["contract_type"].astype("float64")
    frame.loc[3, "contract_type"] = np.nan  # an int-coded column with a gap reads as float
    offline = model_io.predict(scorer_dir, frame)

    result = _smoke.smoke(gate.url, NAME, frame, offline, 1e-5, protocol="v1", dtypes=scorer_dtypes)

    assert result.ok, result.reason
    assert gate.refusals == []
    row = json.loads(gate.bodies[-1])["instances"][3]
    assert row["contract_type"] == model_io.MISSING_INT and isinstance(row["contract_type"], int)


def test_kserve_smoke_sends_a_missing_integer_code_as_minus_one(tmp_path, scorer_dir, gate):
    frame = eval_frame()
    frame["contract_type"] = frame["contract_type"].astype("float64")
    frame.loc[3, "contract_type"] = np.nan
    eval_path = demo.write(frame, tmp_path / "eval.parquet")

    healthy, report = deploy(tmp_path, scorer_dir, eval_path, gate)

    assert gate.refusals == [] and healthy, report
