"""train_model as a platform's training job: the workers' entry point and the launcher's side.

A launcher component (train_model_on_vertex, train_model_on_kubeflow) hands the training to
a platform's job (a Vertex AI CustomJob, a Kubeflow TrainJob) whose pods cannot see the
launcher task's own files. They meet in a staging folder, ``output_uri``, that both reach
through the URI layer (``/gcs/`` or gs://, minio://, s3://, a local path):

1. the launcher writes ``<output_uri>/spec.json`` (``write_spec``): ``runtime.run``'s keyword
   arguments without the local paths, the schema's copy, and ``output_uri`` itself;
2. every replica runs ``python -m components.train_model.job --spec <URI of spec.json>``
   (``command``): all train together (MultiWorkerMirroredStrategy from ``TF_CONFIG`` or
   Vertex's ``CLUSTER_SPEC``), and only the chief writes the outputs under ``output_uri``:
   ``model/`` (TF-Serving layout), ``eval_data.parquet``, ``tensorboard/``, and last
   ``result.json`` (``model_metadata``, ``eval_data_metadata``, ``metrics``);
3. after the job succeeded the launcher copies them into its task's output paths
   (``collect``) and puts ``result.json`` on its KFP outputs (``apply``, what train_model's
   own component does), so the steps downstream and KFP's artifact upload are unchanged.

Plain Python: never imports kfp; TensorFlow only on the worker side.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from components import interface, registry, uris
from components.train_model import _hardware

logger = logging.getLogger(__name__)

SPEC, RESULT, SCHEMA = "spec.json", "result.json", "schema.pbtxt"
MODEL, EVAL_DATA, TENSORBOARD = "model", "eval_data.parquet", "tensorboard"
RESULT_KEYS = ("model_metadata", "eval_data_metadata", "metrics")
_COMPONENT = Path(__file__).resolve().parent / "component.py"


class JobOutputError(RuntimeError):
    """A job reported success but its chief's outputs are not (all) in the staging folder."""


def task_key(model_uri: str) -> str:
    """A short name for one task run, the same on every retry (its model artifact's URI)."""
    return hashlib.sha256(model_uri.encode()).hexdigest()[:16]


def checkpoint_folder(checkpoint_uri: str, model_uri: str) -> str:
    """The task run's own checkpoint folder: one subfolder of ``checkpoint_uri`` per task run
    (the same on every retry), or ``<model artifact URI>_checkpoints`` when it is empty."""
    if checkpoint_uri:
        return f"{checkpoint_uri.rstrip('/')}/{task_key(model_uri)}"
    return f"{model_uri}_checkpoints"


def apply(result: dict, *, model, eval_data, metrics) -> None:
    """Puts a training result (``result.json``'s keys, or ``vars(TrainingResult)``) on the
    KFP output artifacts: the model's and eval data's metadata, one metric per value."""
    model.metadata.update(result["model_metadata"])
    eval_data.metadata.update(result["eval_data_metadata"])
    for name, value in result["metrics"].items():
        metrics.log_metric(name, value)


# ------------------------------------------------------------------------------ launcher side


def training_args(values: dict) -> dict:
    """The train_model parameters among ``values`` (a launcher's arguments, which add the job's
    shape to train_model's): what the spec carries to ``runtime.run``."""
    return {name: values[name] for name in interface.parameters(_COMPONENT, "train_model") if name in values}


def write_spec(output_uri: str, args: dict, *, schema_path: str = "") -> str:
    """Writes the job's spec (and the schema's copy) under ``output_uri``; returns its URI.

    Args:
        output_uri: The staging folder the job's workers and the launcher both reach.
        args: ``runtime.run``'s keyword arguments: train_model's parameters (see
            ``training_args``), with ``data_uri`` and ``checkpoint_uri`` the workers can reach.
        schema_path: The launcher's local copy of the TFDV schema ("" for none).

    Raises:
        ValueError: ``args`` holds something that is not a train_model parameter, or no data.
    """
    unknown = sorted(set(args) - set(interface.parameters(_COMPONENT, "train_model")))
    if unknown:
        raise ValueError(f"a training job's spec takes train_model's parameters only, not {unknown}")
    if not args.get("data_uri"):
        raise ValueError("a training job needs data_uri: the job's workers cannot read the launcher's files")
    spec = {"args": args, "output_uri": output_uri, "schema_uri": ""}
    if schema_path:
        spec["schema_uri"] = uris.join(output_uri, SCHEMA)
        uris.write_bytes(spec["schema_uri"], Path(schema_path).read_bytes())
    # A result from an earlier job of this task must not pass for this one's.
    result = uris.join(output_uri, RESULT)
    if uris.exists(result):
        filesystem, path = uris.filesystem_for(result)
        filesystem.delete_file(path)
    spec_uri = uris.join(output_uri, SPEC)
    uris.write_bytes(spec_uri, json.dumps(spec, indent=1, sort_keys=True).encode())
    logger.info("training job spec written to %s", spec_uri)
    return spec_uri


def command(spec_uri: str) -> list[str]:
    """The container command every replica of the job runs."""
    return ["python", "-m", "components.train_model.job", "--spec", spec_uri]


def collect(output_uri: str, *, model_dir: str, eval_data_path: str, tensorboard_dir: str = "") -> dict:
    """Copies the chief's outputs from ``output_uri`` into the launcher's output paths and
    returns ``result.json`` (``model_metadata``, ``eval_data_metadata``, ``metrics``).

    Raises:
        JobOutputError: no ``result.json`` (the job never ran this entry point's chief to the
            end), or no SavedModel under ``<output_uri>/model``.
    """
    result_uri = uris.join(output_uri, RESULT)
    if not uris.exists(result_uri):
        raise JobOutputError(
            f"the training job succeeded but left no {result_uri}: its chief (workerpool0 / "
            "worker 0) must run 'python -m components.train_model.job --spec ...'"
        )
    result = json.loads(uris.read_bytes(result_uri))
    model_uri = uris.join(output_uri, MODEL)
    if uris.download_dir(model_uri, model_dir) == 0:
        raise JobOutputError(f"the training job's result has no model files under {model_uri}")
    os.makedirs(os.path.dirname(os.path.abspath(eval_data_path)), exist_ok=True)
    Path(eval_data_path).write_bytes(uris.read_bytes(uris.join(output_uri, EVAL_DATA)))
    if tensorboard_dir:
        uris.download_dir(uris.join(output_uri, TENSORBOARD), tensorboard_dir)
    logger.info("collected the training job's outputs from %s", output_uri)
    return {key: result[key] for key in RESULT_KEYS}


# -------------------------------------------------------------------------------- worker side


def run_worker(spec_uri: str) -> dict:
    """Trains as one replica of the job; the chief uploads the outputs and ``result.json``.

    Returns:
        What ``runtime.run`` returned (``result.json``'s keys), on every worker.
    """
    from components.train_model import runtime

    spec = json.loads(uris.read_bytes(spec_uri))
    output_uri = spec["output_uri"]
    # The runtime decides the same from the same cluster (TF_CONFIG, else CLUSTER_SPEC).
    chief = _hardware.is_chief(_hardware.tf_config())
    scratch = tempfile.mkdtemp(prefix="train_model_job_")
    schema_path = ""
    if spec.get("schema_uri"):
        schema_path = os.path.join(scratch, SCHEMA)
        Path(schema_path).write_bytes(uris.read_bytes(spec["schema_uri"]))
    local = {
        "model_dir": os.path.join(scratch, MODEL),
        "eval_data_path": os.path.join(scratch, EVAL_DATA),
        "tensorboard_dir": os.path.join(scratch, TENSORBOARD),
    }
    args = dict(spec["args"])
    args["mlflow_tracking_uri"] = registry.resolve_tracking_uri(args.get("mlflow_tracking_uri", ""))
    trained = runtime.run(**args, schema_path=schema_path, **local)
    result = {key: getattr(trained, key) for key in RESULT_KEYS}
    if chief:
        uris.upload_dir(local["model_dir"], uris.join(output_uri, MODEL))
        uris.write_bytes(uris.join(output_uri, EVAL_DATA), Path(local["eval_data_path"]).read_bytes())
        if os.path.isdir(local["tensorboard_dir"]):
            uris.upload_dir(local["tensorboard_dir"], uris.join(output_uri, TENSORBOARD))
        # Last: its presence means every output above is complete.
        uris.write_bytes(uris.join(output_uri, RESULT), json.dumps(result, indent=1, sort_keys=True).encode())
        logger.info("chief: outputs written under %s", output_uri)
    else:
        logger.info("worker: trained in lockstep; the chief writes the outputs")
    shutil.rmtree(scratch, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m components.train_model.job",
        description="Runs train_model as one replica of a distributed training job.",
    )
    parser.add_argument("--spec", required=True, help="URI of the job's spec.json (see write_spec)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run_worker(args.spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
