"""Benchmark: TFDV statistics in memory vs on Apache Beam (DirectRunner) vs a bare pyarrow read.

A generated table (default 1,000,000 rows x 20 columns: 6 float, 6 int, 8 string categories,
with a few percent missing values) is written to Parquet and CSV in a temp dir. For each
format, measured side by side in one run (these machines are shared and noisy; compare the
ratios):

- floor: pyarrow reading the file into memory and nothing else;
- in_memory: compute_statistics' in-memory engine (pyarrow read, pandas, then
  ``tfdv.generate_statistics_from_dataframe``), through ``runtime.run``;
- beam: compute_statistics' Beam engine on the DirectRunner (``generate_statistics_from_csv`` /
  ``ReadFromParquetBatched | GenerateStatistics``), through ``runtime.run``.

Ratio = seconds / floor seconds of the same format (how many times the bare read it costs).

    bash scripts/in-runtime.sh python bench/statistics.py > bench/results/statistics.md
    bash scripts/in-runtime.sh python bench/statistics.py --rows 200000 --formats parquet

The Markdown goes to stdout (or ``--output PATH``); logs go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

logger = logging.getLogger("bench.statistics")

FLOATS, INTS, STRINGS = 6, 6, 8


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
        columns[f"i{i}"] = rng.poisson(3 + 10 * i, rows) if i % 2 else rng.integers(0, 24, rows)
    for i in range(STRINGS):
        vocab = np.array([f"cat{i}_{v}" for v in range(5 * (i + 1))])
        values = vocab[rng.zipf(1.6, rows) % len(vocab)].astype(object)
        values[rng.uniform(size=rows) < 0.02] = None
        columns[f"s{i}"] = values
    return pd.DataFrame(columns)


def pyarrow_read(path: Path) -> int:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    table = pq.read_table(path) if path.suffix == ".parquet" else pcsv.read_csv(path)
    return table.num_rows


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--formats", default="parquet,csv", help="comma-separated: parquet,csv")
    parser.add_argument("--engines", default="in_memory,beam", help="comma-separated: in_memory,beam")
    parser.add_argument("--beam-option", action="append", default=[],
                        help="extra Beam flag, e.g. --beam-option=--direct_num_workers=2 (repeatable)")
    parser.add_argument("--output", help="write the Markdown here as well as to stdout")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")

    import apache_beam
    import pyarrow
    import tensorflow_data_validation as tfdv

    from components.compute_statistics import runtime

    formats = [f for f in args.formats.split(",") if f]
    engines = [e for e in args.engines.split(",") if e]
    work = Path(tempfile.mkdtemp(prefix="bench-statistics-"))
    logger.info("generating %d rows x %d columns in %s", args.rows, FLOATS + INTS + STRINGS, work)
    frame = generate(args.rows)
    files = {}
    for fmt in formats:
        path = work / f"data.{fmt}"
        if fmt == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
        files[fmt] = path
    del frame

    results = []
    for fmt, path in files.items():
        floor, rows = timed(lambda p=path: pyarrow_read(p), repeat=3)
        logger.info("%s: pyarrow read %.2fs", fmt, floor)
        results.append({"format": fmt, "path": "pyarrow read (floor)", "seconds": floor, "rows": rows,
                        "ratio": 1.0, "size_mb": path.stat().st_size / 2**20})
        for engine in engines:
            out = work / f"stats-{fmt}-{engine}.pb"
            seconds, meta = timed(lambda p=path, e=engine, o=out: runtime.run(
                output_path=str(o), data_uri=str(p), engine=e, beam_pipeline_options=args.beam_option))
            logger.info("%s: %s %.2fs (%d rows)", fmt, engine, seconds, meta["rows"])
            results.append({"format": fmt, "path": f"{engine} (compute_statistics)", "seconds": seconds,
                            "rows": meta["rows"], "ratio": seconds / floor,
                            "size_mb": path.stat().st_size / 2**20})

    lines = [
        "# Statistics benchmark: TFDV in memory vs Beam DirectRunner vs pyarrow read",
        "",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        f"- versions: tensorflow-data-validation {tfdv.__version__}, apache-beam {apache_beam.__version__},"
        f" pyarrow {pyarrow.__version__}",
        f"- command: `{' '.join(['bash scripts/in-runtime.sh python bench/statistics.py', *sys.argv[1:]])}`",
        f"- data: {args.rows:,} rows x {FLOATS + INTS + STRINGS} columns ({FLOATS} float, {INTS} int, "
        f"{STRINGS} string categories; 2-3% missing in floats and strings)",
        f"- Beam options: {args.beam_option or ['--runner=DirectRunner (default)']}",
        "- floor: best of 3 reads; engines: one run each, through compute_statistics' runtime.run",
        "",
        "ratio = seconds / pyarrow read seconds for the same file.",
        "",
        "| format | file MiB | path | seconds | rows/s | ratio vs read |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r['format']} | {r['size_mb']:.0f} | {r['path']} | {r['seconds']:.2f} | "
                     f"{r['rows'] / r['seconds']:,.0f} | {r['ratio']:.1f}x |")
    by = {(r["format"], r["path"].split(" ")[0]): r["seconds"] for r in results}
    lines.append("")
    for fmt in formats:
        if (fmt, "beam") in by and (fmt, "in_memory") in by:
            ratio = by[(fmt, "beam")] / by[(fmt, "in_memory")]
            lines.append(f"- {fmt}: Beam DirectRunner / in memory = {ratio:.1f}x")
    markdown = "\n".join(lines) + "\n"
    sys.stdout.write(markdown)
    if args.output:
        Path(args.output).write_text(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
