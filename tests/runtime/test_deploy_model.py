"""deploy_model: KServe rollouts against a fake Kubernetes API whose services are real local
KServe model servers, and the local target against the real local server."""

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import saved_models
from conftest import stop
from fake_kube import FakeKube
from relay import Relay

from components import kserve, model_io, registry
from components.deploy_model import _local, _smoke, runtime
from components.make_demo_data import runtime as demo
from components.register_model import runtime as register

NAME, NS = "churn", "models"
URI_A, URI_B = "gs://models/churn/a", "gs://models/churn/b"
URI_BROKEN = "gs://models/churn/broken"  # its revision never becomes Ready
URI_WRONG = "gs://models/churn/wrong"  # the cluster serves model A under this URI


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    saved_models.build(root / "a", weight=1.0)
    saved_models.build(root / "b", weight=1.8)
    saved_models.build(root / "noisy", noisy=True)
    return {name: str(root / name) for name in ("a", "b", "noisy")}


@pytest.fixture(scope="module")
def eval_path(tmp_path_factory):
    return str(demo.write(demo.generate(200, seed=7), tmp_path_factory.mktemp("eval") / "eval.parquet"))


@pytest.fixture(scope="module")
def servers(models, tmp_path_factory):
    """Real KServe model servers: what the cluster's predictors for A and B answer with."""
    logs = tmp_path_factory.mktemp("logs")
    with (
        _local.LocalServer(models["a"], NAME, 120, str(logs / "a.log")) as a,
        _local.LocalServer(models["b"], NAME, 120, str(logs / "b.log")) as b,
    ):
        yield {URI_A: a.url, URI_B: b.url, URI_WRONG: a.url}


@pytest.fixture
def cluster(servers, tmp_path, monkeypatch):
    with FakeKube(servers, ready_after=2, never_ready={URI_BROKEN}) as fake:
        fake.kubeconfig_path = fake.kubeconfig(tmp_path / "kubeconfig")
        # The cluster's DNS: *.svc.cluster.local through the fake's proxy, loopback direct.
        # urllib reads the proxy settings when its opener is built: build a fresh one.
        monkeypatch.setenv("http_proxy", fake.proxy_url)
        monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
        urllib.request.install_opener(urllib.request.build_opener())
        yield fake
    urllib.request.install_opener(None)


def deploy(cluster, models, eval_path, tmp_path, model, uri, **kwargs):
    out = tmp_path / f"out-{len(list(tmp_path.glob('out-*')))}"
    kwargs = {
        "target": "kserve",
        "namespace": NS,
        "ready_timeout_seconds": 5,
        "poll_interval_seconds": 0.05,
        "kubeconfig": cluster.kubeconfig_path,
        **kwargs,
    }
    healthy, metadata = runtime.run(
        model_dir=models[model],
        model_uri=uri,
        eval_data_path=eval_path,
        deployment_dir=str(out / "deployment"),
        report_path=str(out / "report.md"),
        verdict_path=str(out / "verdict.json"),
        service_name=NAME,
        storage_uri=uri,
        **kwargs,
    )
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["gate"] == "deployment-is-healthy" and verdict["passed"] is healthy
    return healthy, metadata, (out / "report.md").read_text()


def live(cluster):
    return cluster.serving(NS, NAME)


def full_traffic(view):
    """(revision, storage URI) taking 100% of the traffic."""
    split = kserve.traffic(view)
    assert [t["percent"] for t in split if t["percent"] == 100], split
    return next(t["revision"] for t in split if t["percent"] == 100)


def test_first_deployment_creates_waits_and_smoke_tests(cluster, models, eval_path, tmp_path):
    healthy, metadata, report = deploy(cluster, models, eval_path, tmp_path, "a", URI_A)

    assert healthy, report
    view = live(cluster)
    assert view["spec"]["predictor"]["model"]["storageUri"] == URI_A
    assert view["spec"]["predictor"]["model"]["modelFormat"]["name"] == "tensorflow"
    assert view["metadata"]["annotations"][kserve.MODE_ANNOTATION] == "Knative"
    assert metadata["action"] == "created" and metadata["model_uri"] == URI_A
    assert metadata["url"] == cluster.servers[URI_A]
    assert [t["percent"] for t in metadata["traffic"]] == [100]
    assert "deployment-is-healthy: PASSED" in report
    assert [r["method"] for r in cluster.requests if r["method"] != "GET"] == ["POST"]
    assert kserve.current_storage_uri(NAME, NS, kubeconfig=cluster.kubeconfig_path) == URI_A
    assert kserve.current_storage_uri("absent", NS, kubeconfig=cluster.kubeconfig_path) is None


def test_our_serving_runtime_and_the_inference_logger_are_requested(cluster, models, eval_path, tmp_path):
    """serving_runtime names the ServingRuntime of manifests/kserve (our server, with the request
    check); a TF Serving runtimeVersion cannot stay (KServe would take it as that image's tag)."""
    sink = "http://prediction-log-sink.models.svc.cluster.local"
    healthy, _, report = deploy(
        cluster,
        models,
        eval_path,
        tmp_path,
        "a",
        URI_A,
        serving_runtime="kfp-ct-tensorflow",
        prediction_logger_url=sink,
    )
    assert healthy, report
    predictor = live(cluster)["spec"]["predictor"]
    assert predictor["model"]["runtime"] == "kfp-ct-tensorflow" and "runtimeVersion" not in predictor["model"]
    # each event carries the predictor pod's version annotation (the monitor and canary read it)
    assert predictor["logger"] == {"mode": "all", "url": sink, "metadataAnnotations": [kserve.VERSION_LABEL]}
    rendered = kserve.render(
        name=NAME,
        namespace=NS,
        storage_uri=URI_A,
        serving_runtime="kfp-ct-tensorflow",
        runtime_version="0.1.0",
    )
    assert rendered["spec"]["predictor"]["model"]["runtimeVersion"] == "0.1.0"  # asked for: kept


def test_canary_is_smoke_tested_then_promoted(cluster, models, eval_path, tmp_path):
    deploy(cluster, models, eval_path, tmp_path, "a", URI_A)
    first_revision = full_traffic(live(cluster))

    healthy, metadata, report = deploy(cluster, models, eval_path, tmp_path, "b", URI_B)

    assert healthy, report
    assert metadata["action"] == "canary-promoted"
    patches = [r for r in cluster.requests if r["method"] == "PATCH"]
    assert all(r["content_type"] == "application/merge-patch+json" for r in patches)
    assert patches[0]["body"]["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert patches[0]["body"]["spec"]["predictor"]["model"]["storageUri"] == URI_B
    assert patches[1]["body"]["spec"] == {"predictor": {"canaryTrafficPercent": 100}}
    # every write is conditional on the version it was decided on
    assert all(r["body"]["metadata"]["resourceVersion"] for r in patches)
    assert kserve.ROLLOUT_ANNOTATION in patches[0]["body"]["metadata"]["annotations"]
    assert kserve.ROLLOUT_ANNOTATION not in live(cluster)["metadata"]["annotations"]
    view = live(cluster)
    assert full_traffic(view) != first_revision
    assert view["status"]["components"]["predictor"]["previousRolledoutRevision"] == first_revision
    assert metadata["url"] == cluster.servers[URI_B]
    assert "PASS | smoke-test" in report and "PASS | promote" in report


def test_canary_that_never_becomes_ready_is_rolled_back(cluster, models, eval_path, tmp_path):
    deploy(cluster, models, eval_path, tmp_path, "a", URI_A)
    first_revision = full_traffic(live(cluster))

    healthy, metadata, report = deploy(
        cluster, models, eval_path, tmp_path, "b", URI_BROKEN, ready_timeout_seconds=1
    )

    assert not healthy
    assert metadata["rolled_back"] and metadata["action"] == "rolled-back"
    view = live(cluster)
    assert full_traffic(view) == first_revision  # the previous revision kept 100%
    assert view["spec"]["predictor"]["model"]["storageUri"] == URI_A
    assert view["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert "was not Ready within 1 s" in report and "CrashLoopBackOff" in report
    assert "PASS | rollback" in report


def test_canary_serving_other_predictions_is_rolled_back(cluster, models, eval_path, tmp_path):
    deploy(cluster, models, eval_path, tmp_path, "a", URI_A)
    first_revision = full_traffic(live(cluster))

    # The candidate is model B, but its URI serves model A: the smoke test must notice.
    healthy, metadata, report = deploy(cluster, models, eval_path, tmp_path, "b", URI_WRONG)

    assert not healthy and metadata["rolled_back"]
    assert full_traffic(live(cluster)) == first_revision
    assert live(cluster)["spec"]["predictor"]["model"]["storageUri"] == URI_A
    assert "served predictions differ from offline ones" in report
    # the new model is found by the next deployment's rollout, from the restored spec
    healthy, _, report = deploy(cluster, models, eval_path, tmp_path, "b", URI_B)
    assert healthy, report


@pytest.mark.parametrize(
    ("verb", "code", "message"),
    [
        ("PATCH", 403, r"HTTP 403 Forbidden.*cannot patch.*manifests/rbac"),
        ("PATCH", 409, r"HTTP 409.*concurrently"),
    ],
)
def test_api_errors_are_clear_and_leave_the_service_alone(
    cluster, models, eval_path, tmp_path, verb, code, message
):
    deploy(cluster, models, eval_path, tmp_path, "a", URI_A)
    first_revision = full_traffic(live(cluster))
    cluster.failures[verb] = code

    with pytest.raises(kserve.KubernetesApiError, match=message) as raised:
        deploy(cluster, models, eval_path, tmp_path, "b", URI_B)

    assert raised.value.status == code
    assert full_traffic(live(cluster)) == first_revision
    assert live(cluster)["spec"]["predictor"]["model"]["storageUri"] == URI_A
    report = sorted(tmp_path.glob("out-*/report.md"))[-1].read_text()
    assert "FAIL | kubernetes-api" in report


def test_forbidden_create_is_a_clear_error(cluster, models, eval_path, tmp_path):
    cluster.failures["POST"] = 403
    with pytest.raises(kserve.KubernetesApiError, match="cannot create.*manifests/rbac"):
        deploy(cluster, models, eval_path, tmp_path, "a", URI_A)
    assert cluster.objects == {}


def standard_canary_service(view) -> str:
    return kserve.predictor_service(NAME, view["spec"]["predictor"])


def test_standard_mode_canary_is_smoke_tested_then_promoted(cluster, models, eval_path, tmp_path):
    deploy(cluster, models, eval_path, tmp_path, "a", URI_A, deployment_mode="Standard")
    assert live(cluster)["status"]["deploymentMode"] == "Standard"

    healthy, metadata, report = deploy(cluster, models, eval_path, tmp_path, "b", URI_B, model_version="7")

    assert healthy, report
    assert metadata["action"] == "canary-promoted" and metadata["mode"] == "Standard"
    start = next(r for r in cluster.requests if r["method"] == "PATCH")["body"]
    assert start["spec"]["canary"][0]["trafficPercent"] == 10
    assert start["spec"]["canary"][0]["predictor"]["name"] == "v7"
    assert "predictor" not in start["spec"]  # the stable predictor is untouched during the canary
    assert "maxReplicas" not in start["spec"]["canary"][0]["predictor"]  # the webhook refuses it
    view = live(cluster)
    # promoted: the canary's Deployment is the predictor now, the canary entry gone
    assert view["spec"]["predictor"]["name"] == "v7" and "canary" not in view["spec"]
    assert standard_canary_service(view) == f"{NAME}-v7-predictor"
    assert kserve.storage_uri_of(view) == URI_B and metadata["url"] == cluster.servers[URI_B]
    assert view["metadata"]["labels"]["app.kubernetes.io/version"] == "7"
    assert view["spec"]["predictor"]["maxReplicas"] == 3  # the template's, back on the predictor
    # the smoke requests reached the canary's own Service, through the cluster's DNS
    assert f"http://{NAME}-v7-predictor.{NS}.svc.cluster.local" in report


def test_standard_mode_canary_that_fails_is_removed(cluster, models, eval_path, tmp_path):
    deploy(cluster, models, eval_path, tmp_path, "a", URI_A, deployment_mode="Standard", model_version="1")
    before = live(cluster)

    healthy, metadata, report = deploy(
        cluster, models, eval_path, tmp_path, "b", URI_WRONG, model_version="2"
    )
    assert not healthy and metadata["rolled_back"], report
    view = live(cluster)
    assert "canary" not in view["spec"] and not view["status"].get("canaryStatuses")
    assert view["spec"]["predictor"] == before["spec"]["predictor"]
    assert view["metadata"]["labels"] == before["metadata"]["labels"]
    assert kserve.ROLLOUT_ANNOTATION not in view["metadata"]["annotations"]

    healthy, metadata, report = deploy(
        cluster, models, eval_path, tmp_path, "b", URI_BROKEN, model_version="3"
    )
    assert not healthy and "FAIL | ready" in report
    assert kserve.storage_uri_of(live(cluster)) == URI_A and not live(cluster)["spec"].get("canary")


def test_the_mode_comes_from_the_live_service_and_the_cluster(servers, models, eval_path, tmp_path):
    """A service created without the annotation runs in the cluster's default mode: read from
    status.deploymentMode, or (older KServe) from the inferenceservice-config map."""
    for report_mode in (True, False):
        with FakeKube(servers, ready_after=1, default_mode="Knative", report_mode=report_mode) as fake:
            fake.kubeconfig_path = fake.kubeconfig(tmp_path / f"kubeconfig-{report_mode}")
            deploy(fake, models, eval_path, tmp_path, "a", URI_A)
            # someone removes the annotation by hand: the controller's mode still applies
            with fake.lock:
                fake.write(NS, NAME, {"metadata": {"annotations": {kserve.MODE_ANNOTATION: None}}})
            healthy, metadata, report = deploy(fake, models, eval_path, tmp_path, "b", URI_B)
            assert healthy and metadata["mode"] == "Knative", report
            start = next(r for r in fake.requests if r["method"] == "PATCH" and r["body"].get("spec"))
            assert start["body"]["spec"]["predictor"]["canaryTrafficPercent"] == 10
            assert ("cluster's default" in report) is not report_mode


def test_a_status_write_during_the_rollout_is_re_read_not_fatal(cluster, models, eval_path, tmp_path):
    deploy(cluster, models, eval_path, tmp_path, "a", URI_A)
    patches_before = cluster.patches
    # the controller writes status just before the promote patch: a 409, the spec unchanged
    cluster.before_patch[patches_before + 2] = lambda fake: fake.status_update(NS, NAME)

    healthy, metadata, report = deploy(cluster, models, eval_path, tmp_path, "b", URI_B)

    assert healthy and metadata["action"] == "canary-promoted", report
    promotes = [r["body"]["metadata"]["resourceVersion"] for r in cluster.requests if r["method"] == "PATCH"][
        1:
    ]
    assert len(promotes) == 2 and promotes[0] != promotes[1]  # 409, then again from a fresh read
    assert kserve.storage_uri_of(live(cluster)) == URI_B


def test_a_canary_another_writer_changes_is_not_promoted(cluster, models, eval_path, tmp_path):
    deploy(cluster, models, eval_path, tmp_path, "a", URI_A)
    theirs = {"spec": {"predictor": {"model": {"storageUri": URI_WRONG}}}}
    cluster.before_patch[cluster.patches + 2] = lambda fake: fake.write(NS, NAME, theirs)

    healthy, metadata, report = deploy(cluster, models, eval_path, tmp_path, "b", URI_B)

    assert not healthy and metadata["action"] == "superseded", report
    assert "FAIL | promote" in report and "changed after the smoke test" in report
    # their change stands: neither promoted over nor rolled back
    assert kserve.storage_uri_of(live(cluster)) == URI_WRONG
    assert not metadata["rolled_back"]


def test_transient_api_errors_while_waiting_are_retried(cluster, models, eval_path, tmp_path):
    deploy(cluster, models, eval_path, tmp_path, "a", URI_A)
    # two 503s on the reads right after the canary starts
    cluster.before_patch[cluster.patches + 1] = lambda fake: fake.flaky.update(GET=2)

    healthy, metadata, report = deploy(cluster, models, eval_path, tmp_path, "b", URI_B)

    assert healthy and metadata["action"] == "canary-promoted", report
    assert cluster.flaky["GET"] == 0


def test_a_rollback_is_retried_and_restores_labels_and_annotations(cluster, models, eval_path, tmp_path):
    deploy(cluster, models, eval_path, tmp_path, "a", URI_A, model_version="1")
    before = live(cluster)
    # the rollback patch (the second PATCH) meets two 503s
    cluster.before_patch[cluster.patches + 2] = lambda fake: fake.flaky.update(PATCH=2)

    healthy, metadata, report = deploy(
        cluster, models, eval_path, tmp_path, "b", URI_WRONG, model_version="2"
    )

    assert not healthy and metadata["rolled_back"], report
    assert cluster.flaky["PATCH"] == 0 and "PASS | rollback" in report
    view = live(cluster)
    assert view["spec"]["predictor"]["model"] == before["spec"]["predictor"]["model"]
    assert view["metadata"]["labels"] == before["metadata"]["labels"]
    assert view["metadata"]["annotations"] == before["metadata"]["annotations"]
    assert full_traffic(view) == full_traffic(before)


class KilledPod(BaseException):
    """What a SIGKILL looks like from the rollout's point of view: nothing after it runs."""


def leave_a_canary(cluster, models, tmp_path, model, uri, mode="Knative"):
    """Starts a canary and dies in the smoke test, as a pod killed mid-rollout would."""
    from components.verdict import Verdict

    def killed(url):
        raise KilledPod

    desired = kserve.render(name=NAME, namespace=NS, storage_uri=uri, deployment_mode=mode)
    rollout = kserve.Rollout(
        kserve.connect(cluster.kubeconfig_path),
        desired,
        smoke=killed,
        verdict=Verdict(gate="x"),
        ready_timeout=5,
        poll_interval=0.05,
    )
    with pytest.raises(KilledPod):
        rollout.run()


@pytest.mark.parametrize("mode", ["Knative", "Standard"])
def test_a_canary_left_by_a_killed_pod_is_rolled_back_first(cluster, models, eval_path, tmp_path, mode):
    deploy(cluster, models, eval_path, tmp_path, "a", URI_A, deployment_mode=mode)
    stable = live(cluster)
    leave_a_canary(cluster, models, tmp_path, "b", URI_B, mode)
    left = live(cluster)
    assert kserve.rollout_marker(left) and any(0 < t["percent"] < 100 for t in kserve.traffic(left))

    # the retry (same model) finds it, restores the stable model first, then rolls out again
    healthy, metadata, report = deploy(cluster, models, eval_path, tmp_path, "b", URI_B, deployment_mode=mode)

    assert healthy and metadata["action"] == "canary-promoted", report
    assert "WARN | interrupted-rollout" in report and "this task's earlier attempt" in report
    patches = [r["body"] for r in cluster.requests if r["method"] == "PATCH"]
    restore = patches[-3]  # restore, canary, promote
    assert restore["metadata"]["annotations"][kserve.ROLLOUT_ANNOTATION] is None
    assert kserve.storage_uri_of(live(cluster)) == URI_B
    assert kserve.storage_uri_of(stable) == URI_A


def test_another_runs_fresh_canary_is_left_alone_and_a_stale_one_restored(
    cluster, models, eval_path, tmp_path
):
    deploy(cluster, models, eval_path, tmp_path, "a", URI_A)
    stable = live(cluster)
    leave_a_canary(cluster, models, tmp_path, "b", URI_B)

    healthy, metadata, report = deploy(cluster, models, eval_path, tmp_path, "b", URI_WRONG)
    assert not healthy and metadata["action"] == "refused", report
    assert "FAIL | rollout-in-progress" in report and URI_B in report
    assert kserve.rollout_marker(live(cluster))["model_uri"] == URI_B  # untouched

    # an hour later, the same leftover is stale: restored, then this run's rollout goes ahead
    with cluster.lock:
        key = (NS, NAME)
        marker = kserve.rollout_marker(cluster.objects[key])
        marker["started"] -= 3600
        cluster.write(
            NS, NAME, {"metadata": {"annotations": {kserve.ROLLOUT_ANNOTATION: json.dumps(marker)}}}
        )
    healthy, metadata, report = deploy(cluster, models, eval_path, tmp_path, "a", URI_A)
    assert "WARN | interrupted-rollout" in report and healthy, report
    view = live(cluster)
    assert kserve.storage_uri_of(view) == URI_A and kserve.rollout_marker(view) is None
    assert full_traffic(view) == full_traffic(stable)


def register_versions(models, tracking_uri: str, name: str, *keys: str, uris=None) -> list[str]:
    """Registers models[key] for each key (in order) as versions of ``name``; their numbers."""
    return [
        register.run(
            model_dir=models[key],
            model_metadata={},
            model_uri=(uris or {}).get(key, f"file://{models[key]}"),
            registered_model_name=name,
            mlflow_tracking_uri=tracking_uri,
        )["version"]
        for key in keys
    ]


def test_production_alias_moves_only_after_a_healthy_deployment(
    cluster, models, eval_path, tmp_path, mlflow_server
):
    uris = {"a": URI_A, "b": URI_B}
    versions = register_versions(models, mlflow_server, "churn-deploy", "a", "b", uris=uris)
    alias = {"mlflow_tracking_uri": mlflow_server, "registered_model_name": "churn-deploy"}

    healthy, _, _ = deploy(
        cluster, models, eval_path, tmp_path, "a", URI_A, model_version=versions[0], **alias
    )
    assert healthy
    assert registry.version_by_alias(mlflow_server, "churn-deploy", "production").version == versions[0]

    healthy, _, _ = deploy(
        cluster, models, eval_path, tmp_path, "b", URI_WRONG, model_version=versions[1], **alias
    )
    assert not healthy
    assert registry.version_by_alias(mlflow_server, "churn-deploy", "production").version == versions[0]

    healthy, _, report = deploy(
        cluster, models, eval_path, tmp_path, "b", URI_B, model_version=versions[1], **alias
    )
    assert healthy
    assert registry.version_by_alias(mlflow_server, "churn-deploy", "production").version == versions[1]
    assert f"moved to version {versions[1]} (was {versions[0]})" in report


class Switch(Relay):
    """A relay in front of the real MLflow server that can be cut (503), as a registry outage
    or a network partition between the pipeline and MLflow would."""

    def __init__(self, upstream: str):
        self.down = False
        super().__init__(
            lambda host, path: upstream,
            intercept=lambda method, path, body: (503, b"registry unavailable") if self.down else None,
        )


def test_serving_and_registry_disagreeing_is_said_and_reconciled(
    cluster, models, eval_path, tmp_path, mlflow_server, monkeypatch
):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail fast while MLflow is cut off
    with Switch(mlflow_server) as switch:
        name = "churn-disagree"
        versions = register_versions(models, mlflow_server, name, "a", "b", uris={"a": URI_A, "b": URI_B})
        alias = {"mlflow_tracking_uri": switch.url, "registered_model_name": name}
        assert deploy(cluster, models, eval_path, tmp_path, "a", URI_A, model_version=versions[0], **alias)[0]

        # MLflow goes away while version 2's canary is promoted: serving moves, the alias cannot
        cluster.before_patch[cluster.patches + 2] = lambda fake: setattr(switch, "down", True)
        healthy, _, report = deploy(
            cluster, models, eval_path, tmp_path, "b", URI_B, model_version=versions[1], **alias
        )
        assert not healthy and "FAIL | production-alias" in report, report
        assert "serving and the registry disagree" in report and "next deployment" in report
        assert kserve.storage_uri_of(live(cluster)) == URI_B
        assert registry.version_by_alias(mlflow_server, name, "production").version == versions[0]

        # MLflow is back: the next deployment first makes the alias follow what serves
        switch.down = False
        healthy, _, report = deploy(
            cluster, models, eval_path, tmp_path, "b", URI_B, model_version=versions[1], **alias
        )
        assert healthy, report
        assert "WARN | production-reconciled" in report
        assert registry.version_by_alias(mlflow_server, name, "production").version == versions[1]
        tags = registry.client(mlflow_server).get_model_version(name, versions[1]).tags
        assert tags["reconciled_from"] == versions[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"service_name": "Churn_Model"}, "DNS-1035"),
        ({"target": "cloud"}, "target"),
        ({"canary_traffic_percent": 100}, "canary_traffic_percent"),
        ({"registered_model_name": "churn"}, "needs model_version"),
        ({"target": "kserve", "storage_uri": "/local/path"}, "not one KServe can read"),
        ({"deployment_mode": "Serverful"}, "deployment_mode"),
    ],
)
def test_bad_arguments_are_named(models, eval_path, tmp_path, kwargs, message):
    args = {
        "model_dir": models["a"],
        "model_uri": models["a"],
        "eval_data_path": eval_path,
        "deployment_dir": str(tmp_path / "d"),
        "report_path": str(tmp_path / "r.md"),
        "service_name": "churn",
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        runtime.run(**args)


# --- target="local" -----------------------------------------------------------------------


def deploy_local(models, eval_path, tmp_path, model, **kwargs):
    out = tmp_path / f"local-{len(list(tmp_path.glob('local-*')))}"
    healthy, metadata = runtime.run(
        model_dir=models[model],
        model_uri=f"file://{models[model]}",
        eval_data_path=eval_path,
        deployment_dir=str(out / "deployment"),
        report_path=str(out / "report.md"),
        service_name=NAME,
        target="local",
        ready_timeout_seconds=120,
        **kwargs,
    )
    return healthy, metadata, out


def test_local_target_serves_smoke_tests_and_promotes(models, eval_path, tmp_path):
    serving = tmp_path / "serving"
    healthy, metadata, out = deploy_local(
        models, eval_path, tmp_path, "a", local_serving_dir=str(serving), model_version="1"
    )

    assert healthy
    pointer = json.loads((serving / "churn.json").read_text())
    assert (
        pointer["model_version"] == "1"
        and (serving / pointer["model_dir"] / "1" / "saved_model.pb").is_file()
    )
    assert metadata["action"] == "promoted"
    report = (out / "report.md").read_text()
    assert "PASS | smoke-test-v1" in report and "PASS | smoke-test-v2" in report
    manifest = (out / "deployment" / "inferenceservice.yaml").read_text()
    assert "kind: InferenceService" in manifest and f"storageUri: file://{models['a']}" in manifest
    assert json.loads((out / "deployment" / "deployment.json").read_text())["healthy"] is True


def model_servers_of(model_dir: str) -> list[str]:
    """Running ``components.model_server`` processes serving ``model_dir``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:  # the process ended meanwhile
            continue
        if b"components.model_server" in args and model_dir.encode() in args:
            found.append(cmdline.parent.name)
    return found


def test_the_local_server_starts_early_and_never_outlives_the_step(models, tmp_path):
    # The candidate's server starts before the step loads the model (its start-up overlaps the
    # step's own); a step that then fails on its inputs must not leave it running.
    empty = tmp_path / "empty.parquet"
    demo.write(demo.generate(50, seed=1).head(0), empty)
    with pytest.raises(ValueError, match="has no rows"):
        deploy_local(models, str(empty), tmp_path, "noisy")
    assert model_servers_of(models["noisy"]) == []

    server = _local.LocalServer(models["noisy"], NAME, 120).start()  # no log path: a temporary one
    log_dir = Path(server.log_path).parent
    with server as entered:
        assert entered is server and _local.endpoint_answers(server.url)
    server.stop()  # again: nothing to do
    assert model_servers_of(models["noisy"]) == [] and not log_dir.exists()


def test_local_mismatch_leaves_the_pointer_untouched(models, eval_path, tmp_path):
    serving = tmp_path / "serving"
    serving.mkdir()
    before = json.dumps({"model_dir": "churn/old", "model_version": "1", "deployed_at": "then"})
    (serving / "churn.json").write_text(before)

    healthy, metadata, out = deploy_local(
        models, eval_path, tmp_path, "noisy", local_serving_dir=str(serving)
    )

    assert not healthy and metadata["action"] == "not-promoted"
    assert (serving / "churn.json").read_text() == before
    assert not (serving / "churn.previous.json").exists()
    assert "served predictions differ" in (out / "report.md").read_text()


@pytest.fixture
def persistent_server(tmp_path):
    """The long-lived server: every pointer in a serving folder, by name."""
    serving = tmp_path / "persistent"
    serving.mkdir()
    port = _local.free_port()
    log = open(tmp_path / "persistent.log", "w")
    command = [sys.executable, "-m", "components.model_server", "--serving-dir", str(serving)]
    proc = subprocess.Popen([*command, "--http-port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(480):
            if _local.endpoint_answers(url):
                break
            assert proc.poll() is None, (tmp_path / "persistent.log").read_text()
            __import__("time").sleep(0.25)
        yield url, serving
    finally:
        stop(proc)
        log.close()


def test_local_deploy_reloads_the_persistent_server(models, eval_path, tmp_path, persistent_server):
    url, serving = persistent_server
    frame = demo.generate(15, seed=11)[list(saved_models.FEATURES)]

    for model, version in (("a", "1"), ("b", "2")):
        healthy, metadata, _ = deploy_local(
            models,
            eval_path,
            tmp_path,
            model,
            local_serving_dir=str(serving),
            local_endpoint=url,
            model_version=version,
        )
        assert healthy and metadata["url"] == url
        served = _smoke.predict_v1(url, NAME, frame)
        np.testing.assert_allclose(served, model_io.predict(models[model], frame), atol=1e-6)

    assert json.loads((serving / "churn.previous.json").read_text())["model_version"] == "1"
    assert json.loads((serving / "churn.json").read_text())["model_version"] == "2"


def test_failed_reload_restores_the_previous_pointer(models, eval_path, tmp_path, persistent_server):
    url, _ = persistent_server
    # The endpoint serves another folder, so it cannot load what this deploy promotes.
    serving = tmp_path / "elsewhere"
    serving.mkdir()
    before = {"model_dir": "churn/old", "model_version": "1", "deployed_at": "then"}
    (serving / "churn.json").write_text(json.dumps(before))

    healthy, metadata, out = deploy_local(
        models, eval_path, tmp_path, "a", local_serving_dir=str(serving), local_endpoint=url
    )

    assert not healthy and metadata["rolled_back"]
    assert json.loads((serving / "churn.json").read_text()) == before
    assert "FAIL | reload" in (out / "report.md").read_text()
    assert Path(serving / "churn").is_dir()  # the copied model stays for inspection


def test_redeploying_the_serving_model_only_smoke_tests_it(cluster, models, eval_path, tmp_path):
    deploy(cluster, models, eval_path, tmp_path, "a", URI_A)
    writes = len([r for r in cluster.requests if r["method"] != "GET"])

    healthy, metadata, report = deploy(cluster, models, eval_path, tmp_path, "a", URI_A)

    assert healthy and metadata["action"] == "unchanged"
    assert len([r for r in cluster.requests if r["method"] != "GET"]) == writes
    assert "PASS | smoke-test" in report


def test_no_name_or_version_leaves_the_serving_folder(models, tmp_path, persistent_server):
    from components import model_server

    url, serving = persistent_server
    (tmp_path / "secret.json").write_text(json.dumps({"model_dir": "/etc"}))
    # A request URL naming ../secret: refused, nothing outside the folder is read or loaded.
    for name in ("..%2Fsecret", "%2E%2E%2Fsecret", ".."):
        with pytest.raises(_smoke.SmokeTestError, match="answered HTTP [45]"):
            _smoke.post_json(f"{url}/v2/repository/models/{name}/load", None, timeout=30)
    with pytest.raises(model_server.UnsafePathError, match="leads out of the serving folder"):
        model_server.read_pointer(serving, "../secret")
    # A pointer whose folder points outside is refused too.
    (serving / "evil.json").write_text(json.dumps({"model_dir": "../../etc"}))
    with pytest.raises(model_server.UnsafePathError):
        model_server.read_pointer(serving, "evil")
    # A version string with ../ cannot place the copy outside.
    with pytest.raises(model_server.UnsafePathError):
        _local.promote(str(serving), NAME, models["a"], "../../escaped", "gs://b/m")
    assert not list(tmp_path.glob("escaped*")) and not (serving / "churn.json").exists()


@pytest.fixture
def s3_mlflow(s3_env, tmp_path, monkeypatch):
    """A real MLflow server whose artifact store is the S3-compatible server (a direct root, as
    production MLflow servers run, so KServe can read what it stores)."""
    import os
    import time
    import urllib.request

    from conftest import free_port

    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", os.environ["AWS_ENDPOINT_URL"])
    port = free_port()
    log = open(tmp_path / "mlflow.log", "w")
    # A direct (not proxied) artifact root on the object store, as production servers run.
    stores = ["--backend-store-uri", f"sqlite:///{tmp_path}/m.db"]
    stores += ["--default-artifact-root", f"s3://{s3_env}/mlflow"]
    address = ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", *stores, "--no-serve-artifacts", *address],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    uri = f"http://127.0.0.1:{port}"
    for _ in range(180):
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                break
        except OSError:
            assert proc.poll() is None, (tmp_path / "mlflow.log").read_text()
            time.sleep(0.5)
    yield uri
    stop(proc)
    log.close()


def test_the_served_storage_uri_is_the_registered_copy(models, eval_path, tmp_path, servers, s3_mlflow):
    version = register.run(
        model_dir=models["a"],
        model_metadata={"framework": "tensorflow"},
        model_uri="minio://mlpipeline/run/model",
        registered_model_name="churn-home",
        mlflow_tracking_uri=s3_mlflow,
    )["version"]
    source = registry.version_source(s3_mlflow, "churn-home", version)
    assert source.startswith("s3://") and "/mlflow/" in source, source
    with FakeKube({source: servers[URI_A]}, ready_after=1) as fake:
        healthy, metadata = runtime.run(
            model_dir=models["a"],
            model_uri="minio://mlpipeline/run/model",
            eval_data_path=eval_path,
            deployment_dir=str(tmp_path / "deployment"),
            report_path=str(tmp_path / "report.md"),
            service_name=NAME,
            target="kserve",
            namespace=NS,
            ready_timeout_seconds=5,
            poll_interval_seconds=0.05,
            kubeconfig=fake.kubeconfig(tmp_path / "kubeconfig"),
            mlflow_tracking_uri=s3_mlflow,
            registered_model_name="churn-home",
            model_version=version,
        )
        served = fake.serving(NS, NAME)["spec"]["predictor"]["model"]["storageUri"]
    assert healthy, (tmp_path / "report.md").read_text()
    assert served == source  # MLflow's artifact store, not the run's pipeline root
    assert registry.version_by_alias(s3_mlflow, "churn-home", "production").version == version


def blessing_against(tmp_path, version: str) -> str:
    """A model-is-blessed verdict that compared the candidate with production ``version``."""
    path = tmp_path / f"blessing-{len(list(tmp_path.glob('blessing-*')))}.json"
    path.write_text(
        json.dumps(
            {
                "gate": "model-is-blessed",
                "passed": True,
                "checks": [],
                "details": {"baseline": {"source": "mlflow", "version": version}},
            }
        )
    )
    return str(path)


@pytest.mark.parametrize("order", ["newer first", "older first"])
def test_interleaved_deployments_newer_wins(models, eval_path, tmp_path, mlflow_server, order):
    """Two runs blessed their candidates against the same production version, then deploy in
    either order: the newer registered version ends in production and serving; an older one
    arriving second is refused with the reason and touches nothing."""
    name = f"churn-race-{order.split()[0]}"
    serving = tmp_path / "serving"
    production, older, newer = register_versions(models, mlflow_server, name, "a", "b", "b")
    common = dict(
        local_serving_dir=str(serving), mlflow_tracking_uri=mlflow_server, registered_model_name=name
    )
    assert deploy_local(models, eval_path, tmp_path, "a", model_version=production, **common)[0]

    def deploy_candidate(version):
        blessing = blessing_against(tmp_path, production)
        healthy, _, out = deploy_local(
            models, eval_path, tmp_path, "b", model_version=version, blessing_path=blessing, **common
        )
        return healthy, (out / "report.md").read_text()

    if order == "newer first":
        assert deploy_candidate(newer)[0]
        healthy, report = deploy_candidate(older)
        assert not healthy
        assert f"production is version {newer}, newer than this candidate (version {older}" in report
        assert "not deployed and traffic is untouched" in report
    else:
        assert deploy_candidate(older)[0]
        healthy, report = deploy_candidate(newer)
        assert healthy, report
        assert f"version {newer} is newer, so it goes ahead" in report
    assert registry.version_by_alias(mlflow_server, name, "production").version == newer
    assert json.loads((serving / "churn.json").read_text())["model_version"] == newer


def test_a_candidate_blessed_against_production_deploys(models, eval_path, tmp_path, mlflow_server):
    name = "churn-cas"
    serving = tmp_path / "serving"
    first, second = register_versions(models, mlflow_server, name, "a", "b")
    common = dict(
        local_serving_dir=str(serving), mlflow_tracking_uri=mlflow_server, registered_model_name=name
    )
    healthy, _, out = deploy_local(
        models,
        eval_path,
        tmp_path,
        "a",
        model_version=first,
        blessing_path=blessing_against(tmp_path, ""),
        **common,
    )
    assert (
        healthy
        and "production is not set yet, as when this candidate was evaluated"
        in (out / "report.md").read_text()
    )
    healthy, _, out = deploy_local(
        models,
        eval_path,
        tmp_path,
        "b",
        model_version=second,
        blessing_path=blessing_against(tmp_path, first),
        **common,
    )
    assert healthy
    report = (out / "report.md").read_text()
    assert f"production is version {first}, as when this candidate was evaluated" in report


def test_the_local_server_listens_on_loopback_only(servers):
    import socket

    port = int(servers[URI_A].rsplit(":", 1)[1])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outbound interface
        address = probe.getsockname()[0]
    assert not address.startswith("127."), f"no non-loopback address to test with ({address})"
    assert _local.endpoint_answers(servers[URI_A])
    with pytest.raises(OSError):
        socket.create_connection((address, port), timeout=5).close()


def test_smoke_requests_go_to_the_in_cluster_address():
    isvc = {
        "status": {"url": "http://churn.models.example.com", "address": {"url": "http://churn.models.svc"}}
    }
    assert kserve.service_url(isvc) == "http://churn.models.svc"
    assert kserve.service_url({"status": {"url": "http://only-external"}}) == "http://only-external"
