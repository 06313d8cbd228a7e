"""train_model as a Kubeflow Trainer TrainJob: create it, watch it, show its log, collect.

The TrainJob (``trainer.kubeflow.org/v1alpha1``) references a runtime (manifests/trainer's
TrainingRuntime ``kfp-ct-tensorflow`` by default: one replicated job ``node``, which Trainer
turns into a JobSet with a headless service). Its ``spec.trainer`` sets the image, the
command (train_model's job entry point, ``components/train_model/job.py``), ``numNodes``,
``resourcesPerNode`` and the env: ``TF_CONFIG`` listing every node as
``<job>-node-0-<i>.<job>:2222`` (JobSet's pod host names) without a ``task``, since the pods
share one env; each pod is the worker of its ``JOB_COMPLETION_INDEX`` (``_hardware``).

The launcher and the nodes meet in a staging folder beside the model artifact
(``<model URI>_job``): the spec goes there before the job, the chief's outputs come back from
there after it (``job.write_spec`` / ``job.collect``). Everything goes through the real
``kubernetes`` client; the calls are exactly what manifests/rbac's ``kfp-ct-train-launcher``
Role allows (trainjobs: create, get, delete; pods: list; pods/log: get).

Plain Python: never imports kfp or TensorFlow.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import threading
import time

from components import images, interface, kserve, registry, uris
from components.kserve import KubernetesApiError
from components.train_model import job

logger = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "trainer.kubeflow.org", "v1alpha1", "trainjobs"
API_VERSION = f"{GROUP}/{VERSION}"
RUNTIME_KINDS = ("TrainingRuntime", "ClusterTrainingRuntime")
NODE = "node"
"""The replicated job and container of a runtime that Trainer's ``spec.trainer`` overrides."""
WORKER_PORT = 2222  # TensorFlow's customary gRPC port (TFJob's default too)
JOBSET_LABEL = "jobset.sigs.k8s.io/jobset-name"  # on every pod; the JobSet is named like the TrainJob
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
RUN_LABEL, TASK_LABEL = "pipeline/runid", "pipeline/task"  # KFP labels its own pods pipeline/runid
MODEL_URI_ANNOTATION = "kfp-continuous-training/model-uri"
"""Which task run a TrainJob belongs to: a retry adopts only a job made for its model URI."""
OWNER_LABELS = {
    "app.kubernetes.io/part-of": "kfp-continuous-training",
    "app.kubernetes.io/managed-by": "train-model-on-kubeflow",
}
FORWARDED_ENV = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION")
"""Where storage is, not credentials: copied from this task to the nodes as plain values.
Credentials reach the nodes as secret references (MLflow's secret, KFP's MinIO secret), never
as values in the TrainJob, which anyone who can read trainjobs could read."""
SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$")
_LABEL_VALUE_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_TRANSIENT = (429, 500, 502, 503, 504)
UNSTARTABLE = ("CreateContainerConfigError", "CreateContainerError", "InvalidImageName", "ErrImageNeverPull")
"""Waiting reasons no wait cures (a missing secret or key, a malformed image name): the step
fails at once instead of waiting for a job that cannot start. ImagePullBackOff is not one:
a registry can come back."""
_CONSECUTIVE_API_FAILURES = 10  # polls in a row the API may fail before the step gives up


class TrainJobFailed(RuntimeError):
    """The TrainJob failed: the message names its reason and each failed pod's."""


class TrainJobConflict(KubernetesApiError):
    """A TrainJob of this name exists but belongs to another task run: left alone."""


class Terminated(BaseException):
    """This task was asked to stop (SIGTERM): raised in the main thread so ``finally`` runs.
    A BaseException, like KeyboardInterrupt, so no ``except Exception`` swallows it."""


@interface.defaults_from(__file__)
def run(
    *,
    model_dir: str,
    eval_data_path: str,
    model_uri: str,
    schema_path: str = "",
    tensorboard_dir: str = "",
    kubeconfig: str = "",
    poll_seconds: float = 5.0,
    max_poll_seconds: float = 30.0,
    label, data_uri, data_fingerprint, features, exclude_features, categorical_columns, timestamp_column,
    eval_fraction, task, epochs, batch_size, learning_rate, hidden_units, dropout, model_fn,
    mixed_precision, checkpoint_uri, early_stopping_patience, seed, mlflow_tracking_uri, mlflow_experiment,
    num_nodes, cpu_per_node, memory_per_node, gpus_per_node, gpu_resource, training_runtime,
    training_runtime_kind, namespace, trainer_image, pipeline_run_id, pipeline_task_name,
) -> dict:
    """Runs the training as a TrainJob and collects its outputs into the local paths.

    Parameters are documented on the component (component.py). Extra for callers in Python:
    ``model_uri`` (the model artifact's URI: the TrainJob's name, the staging and checkpoint
    folders derive from it), ``kubeconfig`` (else ``$KUBECONFIG``, the in-cluster service
    account, ``~/.kube/config``), ``poll_seconds`` / ``max_poll_seconds`` (the status poll's
    first and longest interval: it backs off while nothing changes).

    Returns:
        ``result.json`` of the job's chief: ``model_metadata``, ``eval_data_metadata``, ``metrics``.

    Raises:
        ValueError: a bad argument, naming it.
        TrainJobFailed: the TrainJob failed (the message names the pods and their reasons).
        TrainJobConflict: a TrainJob of this name belongs to another task run.
        KubernetesApiError: the API refused a call (with what to grant, for a 403).
        job.JobOutputError: the job succeeded but left no outputs.
    """
    arguments = dict(locals())
    _validate(arguments)
    client = _Client(kubeconfig, namespace)
    name = trainjob_name(model_uri)
    output_uri = f"{model_uri.rstrip('/')}_job"
    spec_args = job.training_args(arguments)
    spec_args["checkpoint_uri"] = job.checkpoint_folder(checkpoint_uri, model_uri)
    body = trainjob(
        name, client.namespace, spec_uri=uris.join(output_uri, job.SPEC),
        image=trainer_image or images.TRAINER_GPU, num_nodes=num_nodes, cpu_per_node=cpu_per_node,
        memory_per_node=memory_per_node,
        gpus_per_node=gpus_per_node, gpu_resource=gpu_resource, training_runtime=training_runtime,
        training_runtime_kind=training_runtime_kind, pipeline_run_id=pipeline_run_id,
        pipeline_task_name=pipeline_task_name, model_uri=model_uri, environ=os.environ,
    )
    with _terminated_on_sigterm():
        try:
            _start(client, body, lambda: job.write_spec(output_uri, spec_args, schema_path=schema_path))
        except TrainJobConflict:
            raise  # not this task's job: never deleted from here
        except BaseException:
            client.delete(name)  # created, or being created, when this attempt stopped
            raise
        try:
            _watch(client, name, poll_seconds, max_poll_seconds)
        finally:
            client.delete(name)
    return job.collect(
        output_uri, model_dir=model_dir, eval_data_path=eval_data_path, tensorboard_dir=tensorboard_dir
    )


def _validate(a: dict) -> None:
    if a["num_nodes"] < 1:
        raise ValueError(f"num_nodes must be at least 1, got {a['num_nodes']}")
    if a["gpus_per_node"] < 0:
        raise ValueError(f"gpus_per_node must be >= 0, got {a['gpus_per_node']}")
    for key in ("cpu_per_node", "memory_per_node"):
        if not _QUANTITY.match(str(a[key])):
            raise ValueError(
                f"{key} must be a Kubernetes quantity such as '4', '500m' or '16Gi', got {a[key]!r}"
            )
    if a["training_runtime_kind"] not in RUNTIME_KINDS:
        raise ValueError(
            f"training_runtime_kind must be one of {RUNTIME_KINDS}, got {a['training_runtime_kind']!r}"
        )
    if not a["training_runtime"]:
        raise ValueError("training_runtime must name the TrainingRuntime the TrainJob runs on, got ''")
    if not a["data_uri"]:
        raise ValueError("data_uri (or data) is required: the TrainJob's nodes read the data themselves")
    if not a["model_uri"]:
        raise ValueError("model_uri (the model artifact's URI) is required: the job's name comes from it")


def trainjob_name(model_uri: str) -> str:
    """The TrainJob of one task run: the same on every retry, an RFC 1035 label short enough
    for JobSet's pod host names (``<name>-node-0-<i>``, at most 63 characters)."""
    return f"train-{job.task_key(model_uri)}"


def label_value(value: str) -> str:
    """``value`` as a valid label value: [A-Za-z0-9_.-], at most 63, alphanumeric at both ends."""
    return _LABEL_VALUE_CHARS.sub("-", value)[:63].strip("-_.")


def trainjob(
    name: str, namespace: str, *, spec_uri: str, image: str, num_nodes: int, cpu_per_node: str,
    memory_per_node: str, gpus_per_node: int, gpu_resource: str, training_runtime: str,
    training_runtime_kind: str, pipeline_run_id: str, pipeline_task_name: str, model_uri: str,
    environ,
) -> dict:
    """The TrainJob object (a dict for ``CustomObjectsApi``)."""
    cluster = {"worker": [f"{name}-{NODE}-0-{i}.{name}:{WORKER_PORT}" for i in range(num_nodes)]}
    env = [{"name": "TF_CONFIG", "value": json.dumps({"cluster": cluster})}]
    env += [{"name": key, "value": environ[key]} for key in FORWARDED_ENV if environ.get(key)]
    secrets = [(registry.TRACKING_SECRET, key, key) for key in registry.TRACKING_SECRET_KEYS]
    secrets += [(uris.MINIO_SECRET, key, variable) for key, variable in uris.MINIO_SECRET_KEYS.items()]
    env += [
        {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": True}}}
        for secret, key, variable in secrets
    ]
    resources = {"requests": {"cpu": str(cpu_per_node), "memory": str(memory_per_node)}}
    if gpus_per_node:
        resources["limits"] = {gpu_resource: str(gpus_per_node)}  # extended resources: limits
    labels = dict(OWNER_LABELS)
    for key, value in ((RUN_LABEL, pipeline_run_id), (TASK_LABEL, pipeline_task_name)):
        if label_value(value):
            labels[key] = label_value(value)
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainJob",
        "metadata": {
            "name": name, "namespace": namespace, "labels": labels,
            "annotations": {MODEL_URI_ANNOTATION: model_uri},
        },
        "spec": {
            "runtimeRef": {"apiGroup": GROUP, "kind": training_runtime_kind, "name": training_runtime},
            "trainer": {
                "image": image,
                "command": job.command(spec_uri),
                "numNodes": num_nodes,
                "resourcesPerNode": resources,
                "env": env,
            },
        },
    }


# --- the API -----------------------------------------------------------------------------------


class _Client:
    """The TrainJob and pod calls, through the real kubernetes client, errors explained."""

    def __init__(self, kubeconfig: str, namespace: str):
        from kubernetes import client, config

        kubeconfig = kubeconfig or os.environ.get("KUBECONFIG", "")
        try:
            if kubeconfig:
                api = config.new_client_from_config(config_file=kubeconfig)
            elif os.environ.get("KUBERNETES_SERVICE_HOST"):
                configuration = client.Configuration()
                config.load_incluster_config(client_configuration=configuration)
                api = client.ApiClient(configuration)
            else:
                api = config.new_client_from_config()
        except Exception as exc:  # noqa: BLE001 - kubernetes raises several config error types
            where = kubeconfig or "the in-cluster service account or ~/.kube/config"
            raise KubernetesApiError(
                f"cannot configure a Kubernetes client from {where} ({type(exc).__name__}: {exc})"
            ) from exc
        self.custom, self.core = client.CustomObjectsApi(api), client.CoreV1Api(api)
        self.namespace = namespace or _own_namespace(kubeconfig)

    def call(self, what: str, func, *args, **kwargs):
        from kubernetes.client.rest import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return func(*args, **kwargs)
        except ApiException as exc:
            raise KubernetesApiError(_explain(what, exc), exc.status) from exc
        except HTTPError as exc:
            raise KubernetesApiError(f"{what}: the Kubernetes API did not answer ({exc})") from exc

    def get(self, name: str) -> dict | None:
        try:
            return self.call(
                f"get TrainJob {self.namespace}/{name}", self.custom.get_namespaced_custom_object,
                GROUP, VERSION, self.namespace, PLURAL, name,
            )
        except KubernetesApiError as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, body: dict) -> dict:
        return self.call(
            f"create TrainJob {self.namespace}/{body['metadata']['name']}",
            self.custom.create_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL, body,
        )

    def delete(self, name: str) -> None:
        """Deletes the TrainJob and, with it, its JobSet and pods; never raises (cleanup)."""
        from kubernetes import client

        try:
            self.call(
                f"delete TrainJob {self.namespace}/{name}", self.custom.delete_namespaced_custom_object,
                GROUP, VERSION, self.namespace, PLURAL, name,
                body=client.V1DeleteOptions(propagation_policy="Foreground"),
            )
            logger.info("TrainJob %s/%s deleted", self.namespace, name)
        except KubernetesApiError as exc:
            if exc.status != 404:
                logger.warning("could not delete TrainJob %s/%s: %s", self.namespace, name, exc)

    def pods(self, name: str) -> list:
        listed = self.call(
            f"list the pods of TrainJob {self.namespace}/{name}", self.core.list_namespaced_pod,
            self.namespace, label_selector=f"{JOBSET_LABEL}={name}",
        )
        return sorted(listed.items, key=lambda p: (_index(p), p.metadata.name))

    def log_tail(self, pod: str, lines: int = 20) -> str:
        try:
            return self.call(
                f"read the log of pod {self.namespace}/{pod}", self.core.read_namespaced_pod_log,
                pod, self.namespace, container=NODE, tail_lines=lines,
            )
        except KubernetesApiError:
            return ""  # the pod may be gone: the error still names it and its reason


def _own_namespace(kubeconfig: str) -> str:
    """This task's namespace: the service account's, else the kubeconfig context's, else default."""
    if os.path.isfile(SERVICE_ACCOUNT_NAMESPACE):
        with open(SERVICE_ACCOUNT_NAMESPACE) as f:
            return f.read().strip()
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts(config_file=kubeconfig or None)
        return active["context"].get("namespace") or "default"
    except Exception:  # noqa: BLE001 - no kubeconfig at all: Kubernetes' default namespace
        return "default"


def _explain(what: str, exc) -> str:
    text, detail = kserve.api_error(what, exc)
    if exc.status in (401, 403):
        text += (
            ". The pipeline's service account needs create/get/delete on trainjobs.trainer.kubeflow.org, "
            "get/list on pods and pods/log in this namespace (manifests/rbac, Role kfp-ct-train-launcher)."
        )
    elif exc.status == 404 and "create" in what:
        text += ". Is Kubeflow Trainer (v2, trainer.kubeflow.org) installed in this cluster?"
    elif exc.status == 422 and "runtime" in detail.lower():
        text += (
            ". Apply the TensorFlow TrainingRuntime in this namespace: "
            "kubectl apply -k manifests/trainer/overlays/<env>."
        )
    return text


# --- the job's life --------------------------------------------------------------------------


def _start(client: _Client, body: dict, write_spec) -> None:
    """Creates the TrainJob, or adopts the one an earlier attempt of this task created.

    A running or finished job of this task is adopted (its nodes already read the spec, so it
    is not rewritten). A failed one is replaced: its successor resumes from the checkpoint.
    """
    name, model_uri = body["metadata"]["name"], body["metadata"]["annotations"][MODEL_URI_ANNOTATION]
    while True:
        live = client.get(name)
        if live is None:
            write_spec()
            try:
                client.create(body)
            except KubernetesApiError as exc:
                if exc.status == 409:  # created meanwhile, or the old one still being deleted
                    time.sleep(1.0)
                    continue
                raise
            logger.info(
                "TrainJob %s/%s created: %d node(s), runtime %s %s", client.namespace, name,
                body["spec"]["trainer"]["numNodes"], body["spec"]["runtimeRef"]["kind"],
                body["spec"]["runtimeRef"]["name"],
            )
            return
        owner = ((live.get("metadata") or {}).get("annotations") or {}).get(MODEL_URI_ANNOTATION)
        if owner != model_uri:
            raise TrainJobConflict(
                f"TrainJob {client.namespace}/{name} exists but was made for {owner or 'another task'}, "
                f"not for {model_uri}; it is left alone: delete it, or run in another namespace", 409,
            )
        if (live.get("metadata") or {}).get("deletionTimestamp"):
            time.sleep(1.0)  # the failed attempt's job is still going away
            continue
        state = _terminal(live)
        if state and state[0] == "Failed":
            logger.warning(
                "TrainJob %s/%s of an earlier attempt failed (%s): replacing it; training resumes "
                "from the checkpoint", client.namespace, name, state[1],
            )
            client.delete(name)
            continue
        logger.info(
            "adopting TrainJob %s/%s, created by an earlier attempt of this task",
            client.namespace, name,
        )
        return


def _terminal(trainjob: dict) -> tuple[str, str] | None:
    """("Complete" | "Failed", "reason: message") once the controller says so, else None."""
    for condition in (trainjob.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            why = ": ".join(p for p in (condition.get("reason"), condition.get("message")) if p)
            return condition["type"], why
    return None


def _suspended(trainjob: dict) -> bool:
    return any(
        c.get("type") == "Suspended" and c.get("status") == "True"
        for c in (trainjob.get("status") or {}).get("conditions") or []
    )


def _watch(client: _Client, name: str, poll_seconds: float, max_poll_seconds: float) -> None:
    """Polls the TrainJob until it completes; follows the chief's log meanwhile.

    Raises:
        TrainJobFailed: the job failed, or it was deleted under us.
    """
    followers: dict[str, _LogFollower] = {}
    seen: dict[str, str] = {}
    interval, version, failures, suspended = poll_seconds, None, 0, False
    try:
        while True:
            try:
                live = client.get(name)
                pods = client.pods(name) if live is not None else []
                failures = 0
            except KubernetesApiError as exc:
                failures += 1
                if exc.status not in (None, *_TRANSIENT) or failures >= _CONSECUTIVE_API_FAILURES:
                    raise
                logger.warning("polling TrainJob %s: %s (retrying)", name, exc)
                time.sleep(min(max_poll_seconds, poll_seconds * 2**failures))
                continue
            if live is None:
                raise TrainJobFailed(f"TrainJob {client.namespace}/{name} was deleted while it ran")
            for pod in pods:
                _report(pod, seen)
                if _waiting_reason(pod) in UNSTARTABLE:
                    raise TrainJobFailed(
                        f"TrainJob {client.namespace}/{name} cannot start: pod {pod.metadata.name} (node "
                        f"{_index(pod)}): {_pod_state(pod)}. Fix the runtime or the secrets, then retry."
                    )
                if _index(pod) == 0 and pod.metadata.name not in followers and _started(pod):
                    followers[pod.metadata.name] = _LogFollower(client, pod.metadata.name)
            state = _terminal(live)
            if state and state[0] == "Complete":
                logger.info("TrainJob %s/%s complete (%s)", client.namespace, name, state[1])
                for follower in followers.values():
                    follower.join()
                return
            if state:
                raise TrainJobFailed(_failure(client, name, state[1], pods))
            if _suspended(live) != suspended:
                suspended = not suspended
                logger.info("TrainJob %s %s", name, "suspended (queued?)" if suspended else "resumed")
            changed = live["metadata"].get("resourceVersion") != version
            version = live["metadata"].get("resourceVersion")
            # Back off while nothing happens; look again soon after a change.
            interval = poll_seconds if changed else min(max_poll_seconds, interval * 1.5)
            time.sleep(interval)
    finally:
        for follower in followers.values():
            follower.stop()


def _index(pod) -> int:
    try:
        return int((pod.metadata.labels or {}).get(INDEX_LABEL, "0"))
    except ValueError:
        return 0


def _waiting_reason(pod) -> str:
    for container in (pod.status.container_statuses if pod.status else None) or []:
        if container.state and container.state.waiting:
            return container.state.waiting.reason or ""
    return ""


def _started(pod) -> bool:
    return pod.status is not None and pod.status.phase in ("Running", "Succeeded", "Failed") and bool(
        pod.status.container_statuses
    )


def _pod_state(pod) -> str:
    """One line: the pod's phase and, when it says more, its reason and container state."""
    status = pod.status
    parts = [status.phase or "Unknown"]
    if status.reason:
        parts.append(f"{status.reason}: {status.message or ''}".rstrip(": "))
    for container in status.container_statuses or []:
        state = container.state
        if state and state.waiting and state.waiting.reason:
            message = f" ({state.waiting.message})" if state.waiting.message else ""
            parts.append(f"waiting: {state.waiting.reason}{message}")
        if state and state.terminated:
            ended = state.terminated
            reason = f" ({ended.reason})" if ended.reason else ""
            parts.append(f"exit code {ended.exit_code}{reason}{_signal(ended.exit_code)}")
    for condition in status.conditions or []:
        if condition.type == "DisruptionTarget" and condition.status == "True":
            parts.append(f"disrupted: {condition.reason}")
    return ", ".join(parts)


def _signal(exit_code) -> str:
    if exit_code == 137:
        return ": killed (SIGKILL: out of memory, evicted or preempted)"
    if exit_code == 143:
        return ": terminated (SIGTERM)"
    return ""


def _report(pod, seen: dict[str, str]) -> None:
    state = _pod_state(pod)
    if seen.get(pod.metadata.name) != state:
        seen[pod.metadata.name] = state
        logger.info("pod %s (node %d): %s", pod.metadata.name, _index(pod), state)


def _failed(pod) -> bool:
    status = pod.status
    if status is None:
        return False
    exit_codes = [
        c.state.terminated.exit_code
        for c in status.container_statuses or []
        if c.state and c.state.terminated
    ]
    return status.phase == "Failed" or bool(status.reason) or any(exit_codes)


def _failure(client: _Client, name: str, why: str, pods: list) -> str:
    """The error of a failed TrainJob: its reason, then each failed pod, its reason and log tail."""
    failed = [p for p in pods if _failed(p)]
    lines = [f"TrainJob {client.namespace}/{name} failed ({why})."]
    for pod in failed:
        lines.append(f"pod {pod.metadata.name} (node {_index(pod)}): {_pod_state(pod)}")
        tail = client.log_tail(pod.metadata.name).strip()
        if tail:
            lines.append("  its log ends with:\n    " + "\n    ".join(tail.splitlines()[-10:]))
    if not failed:
        lines.append("No failed pod is left to show (kubectl describe trainjob / jobset for more).")
    return "\n".join(lines)


class _LogFollower:
    """Streams one pod's log into this step's log, line by line, until the container ends."""

    def __init__(self, client: _Client, pod: str):
        self.client, self.pod, self.response = client, pod, None
        self.thread = threading.Thread(target=self._follow, name=f"log-{pod}", daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        try:
            self.response = self.client.call(
                f"follow the log of pod {self.pod}", self.client.core.read_namespaced_pod_log,
                self.pod, self.client.namespace, container=NODE, follow=True, _preload_content=False,
            )
            pending = b""
            for chunk in self.response.stream(4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    logger.info("[%s] %s", self.pod, line.decode(errors="replace"))
            if pending:
                logger.info("[%s] %s", self.pod, pending.decode(errors="replace"))
        except Exception as exc:  # noqa: BLE001 - a lost log stream must not fail the training
            logger.info("stopped following the log of pod %s (%s)", self.pod, exc)

    def join(self, timeout: float = 30.0) -> None:
        self.thread.join(timeout)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            if self.response is not None and self.thread.is_alive():
                self.response.release_conn()


@contextlib.contextmanager
def _terminated_on_sigterm():
    """SIGTERM (KFP terminating the run, the pod being deleted) raises ``Terminated`` in the
    main thread, so the TrainJob is deleted on the way out; elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated("SIGTERM: this task was terminated; deleting its TrainJob")

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
