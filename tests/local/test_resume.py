"""Training resumes after the pod dies: checkpoints on an S3-compatible server (moto's, the S3
API MinIO speaks), a training container SIGKILLed after epoch 2, then a *fresh* container (empty
filesystem) with the same checkpoint URI. It resumes at epoch 3 and ends with the weights of an
uninterrupted run.

Tolerance: 1e-5 absolute on every weight. Same seed, same per-epoch shuffle order (seeded by
the epoch index), restored optimizer state; only floating-point reduction order may differ.
Dropout is off so that no random state outside the checkpoint enters the comparison.
"""

import json
import socket
import time
from pathlib import Path

import docker
import pytest

from components import images

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "checkpoints"


@pytest.fixture(scope="module")
def s3():
    """An S3-compatible server in the runtime image on the host network, with a bucket."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = docker.from_env()
    server = client.containers.run(
        images.RUNTIME, ["python", "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        network_mode="host", detach=True, remove=True, name="kfp-ct-s3-resume-test",
    )
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "minio", "AWS_SECRET_ACCESS_KEY": "minio123",
        "AWS_REGION": "us-east-1", "PYTHONPATH": "/src",
    }
    create = "import boto3; boto3.client('s3').create_bucket(Bucket='checkpoints')"
    for _ in range(60):
        try:
            client.containers.run(images.RUNTIME, ["python", "-c", create], network_mode="host",
                                  environment=env, remove=True)
            break
        except docker.errors.ContainerError:  # the server is still starting
            time.sleep(0.5)
    yield client, env
    server.stop()


def flatten(value) -> list[float]:
    return [x for item in value for x in flatten(item)] if isinstance(value, list) else [value]


def train(s3, checkpoint_uri: str, kill_after_epoch: int = 0) -> tuple[int, dict]:
    """Runs resume_training.py in a new container; returns (exit status, last JSON line)."""
    client, env = s3
    command = ["python", "/src/tests/local/resume_training.py", checkpoint_uri]
    if kill_after_epoch:
        command += ["--kill-after-epoch", str(kill_after_epoch)]
    container = client.containers.run(
        images.RUNTIME, command, network_mode="host", environment=env, detach=True,
        volumes={str(ROOT): {"bind": "/src", "mode": "ro"}}, working_dir="/tmp",
        init=True,  # python is not PID 1, so its own SIGKILL kills it as on a preempted pod
    )
    try:
        status = container.wait(timeout=600)["StatusCode"]
        lines = [line for line in container.logs(stderr=False).decode().splitlines() if line.startswith("{")]
    finally:
        container.remove(force=True)
    return status, json.loads(lines[-1]) if lines else {}


def test_a_killed_training_resumes_in_a_fresh_container_from_the_object_store(s3):
    status, uninterrupted = train(s3, f"s3://{BUCKET}/uninterrupted")
    assert status == 0

    status, killed = train(s3, f"minio://{BUCKET}/preempted", kill_after_epoch=2)
    assert status == 137 and killed == {"killed_after_epoch": 2}  # SIGKILL: nothing cleaned up
    status, resumed = train(s3, f"minio://{BUCKET}/preempted")
    assert status == 0
    assert resumed["epochs_this_attempt"] == 2  # epochs 3 and 4 only
    assert uninterrupted["epochs_this_attempt"] == 4
    got, want = flatten(resumed["weights"]), flatten(uninterrupted["weights"])
    assert len(got) == len(want) > 100
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) <= 1e-5
