"""Benchmark: our compiled training pipeline under kfp.local next to TFX's own taxi pipeline.

Both run on the same file (by default ``../shared/datasets/chicago_taxi/data.csv``, the file TFX
ships as ``data/big_tipper_label/data.csv``), on this machine, back to back, alternating which
goes first (at least two pairs; these machines are shared and noisy: compare the ratios):

- TFX 1.21's shipped ``taxi_pipeline_native_keras`` (CsvExampleGen, StatisticsGen, SchemaGen,
  ExampleValidator, Transform, Trainer with 1,000 steps, the latest-blessed-model resolver,
  Evaluator, Pusher) under ``LocalDagRunner``, in one process, with its own module file and
  Beam settings, in the benchmark image ``images/bench-tfx`` (the runtime image plus
  ``tfx==1.21.0``, built here for the benchmark only). Its label is ``tips > 20 % of fare``,
  computed by its module file: the file's ``big_tipper`` column.
- ``pipelines/training.yaml`` (the golden spec) under ``kfp.local.DockerRunner`` in the runtime
  image, as ``make demo`` runs it: label ``big_tipper``, ``tips`` dropped (it gives the label
  away), 10 epochs, deployment to a local KServe model server with its smoke test, a real
  MLflow server. Every run is a first run on both sides: a fresh MLMD store for TFX, a fresh
  registered model name for us (no baseline, no cache).

The headline ratio is ours / TFX's ``LocalDagRunner.run`` (TFX's pipeline alone, after its
process started and imported TFX); the ratio to TFX's whole process (container start and
imports included) is shown next to it. Ours is the whole pipeline call: every task's container,
imports and work.

    bash scripts/bench.sh pipeline                      # writes bench/results/pipeline.md
    .venv/bin/python bench/pipeline.py --pairs 3        # on the host (it drives Docker)

Runs on the host (kfp.local drives Docker); the Markdown goes to stdout (or ``--output``), logs
to stderr. Without the data file it says so and prints nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from report import header

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "datasets" / "chicago_taxi" / "data.csv"
MLFLOW_CONTAINER = "kfp-ct-bench-mlflow"

logger = logging.getLogger("bench.pipeline")


def tfx_image() -> str:
    from components import images

    return f"kfp-ct-bench-tfx:{images.TAG}"


def build_tfx_image() -> float:
    """Builds images/bench-tfx on the current runtime image (Docker's cache makes a rebuild on
    an unchanged runtime image take a second); returns the build's seconds."""
    from components import images

    start = time.perf_counter()
    subprocess.run(
        ["docker", "build", "-q", "--build-arg", f"RUNTIME_IMAGE={images.RUNTIME}",
         "-f", "images/bench-tfx/Dockerfile", "-t", tfx_image(), "."],
        cwd=REPO, check=True, stdout=subprocess.DEVNULL,
        env={**os.environ, "DOCKER_BUILDKIT": os.environ.get("DOCKER_BUILDKIT", "0")},
    )
    return time.perf_counter() - start


# ------------------------------------------------------------------------------------- TFX


def tfx_inside(data_root: str, output_root: str) -> None:
    """In the bench image: TFX's shipped taxi pipeline, timed; one JSON line on stdout."""
    started = time.perf_counter()
    from tfx.examples.chicago_taxi_pipeline import taxi_pipeline_native_keras as taxi
    from tfx.orchestration import metadata
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    imported = time.perf_counter()
    out = Path(output_root)
    metadata_path = out / "metadata.db"
    pipeline = taxi._create_pipeline(
        pipeline_name=taxi._pipeline_name,
        pipeline_root=str(out / "pipelines"),
        data_root=data_root,
        module_file=str(Path(taxi.__file__).with_name("taxi_utils_native_keras.py")),
        serving_model_dir=str(out / "serving_model"),
        metadata_path=str(metadata_path),
        beam_pipeline_args=taxi._beam_pipeline_args,
    )
    LocalDagRunner().run(pipeline)
    finished = time.perf_counter()

    # Each component's execution, from TFX's own metadata store: registered when it starts,
    # updated when its outputs are published.
    with metadata.Metadata(metadata.sqlite_metadata_connection_config(str(metadata_path))) as m:
        names = {t.id: t.name.rsplit(".", 1)[-1] for t in m.store.get_execution_types()}
        components = {
            names[e.type_id]: round((e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000, 1)
            for e in sorted(m.store.get_executions(), key=lambda e: e.create_time_since_epoch)
        }
    pushed = any((out / "serving_model").rglob("saved_model.pb"))
    print(json.dumps({
        "import_seconds": imported - started,
        "pipeline_seconds": finished - imported,
        "components": components,
        "pushed": pushed,
    }))


def run_tfx(data: Path, workdir: Path) -> dict:
    """One TFX run in a fresh container and a fresh output folder (fresh MLMD: a first run)."""
    workdir.mkdir(parents=True)
    command = [
        "docker", "run", "--rm", "--network", "none", "-u", f"{os.getuid()}:{os.getgid()}",
        "-v", f"{REPO}:/src:ro", "-w", "/src", "-e", "PYTHONPATH=/src",
        "-v", f"{data.parent}:/data:ro", "-v", f"{workdir}:/out",
        tfx_image(), "python", "bench/pipeline.py", "--tfx-inside", "/data", "/out",
    ]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"TFX's pipeline failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["pushed"]:
        raise RuntimeError("TFX's pipeline ran but pushed no model (its Evaluator did not bless it)")
    return {**result, "process_seconds": seconds}


# ------------------------------------------------------------------------------------- ours


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ours(data: Path, workdir: Path, mlflow_uri: str, index: int, epochs: int) -> dict:
    """One run of the golden training pipeline, as ``make demo`` runs it, under its own
    pipeline root and registered model name (a first run: nothing in production)."""
    from launch import local

    root = local.init(workdir)
    staged = root / "data" / data.name  # kfp.local mounts the pipeline root only
    staged.parent.mkdir(parents=True)
    shutil.copy2(data, staged)
    name = f"bench-taxi-{os.getpid()}-{index}"
    with contextlib.redirect_stdout(sys.stderr):  # the tasks' logs: stdout is the report
        result = local.run_pipeline(
            "training", root,
            data_uri=str(staged), label="big_tipper", exclude_features=["tips"], epochs=epochs,
            mlflow_tracking_uri=mlflow_uri, registered_model_name=name, service_name=name,
            deploy_target="local", local_serving_dir=str(root / "serving"), local_endpoint="",
            accelerator_count=0,
        )
    if result.error or not (result.gate("deployment-is-healthy") or {}).get("passed"):
        raise RuntimeError(f"our pipeline did not deploy: {result.error or result.records}")
    return {"pipeline_seconds": result.seconds, "tasks": result.steps}


# ------------------------------------------------------------------------------------- report


def median(values: list[float]) -> float:
    ordered = sorted(values)  # (bench/statistics.py shadows the statistics module here)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def table(header: list[str], rows: list[list]) -> list[str]:
    """A Markdown table: the first column left-aligned, the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def report(args, data: Path, build_seconds: float, pairs: list[tuple[dict, dict, str]]) -> str:
    from components import images

    rows = sum(1 for _ in data.open()) - 1
    lines = [
        *header("Pipeline benchmark: our gated training pipeline vs TFX's taxi pipeline", args.command),
        f"- data: `{data}` ({rows:,} rows); ours: label `big_tipper`, `tips` dropped, "
        f"{args.epochs} epochs; TFX: its module file (label tips > 0.2 fare), 1,000 training steps",
        f"- images: ours `{images.RUNTIME}` (kfp.local DockerRunner); TFX `{tfx_image()}` "
        f"(the same image + tfx 1.21.0; building it took {build_seconds:.0f} s here, cached when 0)",
        f"- {len(pairs)} pairs, back to back, alternating which goes first; every run a first run",
        "",
    ]
    ratios = [ours["pipeline_seconds"] / tfx["pipeline_seconds"] for tfx, ours, _ in pairs]
    lines += table(
        ["pair", "first", "TFX process s", "TFX pipeline s", "ours s", "ours / TFX pipeline",
         "ours / TFX process"],
        [[i, first, f"{tfx['process_seconds']:.1f}", f"{tfx['pipeline_seconds']:.1f}",
          f"{ours['pipeline_seconds']:.1f}", f"**{ratio:.2f}**",
          f"{ours['pipeline_seconds'] / tfx['process_seconds']:.2f}"]
         for i, ((tfx, ours, first), ratio) in enumerate(zip(pairs, ratios, strict=True), 1)],
    )
    lines += ["", f"Median ours / TFX pipeline: **{median(ratios):.2f}** (target <= 0.75).", ""]

    runs = [f"run {i}" for i in range(1, len(pairs) + 1)]
    tasks = list(pairs[0][1]["tasks"])
    lines += [f"Our tasks ({len(tasks)} on a good run), seconds per run (kfp.local: each task's container "
              "start, imports and work):", ""]
    lines += table(
        ["task", *runs],
        [[task, *(f"{o['tasks'].get(task, 0):.1f}" for _, o, _ in pairs)] for task in tasks]
        + [["(sum of tasks)", *(f"{sum(o['tasks'].values()):.1f}" for _, o, _ in pairs)]],
    )
    components = list(pairs[0][0]["components"])
    lines += ["", f"TFX's components ({len(components)}), seconds per run (from its MLMD executions):", ""]
    lines += table(
        ["component", *runs],
        [[c, *(f"{t['components'].get(c, 0):.1f}" for t, _, _ in pairs)] for c in components]
        + [["(importing TFX, before the pipeline)", *(f"{t['import_seconds']:.1f}" for t, _, _ in pairs)]],
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--pairs", type=int, default=2, help="TFX/ours pairs, alternating order (>= 2)")
    parser.add_argument("--epochs", type=int, default=10, help="our training epochs (make demo's default)")
    parser.add_argument("--workdir", type=Path, default=REPO / "local_outputs" / "bench-pipeline")
    parser.add_argument("--output", help="write the Markdown here instead of stdout")
    parser.add_argument("--tfx-inside", nargs=2, metavar=("DATA_ROOT", "OUTPUT_ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))  # run as a script: the checkout's packages
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    if args.tfx_inside:
        tfx_inside(*args.tfx_inside)
        return 0
    if args.pairs < 2:
        parser.error(f"--pairs must be at least 2 (one pair with each order), got {args.pairs}")
    data = args.data.resolve()
    if not data.is_file():
        logger.warning("skipped: no data file at %s (the shared Chicago-taxi dataset); "
                       "pass --data PATH to TFX's taxi CSV", data)
        return 0
    args.command = os.environ.get("BENCH_COMMAND") or "python bench/pipeline.py " + " ".join(argv)
    from launch import local

    logger.info("building the TFX benchmark image %s ...", tfx_image())
    build_seconds = build_tfx_image()
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    port = free_port()
    mlflow_uri = local.ensure_mlflow(args.workdir / "mlflow", port=port, name=MLFLOW_CONTAINER)
    pairs = []
    try:
        for i in range(args.pairs):
            order = ("tfx", "ours") if i % 2 == 0 else ("ours", "tfx")
            measured = {}
            for side in order:
                logger.info("pair %d: %s ...", i + 1, side)
                if side == "tfx":
                    measured[side] = run_tfx(data, args.workdir / f"tfx-{i}")
                    logger.info("TFX: %.1f s pipeline, %.1f s process",
                                measured[side]["pipeline_seconds"], measured[side]["process_seconds"])
                else:
                    measured[side] = run_ours(data, args.workdir / f"ours-{i}", mlflow_uri, i, args.epochs)
                    logger.info("ours: %.1f s", measured[side]["pipeline_seconds"])
            pairs.append((measured["tfx"], measured["ours"], order[0]))
            (args.workdir / "measured.json").write_text(json.dumps(pairs, indent=1))  # the raw numbers
    finally:
        local.stop_container(MLFLOW_CONTAINER)
    text = report(args, data, build_seconds, pairs)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
