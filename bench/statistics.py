"""Benchmark: TFDV statistics from Arrow vs through pandas vs Apache Beam, against a bare read.

A table (default 1,000,000 rows x 20 columns: 6 float, 6 int, 8 string categories, 2-3 %
missing in each kind; or ``--data FILE.csv``, real rows tiled up to ``--rows``) is written to
Parquet and CSV in a temp dir. Measured side by side in one run (these machines are shared and
noisy; compare the ratios), each path in a fresh process so its peak RSS is its own:

- floor: pyarrow reading the file into memory and nothing else;
- pandas path (before): ``tfdv_io.read_table``, pandas (nullable ints), then
  ``tfdv.generate_statistics_from_dataframe`` (``tfdv_io.dataframe_statistics``);
- Arrow path (now): compute_statistics' in-memory engine, ``tfdv_io.read_table`` then
  ``tfdv_io.table_statistics`` on every CPU, and on one thread;
- Beam, on a smaller file (``--beam-rows``, so it finishes in a couple of minutes): the
  in-memory engine and compute_statistics' Beam engine on the DirectRunner in process and
  with ``--direct_running_mode=multi_processing --direct_num_workers=N``.

Ratio = seconds / floor seconds of the same file. In-memory paths: best of ``--repeat`` runs
in their process (the first run, what a pipeline task pays, is shown too); Beam: one run.
Every in-memory path's statistics are compared with the pandas path's (the whole
DatasetFeatureStatisticsList proto).

    bash scripts/in-runtime.sh python bench/statistics.py > bench/results/statistics.md
    bash scripts/in-runtime.sh python bench/statistics.py --rows 200000 --formats parquet
    bash scripts/in-runtime.sh python bench/statistics.py --data /datasets/chicago_taxi/data.csv

The Markdown goes to stdout (or ``--output PATH``); logs go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from report import header

logger = logging.getLogger("bench.statistics")

FLOATS, INTS, STRINGS = 6, 6, 8
IN_MEMORY = {"pandas": "pandas path (before)", "arrow": "Arrow path (now)", "arrow-1": "Arrow path, 1 thread"}
BEAM = {"beam": "Beam DirectRunner, in process", "beam-mp": "Beam DirectRunner, multi_processing"}


def generate(rows: int, seed: int = 0):
    """A mixed table: floats (normal, lognormal), ints (counts, codes), string categories."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    columns = {}
    for i in range(FLOATS):
        values = rng.lognormal(3, 1, rows) if i % 2 else rng.normal(50, 15, rows)
        values[rng.uniform(size=rows) < 0.03] = np.nan
        columns[f"f{i}"] = values.round(3)
    for i in range(INTS):
        values = rng.poisson(3 + 10 * i, rows) if i % 2 else rng.integers(0, 24, rows)
        columns[f"i{i}"] = pd.array(values, dtype="Int64")
        columns[f"i{i}"][rng.uniform(size=rows) < 0.02] = pd.NA
    for i in range(STRINGS):
        vocab = np.array([f"cat{i}_{v}" for v in range(5 * (i + 1))])
        values = vocab[rng.zipf(1.6, rows) % len(vocab)].astype(object)
        values[rng.uniform(size=rows) < 0.02] = None
        columns[f"s{i}"] = values
    return pd.DataFrame(columns)


def tiled(path: Path, rows: int):
    """A real CSV's rows repeated up to ``rows`` (the columns and their holes stay real)."""
    import pyarrow as pa

    from components import tfdv_io

    table = tfdv_io.read_table(tfdv_io.locate_data(str(path)))
    copies = -(-rows // table.num_rows)
    return pa.concat_tables([table] * copies).slice(0, rows).combine_chunks()


def write_files(table_or_frame, work: Path, formats: list[str], stem: str) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    table = table_or_frame if isinstance(table_or_frame, pa.Table) else pa.Table.from_pandas(
        table_or_frame, preserve_index=False)
    files = {}
    for fmt in formats:
        path = work / f"{stem}.{fmt}"
        if fmt == "parquet":
            pq.write_table(table, path)
        else:
            pcsv.write_csv(table, path)
        files[fmt] = path
    return files


def pyarrow_read(path: Path) -> int:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    table = pq.read_table(path) if path.suffix == ".parquet" else pcsv.read_csv(path)
    return table.num_rows


def measure(path: str, engine: str, repeat: int, beam_flags: list[str]) -> dict:
    """One path on one file, in this (fresh) process: best seconds, rows, peak RSS, statistics."""
    import resource

    import tensorflow_data_validation  # noqa: F401 - imported before the clock and the baseline

    from components import tfdv_io
    from components.compute_statistics import runtime

    baseline = _rss_mib()
    options = runtime._stats_options([])
    data = tfdv_io.locate_data(path)
    if engine in BEAM:
        repeat = 1
        out = Path(tempfile.mkdtemp(prefix="bench-beam-")) / "stats.pb"

        def once():
            runtime.run(output_path=str(out), data_uri=path, engine="beam", beam_pipeline_options=beam_flags)
            return tfdv_io.load_statistics(str(out))
    elif engine == "pandas":
        def once():
            return tfdv_io.dataframe_statistics(tfdv_io.read_table(data), options)
    elif engine == "arrow":
        def once():
            return runtime._in_memory(data, options)
    else:
        def once():
            return tfdv_io.table_statistics(tfdv_io.read_table(data), options, threads=1)
    times, cpus, stats = [], [], None
    for _ in range(repeat):
        started, cpu = time.perf_counter(), _cpu_seconds()
        stats = once()
        times.append(time.perf_counter() - started)
        cpus.append(_cpu_seconds() - cpu)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"seconds": min(times), "first": times[0], "cpu": min(cpus),
            "rows": int(stats.datasets[0].num_examples),
            "peak_mib": peak, "baseline_mib": baseline, "stats": stats.SerializeToString(deterministic=True)}


def _cpu_seconds() -> float:
    """CPU time of this process, all threads (Beam's worker processes not included)."""
    times = os.times()
    return times.user + times.system


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def in_fresh_process(*args) -> dict:
    # Each path in its own process, so its peak RSS is its own; forked from a server that
    # imported TFDV once (not from this process, which has TensorFlow's threads running).
    with ProcessPoolExecutor(max_workers=1, mp_context=_FORKSERVER) as pool:
        return pool.submit(measure, *args).result()


_FORKSERVER = multiprocessing.get_context("forkserver")
_FORKSERVER.set_forkserver_preload(["tensorflow_data_validation", "components.compute_statistics.runtime"])


def best_read(path: Path) -> tuple[float, float, int]:
    best, best_cpu, rows = float("inf"), float("inf"), 0
    for _ in range(3):
        started, cpu = time.perf_counter(), _cpu_seconds()
        rows = pyarrow_read(path)
        best = min(best, time.perf_counter() - started)
        best_cpu = min(best_cpu, _cpu_seconds() - cpu)
    return best, best_cpu, rows


def run_paths(files: dict[str, Path], paths: list[str], repeat: int, beam_flags: dict, label: str) -> list:
    results = []
    for fmt, path in files.items():
        floor, floor_cpu, rows = best_read(path)
        size = path.stat().st_size / 2**20
        logger.info("%s %s: pyarrow read %.2fs", label, fmt, floor)
        results.append({"set": label, "format": fmt, "path": "pyarrow read (floor)", "seconds": floor,
                        "rows": rows, "size_mib": size, "ratio": 1.0, "cpu": floor_cpu, "cpu_ratio": 1.0})
        reference = None
        for key in paths:
            result = in_fresh_process(str(path), key, repeat, beam_flags.get(key, []))
            name = {**IN_MEMORY, **BEAM}[key]
            logger.info("%s %s: %s %.2fs (%d rows, peak RSS %.0f MiB)", label, fmt, name,
                        result["seconds"], result["rows"], result["peak_mib"])
            if key == "pandas":
                reference = result["stats"]
            same = "" if key == "pandas" or key in BEAM or reference is None else (
                "yes" if _same_statistics(result["stats"], reference) else "**no**")
            results.append({
                "set": label, "format": fmt, "path": name, "seconds": result["seconds"],
                "first": result["first"], "rows": result["rows"], "size_mib": size,
                "ratio": result["seconds"] / floor,
                "cpu": result["cpu"], "cpu_ratio": result["cpu"] / floor_cpu,
                "peak_mib": result["peak_mib"], "growth_mib": result["peak_mib"] - result["baseline_mib"],
                "same": same,
            })
    return results


def _same_statistics(a: bytes, b: bytes) -> bool:
    from tensorflow_metadata.proto.v0 import statistics_pb2

    left, right = statistics_pb2.DatasetFeatureStatisticsList(), statistics_pb2.DatasetFeatureStatisticsList()
    left.ParseFromString(a)
    right.ParseFromString(b)
    return left == right


def table_lines(results: list) -> list[str]:
    lines = ["| format | file MiB | path | seconds | first run s | rows/s | ratio vs read | CPU s | "
             "CPU ratio | peak RSS MiB (growth) | same statistics as pandas path |", "|---" * 11 + "|"]
    for r in results:
        rss = f"{r['peak_mib']:.0f} (+{r['growth_mib']:.0f})" if "peak_mib" in r else ""
        first = f"{r['first']:.2f}" if "first" in r else ""
        lines.append(f"| {r['format']} | {r['size_mib']:.0f} | {r['path']} | {r['seconds']:.2f} | {first} | "
                     f"{r['rows'] / r['seconds']:,.0f} | {r['ratio']:.1f}x | {r['cpu']:.2f} | "
                     f"{r['cpu_ratio']:.1f}x | {rss} | {r.get('same', '')} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--beam-rows", type=int, default=200_000,
                        help="rows of the file the Beam rows run on (0: no Beam rows)")
    parser.add_argument("--beam-workers", type=int, default=os.cpu_count(),
                        help="direct_num_workers for the multi_processing row")
    parser.add_argument("--data", type=Path, help="a real CSV whose rows are tiled up to --rows")
    parser.add_argument("--formats", default="parquet,csv", help="comma-separated: parquet,csv")
    parser.add_argument("--repeat", type=int, default=3, help="runs per in-memory path (best counts)")
    parser.add_argument("--output", help="write the Markdown here as well as to stdout")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")

    import apache_beam
    import pyarrow
    import tensorflow_data_validation as tfdv

    formats = [f for f in args.formats.split(",") if f]
    work = Path(tempfile.mkdtemp(prefix="bench-statistics-"))
    if args.data:
        describe = f"{args.data.name}, real rows tiled to {args.rows:,}"
        source = lambda rows: tiled(args.data, rows)  # noqa: E731
    else:
        describe = (f"{args.rows:,} rows x {FLOATS + INTS + STRINGS} columns ({FLOATS} float, {INTS} int, "
                    f"{STRINGS} string categories; 2-3% missing in each)")
        source = generate
    logger.info("writing %s to %s", describe, work)
    files = write_files(source(args.rows), work, formats, "data")
    results = run_paths(files, list(IN_MEMORY), args.repeat, {}, "main")
    beam_results = []
    multi = [f"--direct_num_workers={args.beam_workers}", "--direct_running_mode=multi_processing"]
    if args.beam_rows:
        small = write_files(source(args.beam_rows), work, formats, "small")
        beam_results = run_paths(small, ["arrow", "beam", "beam-mp"], 1,
                                 {"beam": ["--direct_num_workers=1"], "beam-mp": multi}, "beam")

    lines = [
        *header(
            "Statistics benchmark: TFDV from Arrow vs through pandas vs Beam, against a pyarrow read",
            " ".join(["bash scripts/in-runtime.sh python bench/statistics.py", *sys.argv[1:]]),
        ),
        f"- versions: tensorflow-data-validation {tfdv.__version__}, apache-beam {apache_beam.__version__},"
        f" pyarrow {pyarrow.__version__}",
        f"- data: {describe}",
        f"- floor: best of 3 reads; in-memory paths: best of {args.repeat} in a fresh process each; "
        "Beam: one run",
        "",
        "ratio = seconds / pyarrow read seconds for the same file; CPU ratio = CPU seconds (all threads "
        "of the measuring process) / the read's CPU seconds, steadier than wall time when other jobs "
        "load the machine; peak RSS of the measuring process (growth: above its RSS after importing TFDV).",
        "",
        *table_lines(results),
    ]
    if beam_results:
        lines += ["", f"Beam, on {args.beam_rows:,} rows (multi_processing: {' '.join(multi)}):", "",
                  *table_lines(beam_results)]
    by = {(r["set"], r["format"], r["path"]): r["seconds"] for r in results + beam_results}
    lines.append("")
    for fmt in formats:
        pandas, arrow = by.get(("main", fmt, IN_MEMORY["pandas"])), by.get(("main", fmt, IN_MEMORY["arrow"]))
        if pandas and arrow:
            lines.append(f"- {fmt}: pandas path / Arrow path = {pandas / arrow:.1f}x")
        beam, multi_s = by.get(("beam", fmt, BEAM["beam"])), by.get(("beam", fmt, BEAM["beam-mp"]))
        small_arrow = by.get(("beam", fmt, IN_MEMORY["arrow"]))
        if beam and multi_s and small_arrow:
            lines.append(f"- {fmt}: Beam in process / multi_processing = {beam / multi_s:.2f}x; "
                         f"Beam in process / Arrow path = {beam / small_arrow:.1f}x")
    markdown = "\n".join(lines) + "\n"
    sys.stdout.write(markdown)
    if args.output:
        Path(args.output).write_text(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
