import pytest

from components import registry


def test_unreachable_server_is_retried_then_named(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)
    with pytest.raises(registry.RegistryUnavailable, match=r"http://127.0.0.1:9 did not answer after 2"):
        registry.client("http://127.0.0.1:9", attempts=2)


def test_missing_alias_is_none(mlflow_server):
    assert registry.version_by_alias(mlflow_server, "no-such-model", "production") is None


def test_tracking_uri_from_environment(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.mlops:5000")
    assert registry.resolve_tracking_uri("") == "http://mlflow.mlops:5000"
    assert registry.resolve_tracking_uri("http://x:1") == "http://x:1"
