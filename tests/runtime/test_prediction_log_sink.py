"""The prediction-log sink against KServe's inference logger as it sends: CloudEvents in
binary mode (built with the CloudEvents SDK, ce-time with nanoseconds as KServe's Go SDK
writes it), request and response in either order, a request whose response is never logged
(what KServe does for a refused request), a lone response, a late half, a readiness call,
v2 bodies; ``prediction_log.read`` then returns the right rows. The sink runs with the command
and args of its rendered Deployment (manifests/prediction-log-sink/overlays/prod)."""

import json
import subprocess
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
import rendered
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from conftest import free_port

from components import prediction_log, prediction_log_sink

MODEL = "churn-model"
PAIR_TIMEOUT_S = 1.0
ROW_A = {"age": 41.0, "plan": "basic", "contract_type": 0}
ROW_B = {"age": 63.0, "plan": "premium", "contract_type": 2}


@pytest.fixture(scope="module")
def sink(tmp_path_factory):
    (deployment,) = rendered.render("prediction-log-sink/overlays/prod")["Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (mount,) = container["volumeMounts"]
    root = tmp_path_factory.mktemp("sink")
    port = free_port()
    cmd = rendered.command(
        container,
        {
            mount["mountPath"]: str(root / "logs"),  # the PVC
            # Loopback and a free port: this machine is shared (host networking), a pod is not.
            "0.0.0.0": "127.0.0.1",
            "8080": str(port),
            # Unpaired halves are written after a second, not two minutes, so the test can wait.
            "--pair-timeout-s": str(PAIR_TIMEOUT_S),
        },
    )
    log_path = root / "sink.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    pytest.fail(f"{cmd} did not start:\n{log_path.read_text()}")
                time.sleep(0.1)
        yield url, str(root / "logs"), log_path
        process.terminate()
        assert process.wait(timeout=20) == 0, log_path.read_text()


def go_time(when: datetime) -> str:
    """RFC 3339 with nanoseconds, as cloudevents sdk-go writes ce-time."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def send(url, kind, request_id, when, body, content_type="application/json"):
    attributes = {
        "type": prediction_log_sink.REQUEST_TYPE if kind == "request" else prediction_log_sink.RESPONSE_TYPE,
        "source": "http://churn-model-predictor-00001-deployment-abc:9081/",
        "id": request_id,
        "time": go_time(when),
        "inferenceservicename": MODEL,
        "namespace": "ct-prod",
        "component": "predictor",
        "endpoint": "default",
        "metadata": "{}",
    }
    if content_type:
        attributes["datacontenttype"] = content_type
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers, payload = to_binary(CloudEvent(attributes, data))
    return post(url, headers, payload)


def post(url, headers, payload):
    request = urllib.request.Request(url, data=payload, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture(scope="module")
def logged(sink):
    url, logs, log_path = sink
    t0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=30)
    at = lambda ms: t0 + timedelta(milliseconds=ms)  # noqa: E731
    flags = [[{"feature": "age", "flag": "out_of_range", "value": 410.0, "expected": [18, 90]}], []]
    statuses = [
        # A: request, then response (two rows, one flagged): 12.5 ms apart
        send(url, "request", "req-a", at(0), {"instances": [ROW_A, ROW_B]}),
        send(url, "response", "req-a", at(12.5), {"predictions": [0.25, 0.75], "flags": flags}),
        # B: the response first (the agent's workers may deliver out of order)
        send(url, "response", "req-b", at(1003), {"predictions": [0.5]}),
        send(url, "request", "req-b", at(1000), {"instances": [ROW_B]}),
        # C: a request the server refused (400): KServe logs no response for it
        send(url, "request", "req-c", at(2000), {"instances": [{**ROW_A, "age": "forty"}]}),
        # D: a response whose request was lost
        send(url, "response", "req-d", at(3000), {"predictions": [0.1]}),
        # E: a readiness call through the agent: no request body, no prediction
        send(url, "request", "req-e", at(4000), b"", content_type=""),
        send(url, "response", "req-e", at(4001), {"name": MODEL, "ready": True}),
        # F: v2 (Open Inference Protocol) JSON, no content-type header (the client sent none)
        send(
            url,
            "request",
            "req-f",
            at(5000),
            {
                "inputs": [
                    {"name": "age", "shape": [2], "datatype": "FP32", "data": [30.0, 50.0]},
                    {"name": "plan", "shape": [2], "datatype": "BYTES", "data": ["basic", "plus"]},
                ]
            },
            content_type="",
        ),
        send(
            url,
            "response",
            "req-f",
            at(5020),
            {
                "model_name": MODEL,
                "outputs": [{"name": "predictions", "shape": [2], "datatype": "FP32", "data": [0.2, 0.4]}],
            },
            content_type="",
        ),
    ]
    assert statuses == [200] * len(statuses)  # KServe's agent counts anything else as a failure
    deadline = time.monotonic() + 15
    while "req-c" not in set(prediction_log.read(logs, MODEL)["request_id"]):
        assert time.monotonic() < deadline, f"req-c was never written:\n{log_path.read_text()}"
        time.sleep(0.2)
    # G: the response for C arrives after C was written unpaired: dropped, C is not counted twice
    assert send(url, "response", "req-c", at(2005), {"predictions": [0.3]}) == 200
    time.sleep(PAIR_TIMEOUT_S * 1.5)  # D has expired too by now
    return prediction_log.read(logs, MODEL), logs, log_path


def test_pairs_in_either_order_become_rows_with_inputs_predictions_and_latency(logged):
    frame, _, _ = logged
    a = frame[frame["request_id"] == "req-a"]
    assert a["row"].tolist() == [0, 1]
    assert a["age"].tolist() == [41.0, 63.0] and a["plan"].tolist() == ["basic", "premium"]
    assert a["prediction"].tolist() == [0.25, 0.75]
    assert a["flagged"].tolist() == [True, False]
    assert a["latency_ms"].tolist() == [12.5, 12.5]
    assert set(a["status"]) == {200} and a["error"].isna().all()
    b = frame[frame["request_id"] == "req-b"]
    assert b["prediction"].tolist() == [0.5] and b["age"].tolist() == [63.0]
    assert b["latency_ms"].tolist() == [3.0] and b["status"].tolist() == [200]
    assert b["time"].iloc[0] > a["time"].iloc[0]  # the request's ce-time, not the arrival


def test_a_request_without_a_response_is_written_as_unanswered(logged):
    frame, _, _ = logged
    (c,) = frame[frame["request_id"] == "req-c"].to_dict("records")
    assert c["status"] == prediction_log_sink.UNANSWERED_STATUS
    assert "no response was logged" in c["error"] and "200" in c["error"]
    assert pd.isna(c["prediction"])


def test_lone_responses_late_halves_and_readiness_calls_are_not_rows(logged):
    frame, _, log_path = logged
    assert sorted(frame["request_id"].unique()) == ["req-a", "req-b", "req-c", "req-f"]
    assert (frame["request_id"] == "req-c").sum() == 1
    log = log_path.read_text()
    assert "dropped the response of req-d" in log and "dropped the response of req-c" in log


def test_v2_bodies_are_read_as_rows(logged):
    frame, _, _ = logged
    f = frame[frame["request_id"] == "req-f"]
    assert f["age"].tolist() == [30.0, 50.0] and f["plan"].tolist() == ["basic", "plus"]
    assert f["prediction"].tolist() == [0.2, 0.4] and f["latency_ms"].tolist() == [20.0, 20.0]


def test_records_name_the_endpoint_that_answered(logged):
    _, logs, _ = logged
    lines = [json.loads(line) for path in sorted(_files(logs)) for line in open(path)]
    assert {entry["endpoint"] for entry in lines} == {"default"}


def _files(logs):
    import glob

    return glob.glob(f"{logs}/{MODEL}/*/*.jsonl")


def test_what_is_not_a_logger_event_is_refused_with_400(sink):
    url, _, _ = sink
    assert post(url, {"content-type": "application/json"}, b"{}") == 400
    headers = {"ce-id": "x", "ce-type": "com.example.other", "ce-source": "s", "ce-specversion": "1.0"}
    assert post(url, headers, b"{}") == 400


def test_pending_halves_are_bounded(tmp_path):
    writer = prediction_log.Writer(str(tmp_path))
    pairer = prediction_log_sink.Pairer(writer, pair_timeout_s=3600, max_pending=2)
    for i in range(3):
        headers = {
            "ce-id": f"r{i}",
            "ce-type": prediction_log_sink.REQUEST_TYPE,
            "ce-inferenceservicename": MODEL,
            "ce-time": go_time(datetime.now(timezone.utc)),
        }
        pairer.add(prediction_log_sink.parse_event(headers, json.dumps({"instances": [ROW_A]}).encode(), 0.0))
    assert pairer.pending() == 2  # the oldest was written as unanswered to make room
    assert prediction_log.read(str(tmp_path), MODEL)["request_id"].tolist() == ["r0"]
    assert pairer.flush() == 2 and pairer.pending() == 0
    writer.close()
    assert sorted(prediction_log.read(str(tmp_path), MODEL)["request_id"]) == ["r0", "r1", "r2"]
