"""Run components and compiled pipelines on this machine with kfp.local's DockerRunner, in the
same images the cluster uses, next to a real MLflow server and a real KServe model server, each
in the runtime image on the host network."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import docker
import yaml
from kfp import components as kfp_components
from kfp import local

from components import images

logger = logging.getLogger(__name__)

PIPELINES_DIR = Path(__file__).resolve().parent.parent / "pipelines"


def gpu_available() -> bool:
    """True when the GPU trainer image is built and an NVIDIA GPU answers."""
    if shutil.which("nvidia-smi") is None:
        return False
    if subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode != 0:
        return False
    try:
        docker.from_env().images.get(images.TRAINER_GPU)
    except docker.errors.ImageNotFound:
        return False
    return True


def init(pipeline_root: str | Path, *, enable_caching: bool = False) -> Path:
    """Points kfp.local at Docker and ``pipeline_root`` (created, made absolute).

    Containers run as the calling user, so every output under ``pipeline_root`` is owned by
    whoever started the run, and on the host network, so they reach the local MLflow and model
    servers on localhost. With a GPU (and the GPU trainer image) tasks see the GPUs.
    """
    root = Path(pipeline_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    run_args = dict(user=f"{os.getuid()}:{os.getgid()}", network_mode="host")
    if gpu_available():
        run_args["device_requests"] = [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
    local.init(runner=local.DockerRunner(**run_args), pipeline_root=str(root), enable_caching=enable_caching)
    return root


def load_pipeline(name: str, *, retries: bool = True):
    """Loads the committed golden ``pipelines/<name>.yaml`` for a local run.

    Without a GPU the training step runs in the CPU runtime image instead of the GPU trainer
    image (same code; TensorFlow trains on the CPU). With ``retries=False`` the tasks' retry
    policies are left out, so a broken input fails at once instead of after the backoff meant
    for a lost pod. Training is the one-worker branch (see ``_first_branch_artifacts``).
    Nothing else in the spec changes.
    """
    spec = (PIPELINES_DIR / f"{name}.yaml").read_text()
    if images.TRAINER_GPU in spec and not gpu_available():
        logger.info("no GPU here: training runs in %s instead of %s", images.RUNTIME, images.TRAINER_GPU)
        spec = spec.replace(images.TRAINER_GPU, images.RUNTIME)
    spec = _edit_documents(spec, _first_branch_artifacts)
    if not retries:
        spec = _edit_documents(spec, _without_retries)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(spec)
    try:
        return kfp_components.load_component_from_file(f.name)
    finally:
        os.unlink(f.name)


def _edit_documents(spec: str, edit) -> str:
    """The spec with ``edit`` applied to each of its YAML documents (all kept, in order)."""
    return yaml.safe_dump_all([edit(doc) for doc in yaml.safe_load_all(spec)], sort_keys=False)


def _without_retries(node):
    """``node`` with every task's ``retryPolicy`` removed."""
    if isinstance(node, dict):
        return {key: _without_retries(value) for key, value in node.items() if key != "retryPolicy"}
    return [_without_retries(item) for item in node] if isinstance(node, list) else node


def _first_branch_artifacts(document):
    """A spec document whose ``dsl.OneOf`` artifacts come from their first branch alone.

    kfp.local 2.17 resolves ``dsl.OneOf`` for parameters only: a DAG output artifact with more
    than one selector fails the run ("Expected 1 artifact in ArtifactSelectorSpec"). The
    training pipelines choose their training step so (``train_workers``): the first branch
    trains in the pipeline's own task, the others hand it to a cluster's job, which a local
    run has no cluster for. So locally the model comes from the first branch, as it does on a
    cluster with the default ``train_workers=1``.
    """
    for component in (document or {}).get("components", {}).values():
        for selector in component.get("dag", {}).get("outputs", {}).get("artifacts", {}).values():
            selector["artifactSelectors"] = selector["artifactSelectors"][:1]
    return document


@dataclass
class RunResult:
    """What a local pipeline run left behind: its run record (the gates' verdicts and summary)."""

    job_id: str
    records: dict = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0
    steps: dict = field(default_factory=dict)  # task name -> wall seconds

    def gate(self, name: str) -> dict | None:
        return self.records.get(name)

    @property
    def summary(self) -> dict:
        return self.records.get("summary", {})


class _RunLog(logging.Filter, io.TextIOBase):
    """What a local run said, task by task: a filter on the root logger for kfp.local's own
    lines ("Executing task 'x'" ... "Task 'x' finished with status ...", which time the steps;
    kfp.local swaps the root logger's handlers while it runs) and a pass-through for the task
    containers' output (kfp.local prints it), keeping each task's last exception line
    (``SomeError: what went wrong``). kfp.local can report a task whose container raised as
    SUCCESS and then fail on its missing outputs; this keeps the task's own error."""

    _line = re.compile(
        r"^(?:Executing task '(?P<start>[^']+)'|Task '(?P<end>[^']+)' finished with status (?P<status>\w+))"
    )
    _ansi = re.compile(r"\x1b\[[0-9;]*m")
    _error = re.compile(r"^(?:[\w.]+\.)?\w*(?:Error|Exception|Missing|Unavailable)\w*: .+")

    def __init__(self, out):
        super().__init__()
        self.out, self._partial = out, ""
        self.started: dict[str, float] = {}
        self.steps: dict[str, float] = {}
        self.task_errors: dict[str, str] = {}  # task -> its last exception line
        self.failed: list[str] = []
        self.current = ""

    def filter(self, record: logging.LogRecord) -> bool:
        match = self._line.match(self._ansi.sub("", record.getMessage()))
        if match and match["start"]:
            self.started[match["start"]] = record.created
            self.current = match["start"]
        elif match and match["end"] in self.started:
            self.steps[match["end"]] = round(record.created - self.started[match["end"]], 1)
            if match["status"] != "SUCCESS":
                self.failed.append(match["end"])
        return True

    def write(self, text: str) -> int:
        self.out.write(text)
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            if self.current and self._error.match(line.strip()):
                self.task_errors[self.current] = line.strip()
        return len(text)

    def flush(self) -> None:
        self.out.flush()

    def failure(self, error: str) -> str:
        """The failing step and its own error, or ``error`` when no step can be named."""
        step = next((s for s in self.failed if s != "summarize-run"), "")
        step = step or (self.current if self.current in self.task_errors else "")
        return f"step {step} failed: {self.task_errors.get(step, error)}" if step else error


def run_pipeline(name: str, pipeline_root: Path, *, retries: bool = True, **arguments) -> RunResult:
    """Runs the golden pipeline ``name`` under kfp.local (after ``init``) and returns its record.

    ``arguments`` are the pipeline's parameters; ``retries`` as in ``load_pipeline``. A failing
    task does not raise here: the run's error (the failing step and its own error, not
    kfp.local's follow-on message) and whatever its gates recorded are returned.
    """
    records_root = Path(pipeline_root) / "run-records"
    before = set(os.listdir(records_root)) if records_root.is_dir() else set()
    pipeline = load_pipeline(name, retries=retries)
    start = time.monotonic()
    error = ""
    log = _RunLog(sys.stdout)
    logging.getLogger().addFilter(log)
    try:
        with contextlib.redirect_stdout(log):
            pipeline(**arguments)
    except Exception as exc:  # noqa: BLE001 - reported with the run's record
        error = log.failure(f"{type(exc).__name__}: {exc}")
        logger.error("pipeline %s failed: %s", name, error)
    finally:
        logging.getLogger().removeFilter(log)
    seconds = time.monotonic() - start
    new = sorted(set(os.listdir(records_root)) - before) if records_root.is_dir() else []
    job_id = new[-1] if new else ""
    records = {}
    if job_id:
        for path in sorted((records_root / job_id).glob("*.json")):
            records[path.stem] = json.loads(path.read_text())
    return RunResult(job_id=job_id, records=records, error=error, seconds=seconds, steps=log.steps)


# ---------------------------------------------------------------------------- local services


def answers(url: str) -> bool:
    """True when ``url`` answers HTTP 200 within two seconds."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _start_container(name: str, command: list[str], mounts: list[Path], health_url: str, timeout=180.0):
    """(Re)starts a long-lived container of the runtime image on the host network, with each of
    ``mounts`` at its own path."""
    client = docker.from_env()
    try:
        client.containers.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass
    container = client.containers.run(
        images.RUNTIME,
        command,
        name=name,
        detach=True,
        network_mode="host",
        user=f"{os.getuid()}:{os.getgid()}",
        volumes={str(m): {"bind": str(m), "mode": "rw"} for m in mounts} or None,
        restart_policy={"Name": "unless-stopped"},
    )
    deadline = time.monotonic() + timeout
    while not answers(health_url):
        container.reload()
        if container.status == "exited" or time.monotonic() > deadline:
            logs = container.logs(tail=30).decode(errors="replace")
            raise RuntimeError(f"container {name} did not become healthy at {health_url}:\n{logs}")
        time.sleep(1)
    return container


def run_once(command: list[str], mounts: list[Path]) -> str:
    """Runs ``command`` to its end in the runtime image (as the calling user, on the host
    network, each of ``mounts`` at its own path) and returns its standard output.

    Raises:
        docker.errors.ContainerError: the command failed (the error carries its stderr).
    """
    output = docker.from_env().containers.run(
        images.RUNTIME,
        command,
        remove=True,
        network_mode="host",
        user=f"{os.getuid()}:{os.getgid()}",
        volumes={str(m): {"bind": str(m), "mode": "rw"} for m in mounts} or None,
        stdout=True,
        stderr=False,
    )
    return output.decode()


def runs_an_older_image(name: str) -> bool:
    """True when the container ``name`` exists but runs another build than ``images.RUNTIME``
    now names (e.g. a server left by an earlier checkout: Docker restarts it with the daemon)."""
    client = docker.from_env()
    try:
        container = client.containers.get(name)
    except docker.errors.NotFound:
        return False
    return container.image.id != client.images.get(images.RUNTIME).id


def stop_container(name: str) -> None:
    try:
        docker.from_env().containers.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass


def ensure_mlflow(root: Path, port: int = 5000, name: str = "kfp-ct-mlflow") -> str:
    """A real MLflow tracking server (sqlite backend, local artifact store under ``root``) on
    ``port``; reused when one already answers there. Returns its URI."""
    uri = f"http://127.0.0.1:{port}"
    if answers(f"{uri}/health"):
        return uri
    root = Path(root).resolve()
    (root / "artifacts").mkdir(parents=True, exist_ok=True)
    logger.info("starting MLflow at %s (data in %s)", uri, root)
    command = [
        "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{root}/mlflow.db",
        "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]
    _start_container(name, command, [root], f"{uri}/health")
    return uri


SERVING_CONTAINER = "kfp-ct-serving"  # the demo's long-lived local model server


def ensure_model_server(
    serving_dir: Path, port: int = 8080, name: str = SERVING_CONTAINER, log_dir: Path | None = None,
    feature_repo: Path | None = None,
) -> str:
    """A KServe model server serving every model deployed to ``serving_dir`` (deploy_model with
    target=local) on ``port``, logging every request to ``log_dir`` when given; models trained
    from a feature store read their online features from ``feature_repo`` (mounted) when given.
    Restarted so it serves what is deployed now. Returns its URL."""
    url = f"http://127.0.0.1:{port}"
    serving_dir = Path(serving_dir).resolve()
    command = [
        "python", "-m", "components.model_server",
        "--serving-dir", str(serving_dir), "--http-port", str(port),
    ]
    mounts = [serving_dir, *_log_mount(log_dir)]
    if feature_repo is not None:
        command += ["--feature-repo", str(Path(feature_repo).resolve())]
        mounts.append(Path(feature_repo).resolve())
    _start_container(name, command + _log_args(log_dir), mounts, f"{url}/v2/health/ready")
    return url


def _log_args(log_dir: Path | None) -> list[str]:
    return ["--log-dir", str(Path(log_dir).resolve())] if log_dir else []


def _log_mount(log_dir: Path | None) -> list[Path]:
    if not log_dir:
        return []
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    return [Path(log_dir).resolve()]


def serve_model(
    *,
    name: str,
    model_dir: Path | None = None,
    registered_model: str = "",
    alias: str = "production",
    tracking_uri: str = "",
    port: int = 8080,
    log_dir: Path | None = None,
    feature_repo: Path | None = None,
) -> str:
    """Serves a model folder, or an MLflow registered version (alias or number), with the KServe
    model server in the runtime image on ``port`` (v1 and v2 protocols), logging every request
    to ``log_dir`` when given; a model trained from a feature store reads its online features
    from ``feature_repo`` when given (mounted), else from the repository its record names.
    Returns its URL."""
    if (model_dir is None) == (not registered_model):
        raise ValueError("give exactly one of a model folder or a registered model name")
    url = f"http://127.0.0.1:{port}"
    command = ["python", "-m", "components.model_server"]
    command += ["--model-name", name, "--http-port", str(port)]
    mounts = _log_mount(log_dir)
    command += _log_args(log_dir)
    if feature_repo is not None:
        feature_repo = Path(feature_repo).resolve()
        command += ["--feature-repo", str(feature_repo)]
        mounts.append(feature_repo)
    if model_dir is not None:
        model_dir = Path(model_dir).resolve()
        if not model_dir.is_dir():
            raise ValueError(f"{model_dir} is not a folder")
        command += ["--model-dir", str(model_dir)]
        mounts.append(model_dir)
    else:
        if not tracking_uri:
            raise ValueError("serving a registered model needs the MLflow tracking URI")
        command += ["--registered-model", registered_model, "--alias", alias, "--tracking-uri", tracking_uri]
    _start_container(f"kfp-ct-serve-{name}", command, mounts, f"{url}/v2/health/ready")
    return url


def mlflow_alias_version(tracking_uri: str, model: str, alias: str) -> str | None:
    """The version number an alias points at, through MLflow's REST API (no mlflow on the host)."""
    query = urllib.parse.urlencode({"name": model, "alias": alias})
    try:
        with urllib.request.urlopen(
            f"{tracking_uri}/api/2.0/mlflow/registered-models/alias?{query}", timeout=10
        ) as response:
            return json.load(response)["model_version"]["version"]
    except urllib.error.HTTPError as exc:
        if exc.code in (400, 404):
            return None
        raise
