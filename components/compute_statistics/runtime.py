"""TFDV statistics over a CSV or Parquet dataset: in memory when it fits, Apache Beam otherwise.

Both engines give the same statistics for the same file (same examples, features and types):
the in-memory engine reads with pyarrow and hands TFDV the Arrow columns directly
(``tfdv_io.table_statistics``: what ``tfdv.generate_statistics_from_dataframe`` gives, without
the pandas round trip, on every core); the Beam engine runs ``tfdv.generate_statistics_from_csv``
for CSV and a ``ReadFromParquetBatched | GenerateStatistics`` pipeline for Parquet (the same
record batches as in memory), on whatever runner the pipeline options name (DirectRunner by
default; DataflowRunner, FlinkRunner, SparkRunner).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import uuid

from components import interface, tfdv_io
from components.tfdv_io import DataReadError

logger = logging.getLogger(__name__)

ENGINES = ("auto", "in_memory", "beam")
_LOCAL_RUNNERS = ("DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner")

__all__ = ["DataReadError", "StatisticsError", "choose_engine", "run"]


class StatisticsError(Exception):
    """Statistics could not be computed (e.g. the Beam pipeline failed)."""


@interface.defaults_from(__file__)
def run(
    *,
    output_path: str,
    data_path: str = "",
    data_uri, data_fingerprint, engine, in_memory_max_mb, beam_pipeline_options, categorical_columns,
) -> dict:
    """Computes statistics of one dataset and writes them to ``output_path``.

    Parameters are documented on the component (component.py). Runners other than the
    DirectRunner need ``--temp_location`` in ``beam_pipeline_options``: the workers write the
    statistics there, and they are read back.

    Args:
        output_path: Where the binary ``DatasetFeatureStatisticsList`` proto goes.
        data_path: Local path of the dataset artifact (exclusive with ``data_uri``).

    Returns:
        Artifact metadata: data_fingerprint, rows, engine, format, features, bytes, seconds,
        data_uri.

    Raises:
        ValueError: a bad argument.
        DataReadError: the data is missing, empty or not CSV/Parquet.
        StatisticsError: the Beam pipeline failed.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if in_memory_max_mb < 0:
        raise ValueError(f"in_memory_max_mb must be >= 0, got {in_memory_max_mb}")
    beam_pipeline_options = _check_options(beam_pipeline_options)
    categorical_columns = [str(c) for c in categorical_columns or ()]
    source = tfdv_io.one_source(data_path, data_uri, "data")

    data = tfdv_io.locate_data(source)
    chosen = choose_engine(engine, data.size, in_memory_max_mb)
    options = _stats_options(categorical_columns)
    logger.info("statistics of %s (%s, %d bytes) with engine %s", source, data.format, data.size, chosen)
    started = time.perf_counter()
    if chosen == "in_memory":
        stats = _in_memory(data, options)
    else:
        stats = _beam(data, options, beam_pipeline_options)
    seconds = time.perf_counter() - started
    if not stats.datasets or stats.datasets[0].num_examples == 0:
        raise DataReadError(f"data file {source!r} has no rows")
    dataset = stats.datasets[0]
    dataset.name = source
    unknown = sorted(set(categorical_columns) - {f.path.step[0] for f in dataset.features if f.path.step})
    if unknown:
        logger.warning("categorical_columns not in the data: %s", ", ".join(unknown))

    with open(output_path, "wb") as handle:
        handle.write(stats.SerializeToString())
    logger.info("%d rows, %d features in %.2fs (%s)", dataset.num_examples, len(dataset.features),
                seconds, chosen)
    return {
        "data_fingerprint": data_fingerprint,
        "rows": int(dataset.num_examples),
        "engine": chosen,
        "format": data.format,
        "features": len(dataset.features),
        "bytes": int(data.size),
        "seconds": round(seconds, 3),
        "data_uri": source,
        "encoding": "binary DatasetFeatureStatisticsList",
    }


def choose_engine(engine: str, size_bytes: int, in_memory_max_mb: int) -> str:
    """The engine to use: ``engine`` itself, or for "auto" in_memory up to the size limit."""
    if engine != "auto":
        return engine
    return "in_memory" if size_bytes <= in_memory_max_mb * 1024 * 1024 else "beam"


def _check_options(options) -> list[str]:
    if isinstance(options, str):
        raise ValueError(f"beam_pipeline_options must be a list of flags, got the string {options!r}")
    options = list(options or ())
    bad = [o for o in options if not isinstance(o, str) or not o.startswith("--")]
    if bad:
        raise ValueError(f"beam_pipeline_options must be flags like '--runner=DirectRunner', got {bad!r}")
    return options


def _stats_options(categorical_columns: list[str]):
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import schema_pb2

    if not categorical_columns:
        return tfdv.StatsOptions()
    hints = schema_pb2.Schema()
    for name in categorical_columns:
        hints.feature.add(name=name, type=schema_pb2.INT).int_domain.is_categorical = True
    return tfdv.StatsOptions(schema=hints)


def _in_memory(data: tfdv_io.DataFile, options):
    return tfdv_io.table_statistics(tfdv_io.read_table(data), options)


def _beam(data: tfdv_io.DataFile, options, flags: list[str]):
    import apache_beam as beam
    import tensorflow_data_validation as tfdv
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    if not any(f.startswith("--runner") for f in flags):
        flags = [*flags, "--runner=DirectRunner"]
    pipeline_options = PipelineOptions(flags)
    runner = pipeline_options.view_as(StandardOptions).runner or "DirectRunner"
    workdir = None
    if runner in _LOCAL_RUNNERS:
        workdir = tempfile.mkdtemp(prefix="tfdv-stats-")
        output = os.path.join(workdir, "statistics.pb")
    else:
        temp = pipeline_options.get_all_options().get("temp_location")
        if not temp:
            raise ValueError(f"runner {runner} needs --temp_location (a bucket path the workers can write)")
        output = f"{temp.rstrip('/')}/tfdv-statistics-{uuid.uuid4().hex}/statistics.pb"
    if not data.is_local and runner in _LOCAL_RUNNERS:
        logger.info("reading %s through Beam's filesystems", data.uri)
    try:
        if data.format == "csv":
            return tfdv.generate_statistics_from_csv(
                data.uri, output_path=output, stats_options=options, pipeline_options=pipeline_options
            )
        with beam.Pipeline(options=pipeline_options) as pipeline:
            _ = (
                pipeline
                | "ReadParquet" >> beam.io.ReadFromParquetBatched(data.uri)
                | "ToRecordBatches" >> beam.FlatMap(_record_batches)
                | "GenerateStatistics" >> tfdv.GenerateStatistics(options)
                | "WriteStatistics" >> tfdv.WriteStatisticsToBinaryFile(output)
            )
        return tfdv_io.load_statistics(output)
    except (DataReadError, ValueError):
        raise
    except Exception as exc:
        raise StatisticsError(
            f"the Beam statistics pipeline ({runner}) failed on {data.uri!r}: {exc}"
        ) from exc
    finally:
        if workdir:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)


def _record_batches(table):
    """A Parquet batch as the record batch TFDV expects, built as the in-memory engine's."""
    if table.num_rows:
        yield tfdv_io.record_batch(table)
