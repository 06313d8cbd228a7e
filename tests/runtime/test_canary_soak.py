"""deploy_model judging a Standard-mode canary by live traffic, as on a cluster: the fake
Kubernetes API's services are real model servers behind KServe's inference logger (its agent's
behaviour, tests/runtime/inference_logger.py), which sends every request and response to the
real prediction-log sink; a router sends live traffic through the cluster's DNS to the stable
predictor and, while a canary runs, to the canary's own Service. The judge reads the sink's
records, told apart by the version the predictor pods' annotation puts in each event."""

import csv
import itertools
import json
import subprocess
import sys
import threading
import time
import urllib.request
from itertools import count
from pathlib import Path

import pytest
import saved_models
from conftest import free_port, stop
from fake_kube import FakeKube
from inference_logger import InferenceLogger

from components import kserve, prediction_log
from components.deploy_model import _local, runtime
from components.make_demo_data import runtime as demo

NAME, NS = "churn", "models"
URIS = {v: f"gs://models/churn/v{v}" for v in ("1", "2", "3", "4")}
# v1: stable; v2: the same model again; v3: the same model, failing a third of live requests;
# v4: a model that ranks customers the wrong way round (weights x-1).
SOAK = {"canary_soak_seconds": 1, "canary_min_requests": 30}
LOOSE_LATENCY = {"max_latency_p95_ratio": 50.0}  # latency on a shared 2-core machine is noise


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    saved_models.build(root / "a", weight=1.0)
    saved_models.build(root / "inverted", weight=-1.0)
    return {name: str(root / name) for name in ("a", "inverted")}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    eval_path = str(demo.write(demo.generate(200, seed=7), root / "eval.parquet"))
    return eval_path, demo.generate(3000, seed=11)


@pytest.fixture(scope="module")
def sink(tmp_path_factory):
    logs = tmp_path_factory.mktemp("logs")
    port = free_port()
    with open(logs / "sink.log", "w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "components.prediction_log_sink",
                "--log-dir",
                str(logs / "records"),
                "--port",
                str(port),
                "--pair-timeout-s",
                "0.5",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not _answers(f"{url}/healthz"):
        assert process.poll() is None and time.monotonic() < deadline, (logs / "sink.log").read_text()
        time.sleep(0.1)
    yield url, str(logs / "records")
    stop(process)


def _answers(url: str) -> bool:
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=2):
            return True
    except OSError:
        return False


def every_third_live_request():
    """fail(request_id) for a predictor that fails every third live request it gets (counted
    where it is served: which ids reach a canary depends on the traffic split)."""
    served = itertools.count(1)
    return lambda request_id: request_id.startswith("live-") and next(served) % 3 == 0


@pytest.fixture(scope="module")
def predictors(models, sink, tmp_path_factory):
    """What each registered version's predictor pod answers with: a real model server behind
    the inference logger, whose events carry the pod's version annotation."""
    sink_url, _ = sink
    logs = tmp_path_factory.mktemp("server-logs")
    with (
        _local.LocalServer(models["a"], NAME, 120, str(logs / "a.log")) as a,
        _local.LocalServer(models["inverted"], NAME, 120, str(logs / "inverted.log")) as inverted,
    ):
        upstream = {"1": a.url, "2": a.url, "3": a.url, "4": inverted.url}
        agents = {
            v: InferenceLogger(
                url, sink_url, NAME, {kserve.VERSION_LABEL: v},
                fail=every_third_live_request() if v == "3" else None,
            )
            for v, url in upstream.items()
        }
        for agent in agents.values():
            agent.__enter__()
        try:
            yield {URIS[v]: agent.url for v, agent in agents.items()}
        finally:
            for agent in agents.values():
                agent.__exit__(None, None, None)


class Router:
    """Live traffic as the cluster routes it: half to the stable predictor's Service and, while
    a canary runs, half to the canary's own; each request 20 rows of fresh data, with a Ce-Id
    the labels can be joined on (written to ``labels`` as they are sent)."""

    def __init__(self, cluster, rows, labels_path: Path, to_canary: bool = True):
        self.cluster, self.rows, self.to_canary = cluster, rows, to_canary
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": cluster.proxy_url}))
        self.labels_path = labels_path
        self.ids = count()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        with open(self.labels_path, "w", newline="") as out:
            csv.writer(out).writerow(["request_id", "row", "churned"])
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        self.thread.join(timeout=30)

    def _run(self):
        while not self.stop.is_set():
            view = self.cluster.serving(NS, NAME)
            if not view:
                time.sleep(0.02)
                continue
            services = [kserve.predictor_service(NAME, view["spec"]["predictor"])]
            canaries = kserve.canaries(view)
            if canaries and self.to_canary:
                services.append(kserve.predictor_service(NAME, canaries[0]["predictor"]))
            for service in services:
                self._send(service)

    def _send(self, service: str):
        n = next(self.ids)
        batch = self.rows.sample(20, random_state=n)
        request_id = f"live-{n}"
        body = json.dumps(
            {"instances": json.loads(batch.drop(columns=["churned"]).to_json(orient="records"))}
        )
        request = urllib.request.Request(
            f"http://{service}.{NS}.svc.cluster.local/v1/models/{NAME}:predict",
            data=body.encode(),
            headers={"Content-Type": "application/json", "Ce-Id": request_id},
            method="POST",
        )
        with open(self.labels_path, "a", newline="") as out:
            csv.writer(out).writerows([request_id, i, y] for i, y in enumerate(batch["churned"]))
        try:
            with self.opener.open(request, timeout=30) as response:
                response.read()
        except OSError:
            pass  # a failing predictor or a Service that does not resolve yet


@pytest.fixture
def cluster(predictors, tmp_path, monkeypatch):
    with FakeKube(predictors, ready_after=2) as fake:
        fake.kubeconfig_path = fake.kubeconfig(tmp_path / "kubeconfig")
        monkeypatch.setenv("http_proxy", fake.proxy_url)
        monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
        urllib.request.install_opener(urllib.request.build_opener())
        yield fake
    urllib.request.install_opener(None)


def deploy(cluster, models, data, sink, tmp_path, version, model="a", **kwargs):
    out = tmp_path / f"v{version}"
    healthy, metadata = runtime.run(
        model_dir=models[model],
        model_uri=URIS[version],
        eval_data_path=data[0],
        deployment_dir=str(out / "deployment"),
        report_path=str(out / "report.md"),
        verdict_path=str(out / "verdict.json"),
        service_name=NAME,
        storage_uri=URIS[version],
        model_version=version,
        target="kserve",
        namespace=NS,
        deployment_mode="Standard",
        canary_traffic_percent=50,
        prediction_logger_url="http://prediction-log-sink.monitoring.svc.cluster.local",
        prediction_log_uri=sink[1],
        ready_timeout_seconds=5,
        poll_interval_seconds=0.05,
        kubeconfig=cluster.kubeconfig_path,
        **kwargs,
    )
    verdict = json.loads((out / "verdict.json").read_text())
    return healthy, metadata, {c["name"]: c for c in verdict["checks"]}, (out / "report.md").read_text()


@pytest.fixture
def stable(cluster, models, data, sink, tmp_path):
    healthy, _, _, report = deploy(cluster, models, data, sink, tmp_path, "1")
    assert healthy, report
    return cluster.serving(NS, NAME)


def test_the_predictor_pods_carry_their_version_into_the_logger_events(cluster, stable):
    predictor = stable["spec"]["predictor"]
    assert predictor["annotations"][kserve.VERSION_LABEL] == "1"
    assert predictor["logger"]["metadataAnnotations"] == [kserve.VERSION_LABEL]


def test_a_canary_that_serves_like_the_stable_model_is_promoted_after_its_soak(
    cluster, models, data, sink, tmp_path, stable
):
    with Router(cluster, data[1], tmp_path / "labels.csv"):
        healthy, metadata, checks, report = deploy(
            cluster,
            models,
            data,
            sink,
            tmp_path,
            "2",
            **SOAK,
            # two samples of 600 rows of one model: their ROC AUCs differ by about 0.025 (1 sd)
            canary_limits={**LOOSE_LATENCY, "max_metric_drop": 0.1},
            canary_labels_uri=str(tmp_path / "labels.csv"),
            blessing_path=blessing(tmp_path),
        )
    assert healthy and metadata["action"] == "canary-promoted", report
    traffic = checks["canary-traffic"]
    assert traffic["status"] == "pass" and traffic["value"] >= 30, traffic
    for name in ("canary-error-rate", "canary-predictions", "canary-performance"):
        assert checks[name]["status"] == "pass", checks[name]
    assert checks["canary-error-rate"]["value"] == 0
    # judged before promotion, and on the sink's records of the live requests only
    names = list(checks)
    assert names.index("smoke-test") < names.index("canary-traffic") < names.index("promote")
    logged = prediction_log.read(sink[1], NAME)
    assert {"1", "2"} <= set(logged["version"])
    assert kserve.storage_uri_of(cluster.serving(NS, NAME)) == URIS["2"]


def test_a_canary_that_fails_live_requests_is_rolled_back(cluster, models, data, sink, tmp_path, stable):
    with Router(cluster, data[1], tmp_path / "labels.csv"):
        healthy, metadata, checks, report = deploy(
            cluster, models, data, sink, tmp_path, "3", **SOAK, canary_limits=LOOSE_LATENCY
        )
    assert not healthy and metadata["rolled_back"], report
    assert checks["smoke-test"]["status"] == "pass"  # Ready and smoke-tested: only traffic shows it
    errors = checks["canary-error-rate"]
    assert errors["status"] == "fail" and errors["value"] >= 0.2, errors  # 1/3 of 3+ requests, at least 1/5
    view = cluster.serving(NS, NAME)
    assert kserve.storage_uri_of(view) == URIS["1"] and not kserve.canaries(view)


def test_a_canary_whose_predictions_shift_is_rolled_back(cluster, models, data, sink, tmp_path, stable):
    with Router(cluster, data[1], tmp_path / "labels.csv"):
        healthy, metadata, checks, report = deploy(
            cluster, models, data, sink, tmp_path, "4", model="inverted", **SOAK, canary_limits=LOOSE_LATENCY
        )
    assert not healthy and metadata["rolled_back"], report
    assert checks["canary-error-rate"]["status"] == "pass"
    shift = checks["canary-predictions"]
    assert shift["status"] == "fail" and shift["value"] > 0.2, shift
    assert kserve.storage_uri_of(cluster.serving(NS, NAME)) == URIS["1"]


def test_where_labels_exist_a_worse_canary_is_rolled_back(cluster, models, data, sink, tmp_path, stable):
    with Router(cluster, data[1], tmp_path / "labels.csv"):
        healthy, _, checks, report = deploy(
            cluster,
            models,
            data,
            sink,
            tmp_path,
            "4",
            model="inverted",
            **SOAK,
            # only performance judges here: its prediction distribution is mirrored too
            canary_limits={**LOOSE_LATENCY, "max_prediction_psi": 100.0},
            canary_labels_uri=str(tmp_path / "labels.csv"),
            blessing_path=blessing(tmp_path),
        )
    assert checks["canary-predictions"]["status"] == "pass"
    performance = checks["canary-performance"]
    assert not healthy and performance["status"] == "fail", report
    assert "roc_auc" in performance["reason"] and performance["value"] > 0.3, performance
    assert kserve.storage_uri_of(cluster.serving(NS, NAME)) == URIS["1"]  # rolled back


def test_too_little_canary_traffic_is_not_promoted(cluster, models, data, sink, tmp_path, stable):
    with Router(cluster, data[1], tmp_path / "labels.csv", to_canary=False):
        healthy, metadata, checks, report = deploy(
            cluster, models, data, sink, tmp_path, "2", canary_soak_seconds=0.5, canary_min_requests=5
        )
    assert not healthy and metadata["rolled_back"], report
    traffic = checks["canary-traffic"]
    assert traffic["status"] == "fail" and traffic["value"] == 0 and "too little traffic" in traffic["reason"]
    assert kserve.storage_uri_of(cluster.serving(NS, NAME)) == URIS["1"]


def test_soak_arguments_are_checked_up_front(models, data, tmp_path):
    common = dict(
        model_dir=models["a"],
        model_uri=URIS["2"],
        eval_data_path=data[0],
        deployment_dir=str(tmp_path / "d"),
        report_path=str(tmp_path / "r.md"),
        service_name=NAME,
        target="kserve",
        model_version="2",
    )
    with pytest.raises(ValueError, match="prediction_log_uri"):
        runtime.run(**common, canary_soak_seconds=10)
    with pytest.raises(ValueError, match="not among"):
        runtime.run(
            **common,
            prediction_log_uri=str(tmp_path),
            canary_soak_seconds=10,
            canary_limits={"max_errors": 1},
        )
    with pytest.raises(ValueError, match="model_version"):
        runtime.run(
            **{**common, "model_version": ""}, prediction_log_uri=str(tmp_path), canary_min_requests=5
        )


def blessing(tmp_path) -> str:
    """What the model gate hands deploy_model: the task, the label and the classes."""
    path = tmp_path / "blessing.json"
    path.write_text(json.dumps({"details": {"task": "binary", "label": "churned", "classes": ["0", "1"]}}))
    return str(path)
