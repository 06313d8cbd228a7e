"""Benchmark: train_model throughput, and whether its input pipeline starves the accelerator.

Measured side by side in one run (these machines are shared and noisy; compare the ratios):

1. Throughput: ``train_model``'s ``runtime.run`` end to end on demo data (default 5,000 rows,
   default hyperparameters, early stopping off): training examples/s as the component reports
   it (training time only, validation excluded), plus the wall time of the whole run.
2. Input pipeline: the same Keras model trained for the same number of steps from
   - the real pipeline (``_data.make_dataset``: seeded per-epoch shuffle of row indices,
     batched gather, prefetch), and
   - the same batches cached in memory as tensors (one pass of the pipeline, materialized,
     then replayed: no shuffling, no gathering).
   Ratio = real steps/s / cached steps/s; >= 0.9 means the pipeline is not the bottleneck.
   Steady state: each round is one fit() of several epochs, timed from the end of its first
   epoch (the iterator start-up a training run pays once is left out). Rounds alternate
   real/cached and the medians are compared.

On CPU (the default here):

    bash scripts/in-runtime.sh python bench/training.py > bench/results/training.md

On a GPU machine, in the GPU trainer image (``images.TRAINER_GPU``, built by
``scripts/build-images.sh --gpu``), from the repository root:

    docker run --rm --gpus all -v "$PWD:/src:ro" -w /src -e PYTHONPATH=/src \\
        "$(python3 -c 'import runpy; print(runpy.run_path("components/images.py")["TRAINER_GPU"])')" \\
        python bench/training.py > bench/results/training-gpu.md

There the hardware plan picks the GPU (mixed_float16 on compute capability >= 7.0; the table
shows strategy and precision), and the ratio says whether the CPU-side pipeline keeps the GPU fed.

The GPU check (issue 17 §5, on a machine with a GPU, in the GPU trainer image as above):

    ... python bench/training.py --precisions off,on --output bench/results/training-gpu.md

trains the demo model end to end once per ``mixed_precision`` setting (each in a fresh
process: the Keras policy is global), side by side, and reports examples/s for each and the
ratio to the first; it stops with an error when TensorFlow sees no GPU (``--allow-cpu`` runs
it anyway, to try the script on a CPU).

Options: ``--rows``, ``--epochs``, ``--batch-sizes 128,512``, ``--rounds``, ``--output PATH``,
``--precisions off,on``, ``--allow-cpu``.
The Markdown goes to stdout (or ``--output PATH``); logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import header

logger = logging.getLogger("bench.training")


def throughput(rows: int, epochs: int, batch_size: int, workdir: Path, mixed_precision: str = "auto") -> dict:
    from components.make_demo_data import runtime as demo
    from components.train_model import runtime

    data_path = demo.write(demo.generate(rows, seed=0), workdir / f"demo-{batch_size}.csv")
    start = time.perf_counter()
    result = runtime.run(
        label=demo.LABEL,
        data_uri=str(data_path),
        model_dir=str(workdir / f"model-{batch_size}"),
        eval_data_path=str(workdir / f"eval-{batch_size}.parquet"),
        categorical_columns=["contract_type"],
        timestamp_column=demo.TIMESTAMP,
        epochs=epochs,
        batch_size=batch_size,
        early_stopping_patience=0,
        mixed_precision=mixed_precision,
        verbose=0,
    )
    return {
        "wall_seconds": time.perf_counter() - start,
        "examples_per_second": result.metrics["examples_per_second"],
        "train_rows": result.metrics["train_rows"],
        "eval_auc": result.metrics["eval_auc"],
        "strategy": result.model_metadata["strategy"],
        "precision": result.model_metadata["precision"],
    }


def pipeline_ratio(rows: int, batch_size: int, rounds: int, epochs_per_round: int) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from components.make_demo_data import runtime as demo
    from components.train_model import _data, _features, _hardware, _model

    # The hardware plan train_model would use (on a GPU: its strategy and mixed precision).
    strategy = _hardware.apply(_hardware.plan(*_hardware.detect()))
    keras.utils.set_random_seed(0)
    df = demo.generate(rows, seed=0)
    specs = _features.feature_specs(
        df, None, demo.LABEL, categorical_columns=["contract_type"], timestamp_column=demo.TIMESTAMP
    )
    target = _features.resolve_target(df[demo.LABEL], demo.LABEL)
    x, y = _data.feature_arrays(df, specs), target.encode(df[demo.LABEL])
    with strategy.scope():
        model = _model.build(specs, x, target, hidden_units=[64, 32], dropout=0.1, seed=0)
        _model.compile_model(model, target, 0.003)

    real = _data.make_dataset(x, y, batch_size, training=True, seed=0)
    steps = _data.steps_per_epoch(len(y), batch_size)
    batches = list(real.take(steps))  # one epoch of the real pipeline, materialized as tensors
    cached = tf.data.Dataset.from_tensors(batches[0])
    for batch in batches[1:]:
        cached = cached.concatenate(tf.data.Dataset.from_tensors(batch))
    cached = cached.cache().repeat()  # fed exactly like the real stream: repeated, by steps
    for _ in cached.take(steps):  # fill the cache before timing
        pass

    class SteadyState(keras.callbacks.Callback):
        """Time from the end of the first epoch to the end of the last: steady-state steps/s,
        without the iterator start-up that every fit() call pays once."""

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                self.start = time.perf_counter()
            self.end = time.perf_counter()

    def steps_per_second(dataset) -> float:
        timer = SteadyState()
        model.fit(dataset, epochs=epochs_per_round, steps_per_epoch=steps, callbacks=[timer], verbose=0)
        return steps * (epochs_per_round - 1) / (timer.end - timer.start)

    steps_per_second(real)  # warm-up: tracing and compiling the train step
    steps_per_second(cached)
    measured = {"real": [], "cached": []}
    for _ in range(rounds):
        measured["real"].append(steps_per_second(real))
        measured["cached"].append(steps_per_second(cached))
    per_round = {k: [round(v) for v in vs] for k, vs in measured.items()}
    logger.info("batch %d steps/s per round: %s", batch_size, per_round)
    real_sps, cached_sps = float(np.median(measured["real"])), float(np.median(measured["cached"]))
    return {
        "steps_per_epoch": steps,
        "real_steps_per_second": real_sps,
        "cached_steps_per_second": cached_sps,
        "ratio": real_sps / cached_sps,
    }


def precision_check(args, argv, batch_size: int) -> int:
    """examples/s of train_model once per mixed_precision setting, side by side."""
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU") and not args.allow_cpu:
        logger.error("TensorFlow sees no GPU here (run in the GPU trainer image with --gpus all)")
        return 1
    runs = []
    for precision in args.precisions.split(","):
        child = subprocess.run(
            [sys.executable, __file__, "--measure-precision", precision, "--rows", str(args.rows),
             "--epochs", str(args.epochs), "--batch-sizes", str(batch_size)],
            stdout=subprocess.PIPE, check=True, text=True,
        )
        runs.append((precision, json.loads(child.stdout.strip().splitlines()[-1])))
    first = runs[0][1]["examples_per_second"]
    command = "python bench/training.py " + " ".join(argv or sys.argv[1:])
    lines = [
        *header("Benchmark: train_model with and without mixed precision (the GPU check)", command),
        f"- devices: {devices()}",
        f"- data: demo churn table, {args.rows} rows, {args.epochs} epochs, batch {batch_size}",
        "",
        "| mixed_precision | strategy | precision used | examples/s (training) | ratio "
        "| end-to-end run s | eval AUC |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for precision, run in runs:
        lines.append(
            f"| {precision} | {run['strategy']} | {run['precision']} | {run['examples_per_second']:,.0f} "
            f"| **{run['examples_per_second'] / first:.2f}** | {run['wall_seconds']:.1f} "
            f"| {run['eval_auc']:.3f} |"
        )
    text = "\n".join(lines) + "\n"
    Path(args.output).write_text(text) if args.output else sys.stdout.write(text)
    return 0


def devices() -> str:
    """The GPUs TensorFlow sees, and its version."""
    import tensorflow as tf

    gpus = ", ".join(d.name for d in tf.config.list_physical_devices("GPU")) or "no GPU"
    return f"{gpus}; TensorFlow {tf.__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the end-to-end run")
    parser.add_argument("--batch-sizes", default="128,512")
    parser.add_argument("--rounds", type=int, default=9, help="alternating real/cached rounds")
    parser.add_argument("--epochs-per-round", type=int, default=6)
    parser.add_argument("--output", help="write the Markdown here instead of stdout")
    parser.add_argument("--precisions", default="", help="compare mixed_precision settings, e.g. off,on")
    parser.add_argument("--allow-cpu", action="store_true", help="--precisions without a GPU")
    parser.add_argument("--measure", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--measure-precision", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    if args.measure_precision:
        # Child process: one precision setting, the end-to-end run, results as JSON on stdout.
        with tempfile.TemporaryDirectory() as tmp:
            run = throughput(args.rows, args.epochs, batch_sizes[0], Path(tmp), args.measure_precision)
        sys.stdout.write(json.dumps(run) + "\n")
        return 0
    if args.precisions:
        return precision_check(args, argv, batch_sizes[0])

    if args.measure:
        # Child process: one batch size, results as JSON on stdout.
        with tempfile.TemporaryDirectory() as tmp:
            logger.info("batch size %d: real vs cached input", args.measure)
            ratio = pipeline_ratio(args.rows, args.measure, args.rounds, args.epochs_per_round)
            logger.info("batch size %d: end-to-end run", args.measure)
            run = throughput(args.rows, args.epochs, args.measure, Path(tmp))
        sys.stdout.write(json.dumps({"run": run, "ratio": ratio}) + "\n")
        return 0

    rows = []
    for batch_size in batch_sizes:
        # A fresh process per batch size: tf.data threads and iterators left over from one
        # configuration must not slow down the next one.
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--measure",
                str(batch_size),
                "--rows",
                str(args.rows),
                "--epochs",
                str(args.epochs),
                "--rounds",
                str(args.rounds),
                "--epochs-per-round",
                str(args.epochs_per_round),
            ],
            stdout=subprocess.PIPE,
            check=True,
            text=True,
        )
        measured = json.loads(child.stdout.strip().splitlines()[-1])
        rows.append((batch_size, measured["run"], measured["ratio"]))

    command = "bash scripts/in-runtime.sh python bench/training.py " + " ".join(argv or sys.argv[1:])
    lines = [
        *header("Benchmark: training throughput and input pipeline (train_model)", command),
        f"- devices: {devices()}",
        f"- data: demo churn table, {args.rows} rows ({rows[0][1]['train_rows']} train), "
        f"{args.epochs} epochs end to end; strategy {rows[0][1]['strategy']}, "
        f"precision {rows[0][1]['precision']}",
        "",
        "| batch | examples/s (training) | end-to-end run s | eval AUC | steps/epoch "
        "| real pipeline steps/s | cached tensors steps/s | ratio real/cached |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for batch_size, run, ratio in rows:
        lines.append(
            f"| {batch_size} | {run['examples_per_second']:,.0f} | {run['wall_seconds']:.1f} "
            f"| {run['eval_auc']:.3f} | {ratio['steps_per_epoch']} "
            f"| {ratio['real_steps_per_second']:.1f} | {ratio['cached_steps_per_second']:.1f} "
            f"| **{ratio['ratio']:.2f}** |"
        )
    lines += [
        "",
        "Ratio >= 0.9: the input pipeline keeps up with training (target of issue 4). "
        "The end-to-end time includes reading, splitting, building, exporting and checking "
        "the SavedModel.",
    ]
    text = "\n".join(lines) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
