"""Which distribution strategy and float precision a training run uses, and why.

``plan`` is a pure function of what the machine reports (GPU names, their compute
capabilities, ``TF_CONFIG``), so the choice is testable without GPUs; ``detect`` asks
TensorFlow, and ``apply`` turns a plan into a strategy and a Keras dtype policy.

The cluster comes from ``TF_CONFIG`` (Kubeflow's TFJob, or any launcher that writes it), else
from Vertex AI's ``CLUSTER_SPEC`` (``tf_config``). A Kubeflow TrainJob's pods all get the same
environment, so train_model_on_kubeflow writes ``TF_CONFIG`` without a ``task``; each pod's
index is the ``JOB_COMPLETION_INDEX`` Kubernetes sets in every pod of an Indexed Job (JobSet's).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)

MIXED_PRECISION_MODES = ("auto", "on", "off")
# Tensor Cores (Volta, compute capability 7.0) are what make float16 math pay off; older GPUs
# run mixed_float16 no faster, or slower, than float32.
MIN_MIXED_PRECISION_CAPABILITY = (7, 0)


@dataclass(frozen=True)
class HardwarePlan:
    """The chosen strategy ("default" | "mirrored" | "multi_worker_mirrored"), the Keras dtype
    policy ("float32" | "mixed_float16"), what they were chosen from, and a sentence why."""

    strategy: str
    precision: str
    gpus: int
    workers: int
    reason: str


VERTEX_POOL_ROLES = ("chief", "worker", "ps", "evaluator")
"""The TF_CONFIG task type of Vertex AI's worker pools ``workerpool0`` .. ``workerpool3``."""
_VERTEX_POOL = re.compile(r"workerpool([0-3])")


def tf_config_from_cluster_spec(cluster_spec: str) -> str:
    """The ``TF_CONFIG`` of Vertex AI's ``CLUSTER_SPEC``: ``workerpool0`` (one replica) is the
    chief, ``workerpool1`` the other workers, the task the same replica.

    Raises:
        ValueError: ``CLUSTER_SPEC`` is not Vertex's JSON, or it has parameter servers or an
            evaluator (workerpool2, workerpool3), which MultiWorkerMirroredStrategy never uses.
    """
    try:
        spec = json.loads(cluster_spec)
        pools, task = dict(spec["cluster"]), dict(spec["task"])
        task_pool, task_index = str(task["type"]), int(task["index"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            "CLUSTER_SPEC is not Vertex AI's JSON with 'cluster' and 'task' (type, index): "
            f"{cluster_spec[:200]!r}"
        ) from exc
    cluster = {}
    for pool, addresses in pools.items():
        match = _VERTEX_POOL.fullmatch(pool)
        if not match:
            raise ValueError(
                f"CLUSTER_SPEC names a worker pool {pool!r}; Vertex AI names them workerpool0..3"
            )
        role = VERTEX_POOL_ROLES[int(match[1])]
        if addresses and role in ("ps", "evaluator"):
            raise ValueError(
                f"CLUSTER_SPEC has {pool} ({role}): train_model trains with MultiWorkerMirroredStrategy, "
                "which uses workerpool0 (the chief) and workerpool1 (the other workers) only"
            )
        if addresses:
            cluster[role] = list(addresses)
    match = _VERTEX_POOL.fullmatch(task_pool)
    if not match or task_pool not in pools:
        raise ValueError(f"CLUSTER_SPEC's task is in pool {task_pool!r}, which its cluster does not list")
    task = {"type": VERTEX_POOL_ROLES[int(match[1])], "index": task_index}
    return json.dumps({"cluster": cluster, "task": task})


def tf_config(environ: Mapping[str, str] | None = None) -> str | None:
    """This process's ``TF_CONFIG``: the variable itself (a ``task`` missing from it is worker
    ``JOB_COMPLETION_INDEX``, as in a Kubeflow TrainJob's pods), else derived from Vertex AI's
    ``CLUSTER_SPEC``; None when neither is set (one worker)."""
    environ = os.environ if environ is None else environ
    if environ.get("TF_CONFIG"):
        return _with_task_from_job_index(environ["TF_CONFIG"], environ.get("JOB_COMPLETION_INDEX", ""))
    if environ.get("CLUSTER_SPEC"):
        return tf_config_from_cluster_spec(environ["CLUSTER_SPEC"])
    return None


def _with_task_from_job_index(config: str, job_index: str) -> str:
    """``config`` with ``task`` worker ``job_index`` when it has no task and an index is set."""
    try:
        parsed = json.loads(config)
    except json.JSONDecodeError:
        return config  # cluster_workers names the malformed value
    if not isinstance(parsed, dict) or parsed.get("task") or not job_index:
        return config
    if not job_index.isdigit():
        raise ValueError(f"JOB_COMPLETION_INDEX must be a non-negative integer, got {job_index!r}")
    return json.dumps({**parsed, "task": {"type": "worker", "index": int(job_index)}})


def cluster_workers(tf_config: str | None) -> int:
    """Number of workers (chief included) that ``TF_CONFIG`` declares; 1 without it.

    Raises:
        ValueError: ``TF_CONFIG`` is set but is not the JSON the platforms write.
    """
    if not tf_config:
        return 1
    try:
        cluster = json.loads(tf_config).get("cluster", {})
    except (json.JSONDecodeError, AttributeError) as exc:
        raise ValueError(f"TF_CONFIG is not valid JSON with a 'cluster' object: {tf_config[:200]!r}") from exc
    return len(cluster.get("chief", [])) + len(cluster.get("worker", []))


def is_chief(tf_config: str | None) -> bool:
    """Whether this process writes the outputs: no cluster, the chief, or worker 0 without
    a chief (the MultiWorkerMirroredStrategy convention)."""
    if cluster_workers(tf_config) <= 1:
        return True
    config = json.loads(tf_config)
    task = config.get("task", {})
    if task.get("type") == "chief":
        return True
    has_chief = bool(config.get("cluster", {}).get("chief"))
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0 and not has_chief


def plan(
    gpus: Sequence[str],
    compute_capabilities: Sequence[tuple[int, int] | None],
    tf_config: str | None,
    mixed_precision: str = "auto",
) -> HardwarePlan:
    """Chooses the strategy and precision.

    Args:
        gpus: Names of the visible GPUs (empty on CPU).
        compute_capabilities: One (major, minor) per GPU; None when unknown.
        tf_config: The ``TF_CONFIG`` environment value (None or "" when unset).
        mixed_precision: "auto" (mixed_float16 only when every GPU has compute capability
            >= 7.0), "on" (always mixed_float16) or "off" (always float32).

    Raises:
        ValueError: unknown ``mixed_precision`` value or malformed ``TF_CONFIG``.
    """
    if mixed_precision not in MIXED_PRECISION_MODES:
        raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION_MODES}, got {mixed_precision!r}")
    workers = cluster_workers(tf_config)
    if workers > 1:
        strategy, why = "multi_worker_mirrored", f"TF_CONFIG declares {workers} workers"
    elif len(gpus) > 1:
        strategy, why = "mirrored", f"{len(gpus)} GPUs on this machine"
    else:
        strategy = "default"
        why = "one GPU" if gpus else "no GPU (CPU)"

    known = [c for c in compute_capabilities if c is not None]
    if mixed_precision == "on":
        precision, why_precision = "mixed_float16", "mixed_precision='on'"
    elif mixed_precision == "off":
        precision, why_precision = "float32", "mixed_precision='off'"
    elif gpus and len(known) == len(gpus) and min(known) >= MIN_MIXED_PRECISION_CAPABILITY:
        precision = "mixed_float16"
        why_precision = f"auto: GPU compute capability {min(known)} >= 7.0"
    else:
        precision = "float32"
        why_precision = (
            "auto: no GPU" if not gpus else f"auto: GPU compute capability {known or 'unknown'} < 7.0"
        )
    return HardwarePlan(strategy, precision, len(gpus), workers, f"{why}; {why_precision}")


def detect() -> tuple[list[str], list[tuple[int, int] | None], str | None]:
    """What TensorFlow sees: GPU names, their compute capabilities, and ``TF_CONFIG`` (see
    ``tf_config``; one derived from ``CLUSTER_SPEC`` is also set in the environment)."""
    import tensorflow as tf

    devices = tf.config.list_physical_devices("GPU")
    capabilities = []
    for device in devices:
        try:
            capabilities.append(tf.config.experimental.get_device_details(device).get("compute_capability"))
        except (ValueError, RuntimeError):
            capabilities.append(None)
    config = tf_config()
    if config and config != os.environ.get("TF_CONFIG") and cluster_workers(config) > 1:
        # MultiWorkerMirroredStrategy reads the cluster from TF_CONFIG itself.
        source = "JOB_COMPLETION_INDEX" if os.environ.get("TF_CONFIG") else "Vertex AI's CLUSTER_SPEC"
        os.environ["TF_CONFIG"] = config
        logger.info("TF_CONFIG from %s: %s", source, config)
    return [d.name for d in devices], capabilities, config


def apply(hardware: HardwarePlan):
    """Sets the Keras dtype policy and returns the ``tf.distribute.Strategy`` of the plan.

    Call it before any other TensorFlow work: MultiWorkerMirroredStrategy must be created
    before the runtime initializes its devices.
    """
    import keras
    import tensorflow as tf

    if hardware.strategy == "multi_worker_mirrored":
        strategy = _multi_worker_strategy_class()()
    elif hardware.strategy == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()
    keras.mixed_precision.set_global_policy(hardware.precision)
    logger.info(
        "hardware: strategy=%s (%d replicas), precision=%s, gpus=%d, workers=%d: %s",
        hardware.strategy,
        strategy.num_replicas_in_sync,
        hardware.precision,
        hardware.gpus,
        hardware.workers,
        hardware.reason,
    )
    return strategy


def build_for_strategy(model, element_spec) -> None:
    """Lets Keras fit and evaluate a model bound to a ``tf.distribute`` strategy when its inputs
    are a dict holding strings.

    Keras 3 (3.15 and 3.16 alike) builds such a model's loss, metric and optimizer state from
    the data's first batch all-reduced across the replicas (``_maybe_symbolic_build``, before
    every ``fit`` and ``evaluate``). A dict of features, or a string feature, cannot be
    all-reduced (keras-team/keras#20329), so every model here failed there under
    MultiWorkerMirroredStrategy. The build needs only shapes and dtypes: it gets them from
    ``element_spec`` (the training dataset's), on this worker, with no collective.
    """

    def build(iterator=None, data_batch=None):
        with model.distribute_strategy.scope():
            model._symbolic_build(data_batch=element_spec)

    model._maybe_symbolic_build = build


def _multi_worker_strategy_class():
    """MultiWorkerMirroredStrategy that Keras 3's ``fit`` can use.

    Keras 3 (3.15 and 3.16 alike) reduces each training step's outputs (the loss and metric
    results, scalars) across workers with ``strategy.reduce("MEAN", value, axis=0)``, which
    fails for a scalar ("Invalid reduction dimension 0 for input with 0 dimensions",
    tensorflow/tensorflow#72388). A scalar has no axis 0: its mean over the replicas is what is
    meant. Only those per-step values are affected; the epoch's logs (what callbacks, early
    stopping and the training log see) are read from the metric variables summed over the
    workers, so they are the same on every worker and equal to a single-worker run's.
    """
    import tensorflow as tf

    class KerasMultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op, value, axis):
            local = tf.nest.flatten(self.experimental_local_results(value))
            if axis is not None and all(tf.convert_to_tensor(v).shape.rank == 0 for v in local):
                axis = None
            return super().reduce(reduce_op, value, axis)

    return KerasMultiWorkerMirroredStrategy
