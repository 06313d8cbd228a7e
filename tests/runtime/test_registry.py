import threading

import pytest
from relay import Relay

from components import registry


@pytest.fixture
def quick_retries(monkeypatch):
    """MLflow's own retry settings, as a task's environment would set them: 2 retries, no backoff."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0")


def test_unreachable_server_is_retried_then_named(quick_retries):
    with pytest.raises(registry.RegistryUnavailable, match=r"127.0.0.1:9 did not answer after 3 attempts"):
        registry.client("http://127.0.0.1:9")


def test_every_request_is_retried_by_mlflow_not_only_the_first(quick_retries, mlflow_server):
    """A server that answers 503 twice to each kind of request (a restarting pod behind its
    Service): the probe and a later registry call both succeed, each after two retries."""
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def flaky(method, path, body):
        with lock:
            endpoint = path.split("?")[0]
            seen[endpoint] = seen.get(endpoint, 0) + 1
            if seen[endpoint] <= 2:
                return 503, b'{"error_code": "TEMPORARILY_UNAVAILABLE"}'
        return None

    with Relay(lambda host, path: mlflow_server, flaky) as relay:
        client = registry.client(relay.url)
        client.create_registered_model("flaky-registry")
    assert seen["/api/2.0/mlflow/registered-models/search"] == 3
    assert seen["/api/2.0/mlflow/registered-models/create"] == 3
    assert registry.client(mlflow_server).get_registered_model("flaky-registry").name == "flaky-registry"


def test_missing_alias_is_none(mlflow_server):
    assert registry.version_by_alias(mlflow_server, "no-such-model", "production") is None


def test_tracking_uri_from_environment(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.mlops:5000")
    assert registry.resolve_tracking_uri("") == "http://mlflow.mlops:5000"
    assert registry.resolve_tracking_uri("http://x:1") == "http://x:1"
