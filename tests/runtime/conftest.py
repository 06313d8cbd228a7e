"""Fixtures for the runtime tests (run inside the runtime image, see scripts/in-runtime.sh)."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _no_mlflow_uri_leaks():
    """mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI to the process environment; a
    test that talked to a server must not make later tests see one configured."""
    before = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
    yield
    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        del os.environ[key]
    os.environ.update(before)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server (sqlite backend, proxied local artifact store) on localhost.

    Yields its URI; the server is stopped after the session.
    """
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{root}/mlflow.db",
            "--artifacts-destination", str(root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        stdout=log, stderr=subprocess.STDOUT,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"mlflow server did not start:\n{(root / 'server.log').read_text()}")
        time.sleep(0.5)
    yield uri
    stop(proc)
    log.close()


def stop(process: subprocess.Popen, timeout: float = 60) -> None:
    """Stops a server the tests started: SIGTERM, then SIGKILL when it is slow to go (a
    loaded machine; not what a test judges)."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """../shared/datasets mounted by scripts/in-runtime.sh; tests using it skip when absent."""
    path = Path(os.environ.get("CT_DATASETS", "/datasets"))
    if not path.is_dir():
        pytest.skip("reference datasets (../shared/datasets) are not available")
    return path


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (moto's, speaking the S3 API MinIO speaks) on localhost.

    Yields its endpoint URL; each test that uses ``s3_env`` gets its own bucket.
    """
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch, request):
    """The environment a Kubeflow task gets for MinIO (endpoint and the mlpipeline-minio-artifact
    secret's keys), pointed at ``s3_server``, and a fresh bucket. Yields the bucket name."""
    import re

    import boto3

    for key, value in {
        "AWS_ENDPOINT_URL": s3_server,
        "AWS_ACCESS_KEY_ID": "minio",
        "AWS_SECRET_ACCESS_KEY": "minio123",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    bucket = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-")
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=bucket)
    yield bucket


@pytest.fixture(scope="module")
def scorer_dir(tmp_path_factory):
    """A small SavedModel that follows the train_model contract (saved_models.build)."""
    import saved_models

    root = tmp_path_factory.mktemp("scorer")
    saved_models.build(root, weight=1.0)
    return str(root)


@pytest.fixture(scope="module")
def scorer_dtypes(scorer_dir):
    from components import model_io

    return {name: dtype.name for name, dtype in model_io.serving_inputs(model_io.load(scorer_dir)).items()}


@pytest.fixture(scope="module")
def scorer_server(scorer_dir, tmp_path_factory):
    """The real local model server on scorer_dir, named "churn"."""
    from components.deploy_model import _local

    log = tmp_path_factory.mktemp("logs") / "server.log"
    with _local.LocalServer(scorer_dir, "churn", 120, str(log)) as local:
        yield local
