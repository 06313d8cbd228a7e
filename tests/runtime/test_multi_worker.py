"""train_model with MultiWorkerMirroredStrategy: two real worker processes on loopback.

Each worker is this file run as a script (``python tests/runtime/test_multi_worker.py SPEC``)
with its own ``TF_CONFIG``, as Vertex AI (``chief`` + ``worker``) or a Kubeflow TFJob /
TrainJob without a chief (``worker`` 0 + ``worker`` 1) write it, calling ``runtime.run`` on
small demo data with a shared ``checkpoint_uri`` and a real MLflow server. The workers talk
over gRPC on free loopback ports, so this is the collective training a cluster runs.

Why the results can be compared tightly: the global batch is the same (per-replica 32 on two
workers, 64 on one), the in-memory datasets are sharded by data (each worker gets its half of
every global batch, in the same epoch-seeded order), the weights start from the same seeded
initializers and dropout is 0 (dropout masks are drawn per replica, so with dropout the two
runs would differ by sampling noise, not by a bug). What remains is float rounding: two
half-batch gradients all-reduced instead of one full-batch gradient. After 3 epochs of Adam
that moved predictions (probabilities between 0.004 and 0.38) by at most 6e-8 here; TOLERANCE
(1e-4) leaves three orders of magnitude for other CPUs and kernels, while a wrong global batch
(per-replica batch taken as global) moved the eval loss by 1.6e-3. A resumed run matched the
uninterrupted one exactly (weights, optimizer state and epoch order are restored).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import free_port

TOLERANCE = 1e-4
EPOCHS = 3
PER_REPLICA_BATCH = 32
ARGS = dict(  # 640 rows: 512 train (8 global batches of 64), 128 eval
    label="churned", exclude_features=["signup_timestamp"], epochs=EPOCHS, learning_rate=0.01, dropout=0.0,
    early_stopping_patience=0, hidden_units=[16], seed=7,
)
WORKER_TIMEOUT_S = 300  # a hung collective fails the test instead of hanging it


def tf_config(kind: str, ports: list[int], index: int) -> str:
    """TF_CONFIG of task ``index``: "chief" is Vertex's layout (workerpool0 is the chief),
    "workers" a TFJob's or TrainJob's without a chief (worker 0 is the chief)."""
    addresses = [f"127.0.0.1:{p}" for p in ports]
    if kind == "chief":
        cluster = {"chief": addresses[:1], "worker": addresses[1:]}
        task = {"type": "chief", "index": 0} if index == 0 else {"type": "worker", "index": index - 1}
    else:
        cluster = {"worker": addresses}
        task = {"type": "worker", "index": index}
    return json.dumps({"cluster": cluster, "task": task})


class Worker:
    """One worker process: its real output paths, its log and its result."""

    def __init__(self, root: Path, name: str, config: str, args: dict, stop_after_first_epoch: bool):
        self.dir = root / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.model_dir, self.eval_path, self.tensorboard = (
            self.dir / "model", self.dir / "eval.parquet", self.dir / "tensorboard"
        )
        self.log = self.dir / "worker.log"
        self.result_path, self.stopped_marker = self.dir / "result.json", self.dir / "stopped"
        spec = {
            "args": {
                **args,
                "model_dir": str(self.model_dir),
                "eval_data_path": str(self.eval_path),
                "tensorboard_dir": str(self.tensorboard),
            },
            "result": str(self.result_path),
            "stop_marker": str(self.stopped_marker) if stop_after_first_epoch else "",
        }
        (self.dir / "spec.json").write_text(json.dumps(spec))
        # One thread pool each: two workers share the machine's cores.
        env = {**os.environ, "TF_CONFIG": config}
        env.update(TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, str(self.dir / "spec.json")], env=env, stdout=log,
                stderr=subprocess.STDOUT,
            )

    def tail(self) -> str:
        return "\n".join(self.log.read_text().splitlines()[-40:])

    def result(self) -> dict:
        return json.loads(self.result_path.read_text())


def start(root: Path, kind: str, args: dict, stop_after_first_epoch: bool = False) -> list[Worker]:
    ports = [free_port(), free_port()]
    return [
        Worker(root, f"task{i}", tf_config(kind, ports, i), args, stop_after_first_epoch) for i in range(2)
    ]


def finish(workers: list[Worker]) -> None:
    """Waits for every worker; fails with the logs of any that failed or hung."""
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    for w in workers:
        try:
            w.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in workers:
                other.proc.kill()
    failed = [w for w in workers if w.proc.wait() != 0]
    assert not failed, "\n\n".join(f"{w.dir.name} exited {w.proc.returncode}:\n{w.tail()}" for w in failed)


def wait_for_markers(workers: list[Worker]) -> None:
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    while not all(w.stopped_marker.exists() for w in workers):
        exited = [w for w in workers if w.proc.poll() is not None]
        if exited or time.monotonic() > deadline:
            for w in workers:
                w.proc.kill()
            pytest.fail("\n\n".join(f"{w.dir.name}:\n{w.tail()}" for w in workers))
        time.sleep(0.2)


def experiment_runs(tracking_uri: str, experiment: str):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    return client, (client.search_runs([found.experiment_id]) if found else [])


def predictions(model_dir: Path, rows):
    from components import model_io

    return model_io.predict(str(model_dir), rows)


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_path(tmp_path_factory) -> str:
    from components.make_demo_data import runtime as demo

    return str(demo.write(demo.generate(640, seed=0), tmp_path_factory.mktemp("data") / "demo.csv"))


@pytest.fixture(scope="module")
def eval_rows(data_path, single):
    import pandas as pd

    return pd.read_parquet(single["eval_path"])


@pytest.fixture(scope="module")
def single(tmp_path_factory, data_path) -> dict:
    """The reference: the same data, seeds and global batch on one worker, in this process."""
    from components.train_model import runtime

    root = tmp_path_factory.mktemp("single")
    result = runtime.run(
        **ARGS, data_uri=data_path, batch_size=2 * PER_REPLICA_BATCH, model_dir=str(root / "model"),
        eval_data_path=str(root / "eval.parquet"), mlflow_tracking_uri="", verbose=0,
    )
    return {"metrics": result.metrics, "model_dir": root / "model", "eval_path": root / "eval.parquet"}


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory, data_path, mlflow_server) -> dict:
    """Vertex's layout (chief + worker), one uninterrupted run."""
    root = tmp_path_factory.mktemp("two_workers")
    args = dict(
        ARGS, data_uri=data_path, batch_size=PER_REPLICA_BATCH, checkpoint_uri=str(root / "checkpoints"),
        mlflow_tracking_uri=mlflow_server, mlflow_experiment="multi-worker",
    )
    workers = start(root, "chief", args)
    finish(workers)
    return {"root": root, "workers": workers, "checkpoints": root / "checkpoints"}


# --- tests -----------------------------------------------------------------------------------


def test_both_workers_train_and_only_the_chief_exports_and_tracks(two_workers, mlflow_server):
    import pandas as pd

    chief, other = two_workers["workers"]
    chief_result, other_result = chief.result(), other.result()
    for result in (chief_result, other_result):
        assert result["model_metadata"]["strategy"] == "multi_worker_mirrored"
        assert [h["epoch"] for h in result["history"]] == [0, 1, 2]
    # Every worker ends with the same evaluation: metrics are summed over the workers.
    timing = {"examples_per_second"}
    assert {k: v for k, v in chief_result["metrics"].items() if k not in timing} == {
        k: v for k, v in other_result["metrics"].items() if k not in timing
    }
    # The chief's outputs are real; the other worker's output paths were never written.
    assert (chief.model_dir / "1" / "saved_model.pb").is_file() and chief.eval_path.is_file()
    assert (chief.tensorboard / "training_log.csv").is_file()
    assert not other.model_dir.exists() and not other.eval_path.exists() and not other.tensorboard.exists()
    # One training log in the shared checkpoint folder, each epoch once: the chief's.
    log = pd.read_csv(two_workers["checkpoints"] / "training_log.csv")
    assert list(log["epoch"]) == [0, 1, 2]
    # One MLflow run: the chief's, with the run's params and each epoch's metrics once.
    client, runs = experiment_runs(mlflow_server, "multi-worker")
    assert [r.info.run_id for r in runs] == [chief_result["model_metadata"]["mlflow_run_id"]]
    assert "mlflow_run_id" not in other_result["model_metadata"]
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["strategy"] == "multi_worker_mirrored"
    assert run.data.params["batch_size"] == str(PER_REPLICA_BATCH)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [0, 1, 2]
    assert run.data.metrics["final_eval_auc"] == pytest.approx(chief_result["metrics"]["eval_auc"])
    assert "model/1/saved_model.pb" in [f.path for f in client.list_artifacts(run.info.run_id, "model/1")]


def test_two_workers_train_the_model_one_worker_trains(two_workers, single, eval_rows):
    """The same global batch, data and seeds on one worker: the same model (see TOLERANCE)."""
    import numpy as np

    chief = two_workers["workers"][0]
    metrics = chief.result()["metrics"]
    assert metrics["train_rows"] == single["metrics"]["train_rows"] == 512
    for name in ("eval_loss", "eval_auc", "eval_accuracy", "train_loss"):
        assert metrics[name] == pytest.approx(single["metrics"][name], abs=TOLERANCE), name
    difference = np.abs(predictions(chief.model_dir, eval_rows) - predictions(single["model_dir"], eval_rows))
    assert difference.max() < TOLERANCE


def test_killed_workers_resume_from_the_shared_checkpoint(
    tmp_path, data_path, mlflow_server, two_workers, eval_rows
):
    """Both pods preempted after the first epoch's checkpoint (SIGKILL, no cleanup), then the
    job restarted as the platform restarts it: new processes, new ports, the same paths."""
    import numpy as np

    args = dict(
        ARGS, data_uri=data_path, batch_size=PER_REPLICA_BATCH, checkpoint_uri=str(tmp_path / "checkpoints"),
        mlflow_tracking_uri=mlflow_server, mlflow_experiment="multi-worker-resumed",
    )
    killed = start(tmp_path / "attempt1", "workers", args, stop_after_first_epoch=True)
    wait_for_markers(killed)
    for w in killed:
        os.kill(w.proc.pid, signal.SIGKILL)
        w.proc.wait()
    state = json.loads((tmp_path / "checkpoints" / "backup" / "training_metadata.json").read_text())
    assert state["epoch"] == 1
    assert not killed[0].model_dir.exists()
    _, runs = experiment_runs(mlflow_server, "multi-worker-resumed")
    assert [r.info.status for r in runs] == ["RUNNING"]  # killed: nobody ended it

    restarted = start(tmp_path / "attempt2", "workers", args)
    finish(restarted)
    chief, other = restarted
    for w in restarted:  # both restored epoch 1 from the chief's checkpoint, not only the chief
        assert [h["epoch"] for h in w.result()["history"]] == [1, 2]
        assert "resumed from the checkpoint at epoch 2" in w.log.read_text()
    assert chief.result()["metrics"]["epochs"] == EPOCHS
    assert (chief.model_dir / "1" / "saved_model.pb").is_file() and not other.model_dir.exists()
    assert not (tmp_path / "checkpoints" / "backup").exists()  # cleaned up after success
    client, runs = experiment_runs(mlflow_server, "multi-worker-resumed")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"  # the same run, continued
    assert [m.step for m in client.get_metric_history(runs[0].info.run_id, "val_loss")] == [0, 1, 2]
    # Resumed = uninterrupted: weights, optimizer state and the epochs' data order restored.
    uninterrupted = two_workers["workers"][0].model_dir
    difference = np.abs(predictions(chief.model_dir, eval_rows) - predictions(uninterrupted, eval_rows))
    assert difference.max() < TOLERANCE


# --- the worker ------------------------------------------------------------------------------


def _worker(spec_path: str) -> None:
    """Runs train_model's runtime with the spec's arguments and writes what it returned."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    spec = json.loads(Path(spec_path).read_text())
    callbacks = []
    if spec["stop_marker"]:
        import keras

        class Preempted(keras.callbacks.Callback):
            """Runs after the checkpointing callbacks: the first epoch's checkpoint is written;
            waits there for the SIGKILL a preempted pod gets."""

            def on_epoch_end(self, epoch, logs=None):
                Path(spec["stop_marker"]).write_text(str(epoch))
                signal.pause()

        callbacks.append(Preempted())
    from components.train_model import runtime

    result = runtime.run(**spec["args"], callbacks=callbacks, verbose=0)
    returned = {"metrics": result.metrics, "model_metadata": result.model_metadata, "history": result.history}
    Path(spec["result"]).write_text(json.dumps(returned))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    _worker(sys.argv[1])
