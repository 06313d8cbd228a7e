"""train_model_on_vertex: train_model as a Vertex AI CustomJob of several replicas.

The job follows Vertex AI's layout for distributed TensorFlow: worker pool 0 is the chief (one
replica), pool 1 the other workers; every replica runs train_model's job entry point
(``components.train_model.job``), which trains with MultiWorkerMirroredStrategy from the
cluster Vertex describes (``TF_CONFIG``, else ``CLUSTER_SPEC``). The launcher and the replicas
meet in ``<model>_job``: Cloud Storage beside the model artifact, which both see at the same
``/gcs/`` path (Vertex mounts Cloud Storage there in pipeline tasks and in custom jobs); it is
also the job's base output directory.

One job per task run: labelled ``kfp-ct-task=<key of the model artifact's URI>`` (the same on
every retry), so a retried task waits for the job its earlier attempt started instead of
starting a second one, and starts a new one only when that one failed (the new one resumes
from the checkpoint). Terminating the task (a cancelled run, SIGTERM) cancels the job.

Plain Python: the GAPIC ``JobServiceClient`` (v1) configured by ``aiplatform.init`` (the
pod's application default credentials unless given others); never kfp or TensorFlow.
"""

from __future__ import annotations

import contextlib
import logging
import signal

from components import images, interface, registry, uris
from components.train_model import job
from components.vertex import VertexApiError, check_labels, check_where, label_value, pipeline_labels, quoted

logger = logging.getLogger(__name__)

TASK_LABEL = "kfp-ct-task"
"""The label naming the task run a job trains for (``job.task_key`` of its model URI)."""
RUN_LABEL = "kfp-ct-pipeline-run"
POLL_SECONDS, MAX_POLL_SECONDS = 15.0, 120.0
"""First wait between two looks at the job, doubled after each up to the second."""
CONSOLE = "https://console.cloud.google.com/agent-platform/locations/{location}/training/{job}?project={project}"
"""A custom job's page in the console (as aiplatform 1.x and 2.x link it)."""

_SUCCEEDED = "JOB_STATE_SUCCEEDED"
_ENDED_BADLY = ("JOB_STATE_FAILED", "JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED",
                "JOB_STATE_PARTIALLY_SUCCEEDED")
_TERMINAL = (_SUCCEEDED, *(s for s in _ENDED_BADLY if s != "JOB_STATE_CANCELLING"))


class TrainingJobFailed(RuntimeError):
    """The Vertex AI custom job failed, was cancelled or expired (the message has its error)."""


class TaskTerminated(RuntimeError):
    """The task was terminated while its job ran; the job was cancelled."""


def _checked(a: dict) -> None:
    """Checks ``run``'s arguments before any call, naming the bad one."""
    from google.cloud.aiplatform_v1 import types

    check_where(a["project"], a["location"])
    if a["replica_count"] < 1:
        raise ValueError(f"replica_count must be at least 1 (the chief), got {a['replica_count']}")
    if not a["machine_type"]:
        raise ValueError("machine_type must name a Compute Engine machine type, e.g. n1-standard-8")
    if a["accelerator_count"] < 0:
        raise ValueError(f"accelerator_count must be >= 0, got {a['accelerator_count']}")
    if a["accelerator_count"] and not a["accelerator_type"]:
        raise ValueError(
            f"accelerator_count {a['accelerator_count']} needs an accelerator_type, e.g. NVIDIA_TESLA_T4"
        )
    known = [t for t in types.AcceleratorType.__members__ if t != "ACCELERATOR_TYPE_UNSPECIFIED"]
    if a["accelerator_count"] and a["accelerator_type"] not in known:
        raise ValueError(
            f"accelerator_type {a['accelerator_type']!r} is not a Vertex AI accelerator type "
            f"(e.g. NVIDIA_TESLA_T4, NVIDIA_L4, NVIDIA_TESLA_A100)"
        )
    if a["boot_disk_size_gb"] < 100:
        raise ValueError(
            f"boot_disk_size_gb must be at least 100 (Vertex's minimum), got {a['boot_disk_size_gb']}"
        )
    check_labels(a["labels"])
    bad_env = [k for k in a["env"] if not isinstance(k, str) or not k or "=" in k]
    if bad_env:
        raise ValueError(f"env names must be non-empty strings without '=', got {bad_env}")


def _client(location: str):
    """The v1 GAPIC JobServiceClient as ``aiplatform.init`` configured it (endpoint, transport,
    credentials), for ``location``."""
    from google.cloud.aiplatform import initializer, utils

    return initializer.global_config.create_client(
        client_class=utils.JobClientWithOverride, location_override=location
    ).select_version("v1")


def _custom_job(a: dict, *, key: str, spec_uri: str, base_output_uri: str) -> dict:
    """The CustomJob (v1 fields): Vertex's pools for distributed TensorFlow, our entry point."""
    machine = {"machine_type": a["machine_type"]}
    if a["accelerator_count"]:
        machine.update(accelerator_type=a["accelerator_type"], accelerator_count=a["accelerator_count"])
    chief = {
        "machine_spec": machine,
        "replica_count": 1,
        "disk_spec": {"boot_disk_type": "pd-ssd", "boot_disk_size_gb": a["boot_disk_size_gb"]},
        "container_spec": {
            "image_uri": a["trainer_image"] or images.TRAINER_GPU,
            "command": job.command(spec_uri),
            "env": [{"name": k, "value": str(v)} for k, v in sorted(a["env"].items())],
        },
    }
    pools = [chief] + ([{**chief, "replica_count": a["replica_count"] - 1}] if a["replica_count"] > 1 else [])
    job_spec = {"worker_pool_specs": pools, "base_output_directory": {"output_uri_prefix": base_output_uri}}
    if a["service_account"]:
        job_spec["service_account"] = a["service_account"]
    if a["network"]:
        job_spec["network"] = a["network"]
    labels = {**pipeline_labels(), **a["labels"], TASK_LABEL: key}
    if a["pipeline_run_id"]:
        labels[RUN_LABEL] = label_value(a["pipeline_run_id"])
    return {"display_name": f"train-model-{key}", "job_spec": job_spec, "labels": labels}


def _earlier_job(client, parent: str, key: str):
    """The newest job of this task run that an earlier attempt started and that may still
    succeed (queued, running or succeeded); None when there is none."""
    jobs = sorted(
        client.list_custom_jobs(request={"parent": parent, "filter": f"labels.{TASK_LABEL}={quoted(key)}"}),
        key=lambda j: j.create_time,
    )
    if jobs and jobs[-1].state.name not in _ENDED_BADLY:
        return jobs[-1]
    if jobs:
        logger.info("the earlier job %s ended %s: starting a new one", jobs[-1].name, jobs[-1].state.name)
    return None


@contextlib.contextmanager
def _cancelled_if_terminated(client, name: str):
    """Cancels the job ``name`` when the task is terminated (SIGTERM, as Kubernetes and Vertex
    AI Pipelines stop a task of a cancelled run) or interrupted while inside the block."""

    def terminated(signum, frame):
        raise TaskTerminated(f"the task got {signal.Signals(signum).name} while {name} ran")

    try:
        previous = signal.signal(signal.SIGTERM, terminated)
    except ValueError:  # not the main thread: nothing can deliver the signal here
        previous = None
    try:
        yield
    except (TaskTerminated, KeyboardInterrupt) as exc:
        logger.warning("%s: cancelling %s", exc, name)
        from google.api_core import exceptions as api_exceptions

        try:
            client.cancel_custom_job(name=name)
        except api_exceptions.GoogleAPIError as cancel_error:
            logger.error("could not cancel %s: %s", name, cancel_error)
        raise TaskTerminated(f"{exc}: the custom job was cancelled") from exc
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _wait(client, name: str, poll_seconds: float, max_poll_seconds: float):
    """Polls the job until it ends, with backoff, logging each new state; returns the job. A
    failed read (the service busy or unreachable) is read again: the job runs on regardless."""
    import tenacity
    from google.api_core import exceptions as api_exceptions

    transient = (api_exceptions.ServiceUnavailable, api_exceptions.InternalServerError,
                 api_exceptions.TooManyRequests, api_exceptions.DeadlineExceeded)
    states: list[str] = []

    def read():
        job = client.get_custom_job(name=name)
        if not states or states[-1] != job.state.name:
            states.append(job.state.name)
            logger.info("%s: %s", name, job.state.name)
        return job

    def warn(retry_state) -> None:
        if retry_state.outcome.failed:
            logger.warning("reading %s failed (%s); trying again", name, retry_state.outcome.exception())

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(transient)
        | tenacity.retry_if_result(lambda job: job.state.name not in _TERMINAL),
        wait=tenacity.wait_exponential(multiplier=poll_seconds, max=max_poll_seconds),
        before_sleep=warn,
    )(read)


@interface.defaults_from(__file__)
def run(
    *,
    model_dir: str,
    model_uri: str,
    eval_data_path: str,
    tensorboard_dir: str = "",
    schema_path: str = "",
    poll_seconds: float = POLL_SECONDS,
    max_poll_seconds: float = MAX_POLL_SECONDS,
    label, data_uri, data_fingerprint, features, exclude_features, categorical_columns, timestamp_column,
    eval_fraction, task, epochs, batch_size, learning_rate, hidden_units, dropout, model_fn,
    mixed_precision, checkpoint_uri, early_stopping_patience, seed, mlflow_tracking_uri, mlflow_experiment,
    replica_count, machine_type, accelerator_type, accelerator_count, boot_disk_size_gb, service_account,
    network, env, labels, trainer_image, project, location, pipeline_run_id,
) -> dict:
    """Runs (or, on a retry, finds) the custom job and collects its outputs. Parameters are
    documented on the component (component.py); ``model_dir`` is the model artifact's local
    path (on Vertex AI Pipelines the ``/gcs/`` path of ``model_uri``).

    Returns:
        ``result.json`` of the job (``model_metadata`` with ``vertex_custom_job``, the job's
        resource name; ``eval_data_metadata``; ``metrics``), its outputs copied to the paths.

    Raises:
        ValueError: a bad argument, naming it.
        components.uris.UriError: the model artifact is not in Cloud Storage.
        VertexApiError: a Vertex AI call failed (its error chained).
        TrainingJobFailed: the job failed, was cancelled or expired.
        TaskTerminated: the task was terminated; the job was cancelled.
    """
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions

    arguments = dict(locals())
    _checked(arguments)
    base_output_uri = f"{uris.for_vertex(model_uri)}_job"
    output_uri = f"{model_dir.rstrip('/')}_job"  # the same folder, as this task and the replicas see it
    key = job.task_key(model_uri)
    args = job.training_args(arguments)
    args.update(
        checkpoint_uri=job.checkpoint_folder(checkpoint_uri, model_uri),
        mlflow_tracking_uri=registry.resolve_tracking_uri(mlflow_tracking_uri),  # the replicas have no secret
    )
    parent = f"projects/{project}/locations/{location}"
    client = _client(location)
    step = f"listing the custom jobs of {parent}"
    try:
        found = _earlier_job(client, parent, key)
        if found is not None:
            name = found.name
            logger.info("%s (%s) is this task's job from an earlier attempt: waiting for it", name,
                        found.state.name)
        else:
            spec_uri = job.write_spec(output_uri, args, schema_path=schema_path)
            body = _custom_job(arguments, key=key, spec_uri=spec_uri, base_output_uri=base_output_uri)
            step = f"creating a custom job in {parent}"
            name = client.create_custom_job(parent=parent, custom_job=body).name
            logger.info("created %s: %d replica(s) of %s", name, replica_count, machine_type)
        console = CONSOLE.format(location=location, job=name.rsplit("/", 1)[-1], project=project)
        logger.info("custom job's logs: %s", console)
        step = f"waiting for {name}"
        with _cancelled_if_terminated(client, name):
            ended = _wait(client, name, poll_seconds, max_poll_seconds)
    except (api_exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError) as exc:
        raise VertexApiError(f"Vertex AI failed {step}: {exc}") from exc
    if ended.state.name != _SUCCEEDED:
        message = ended.error.message or "no error message"
        raise TrainingJobFailed(
            f"Vertex AI custom job {name} ended {ended.state.name}: {message} (see {console})"
        )
    result = job.collect(
        output_uri, model_dir=model_dir, eval_data_path=eval_data_path, tensorboard_dir=tensorboard_dir
    )
    result["model_metadata"]["vertex_custom_job"] = name
    return result
