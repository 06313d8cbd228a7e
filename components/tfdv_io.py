"""Reading data files and TFDV artifacts from artifact paths or URIs (every scheme of
``components.uri``: local, gs://, /gcs/, s3://, minio://, MLflow's runs:/ and models:/).

Shared by the data-validation components (compute_statistics, infer_schema, validate_data).
Also in-memory TFDV statistics of an Arrow table (``table_statistics``), without pandas.
Plain Python: imports pyarrow and TFDV lazily, never kfp.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from components import uris

logger = logging.getLogger(__name__)

TRAINING, SERVING = "TRAINING", "SERVING"
"""The schema environments: the label is required in TRAINING and absent in SERVING."""

_EXTENSIONS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


class DataReadError(ValueError):
    """An input (data file, statistics, schema) is missing, empty or not in a readable format."""


@dataclass(frozen=True)
class DataFile:
    """A located, non-empty input file."""

    uri: str  # what the user gave (artifact path or URI)
    path: str  # the path inside ``filesystem``
    filesystem: object  # pyarrow.fs.FileSystem
    size: int  # bytes
    format: str  # "csv" or "parquet"

    @property
    def is_local(self) -> bool:
        return uris.is_local(self.uri)


def one_source(path: str, uri: str, what: str, required: bool = True) -> str:
    """Returns the one given location of ``what`` (an artifact path or a URI).

    Raises ValueError when both are given, or when neither is and ``required``.
    """
    path, uri = (path or "").strip(), (uri or "").strip()
    if path and uri:
        raise ValueError(
            f"give {what} either as an artifact or as a URI, not both (artifact {path!r}, uri {uri!r})"
        )
    if required and not (path or uri):
        raise ValueError(f"{what} is required: pass the artifact or its URI")
    return path or uri


def filesystem_for(uri: str):
    """(pyarrow filesystem, path inside it) through the URI layer; failures are DataReadErrors."""
    try:
        return uris.filesystem_for(uri)
    except uris.UriError as exc:
        raise DataReadError(str(exc)) from exc


def read_bytes(uri: str, what: str = "input") -> bytes:
    """Reads a whole (small) file: statistics, schema. Missing or empty is a DataReadError."""
    filesystem, path = filesystem_for(uri)
    _require_file(filesystem, path, uri, what)
    try:
        with filesystem.open_input_stream(path) as stream:
            data = stream.read()
    except OSError as exc:
        raise DataReadError(f"cannot read {what} {uri!r}: {exc}") from exc
    if not data:
        raise DataReadError(f"{what} {uri!r} is empty")
    return data


def locate_data(uri: str) -> DataFile:
    """Checks that a data file exists, is not empty and is CSV or Parquet.

    The format comes from the extension (``.csv``, ``.parquet``/``.pq``); a file without an
    extension (a KFP artifact written by a component that did not name it) is sniffed: Parquet
    starts with ``PAR1``, anything else that is text is read as CSV.
    """
    filesystem, path = filesystem_for(uri)
    size = _require_file(filesystem, path, uri, "data file")
    if size == 0:
        raise DataReadError(f"data file {uri!r} is empty (0 bytes)")
    with filesystem.open_input_file(path) as handle:
        head = handle.read(4096)
    name = path.rstrip("/").rsplit("/", 1)[-1]
    suffix = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
    if suffix in _EXTENSIONS:
        fmt = _EXTENSIONS[suffix]
    elif suffix:
        raise DataReadError(
            f"data file {uri!r} is not CSV or Parquet (extension {suffix!r}); "
            "name it .csv or .parquet"
        )
    else:
        fmt = "parquet" if head.startswith(b"PAR1") else "csv"
    if fmt == "parquet" and not head.startswith(b"PAR1"):
        raise DataReadError(f"data file {uri!r} is named Parquet but is not a Parquet file")
    if fmt == "csv" and (b"\x00" in head or head.startswith(b"PAR1")):
        raise DataReadError(f"data file {uri!r} is named CSV but holds binary data, not CSV text")
    return DataFile(uri=uri, path=path, filesystem=filesystem, size=size, format=fmt)


def read_table(data: DataFile, *, allow_empty: bool = False):
    """Reads a CSV or Parquet file into a pyarrow Table with TFDV-friendly column types.

    CSV columns get the types TFDV's own CSV decoder would give them: int64 when every
    non-empty value is an integer, float64 when every one is a number, string otherwise (an
    int column with a "25 years" in it is a string column, not a crash). Parquet columns keep
    their types, normalised by ``normalize``. A header without rows is an error unless
    ``allow_empty`` (the caller then says what an empty table means for it).
    """
    import pyarrow as pa

    try:
        if data.format == "parquet":
            import pyarrow.parquet as pq

            with data.filesystem.open_input_file(data.path) as handle:
                table = pq.read_table(handle)
        else:
            table = _read_csv(data)
    except DataReadError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataReadError(f"cannot read {data.format.upper()} file {data.uri!r}: {exc}") from exc
    if table.num_columns == 0:
        raise DataReadError(f"data file {data.uri!r} has no columns")
    if table.num_rows == 0 and not allow_empty:
        raise DataReadError(f"data file {data.uri!r} has a header but no rows")
    return normalize(table)


def _read_csv(data: DataFile):
    import pyarrow.csv as pcsv

    # pyarrow's read_csv settles each column's type over the whole file (a "25 years" after a
    # million ints makes the column string). Only the empty field is missing, as in TFDV.
    convert = pcsv.ConvertOptions(
        null_values=[""],
        strings_can_be_null=True,
        true_values=[],  # "true"/"false" stay strings, as in TFDV's CSV decoder
        false_values=[],
        timestamp_parsers=[],
    )
    with data.filesystem.open_input_stream(data.path) as stream:
        return pcsv.read_csv(stream, convert_options=convert)


def normalize(table):
    """Casts a Table's columns to the types TFDV summarises: int64, float64, string.

    bool -> int64 (0/1), timestamps -> int64 seconds since the epoch, dates/times/decimals ->
    strings/floats, all-null columns -> string, dictionaries -> their values. Nested columns
    (lists, structs) are dropped with a warning: the components handle flat tables.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    columns, names = [], []
    for name, column in zip(table.column_names, table.columns, strict=True):
        t = column.type
        if pa.types.is_dictionary(t):
            column, t = column.cast(t.value_type), t.value_type
        if pa.types.is_integer(t) or pa.types.is_boolean(t):
            column = column.cast(pa.int64())
        elif pa.types.is_floating(t) or pa.types.is_decimal(t):
            column = column.cast(pa.float64())
        elif pa.types.is_timestamp(t):
            column = pc.cast(column.cast(pa.timestamp("s", tz=t.tz), safe=False), pa.int64())
        elif pa.types.is_null(t) or pa.types.is_date(t) or pa.types.is_time(t):
            column = column.cast(pa.string())
        elif pa.types.is_large_string(t) or pa.types.is_string_view(t):
            column = column.cast(pa.string())
        elif pa.types.is_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
            pass
        else:
            logger.warning("column %r has type %s, which statistics do not cover: dropped", name, t)
            continue
        columns.append(column)
        names.append(name)
    return pa.table(columns, names=names)


def record_batch(table):
    """A table as the RecordBatch TFDV's statistics generators take, built in Arrow.

    Each column becomes a LargeList of one value per row, null where the value is missing,
    of the types TFDV's own DataFrame path produces (``generate_statistics_from_dataframe``
    through pandas): int64 (INT, nulls included), float64 (FLOAT), large_binary (STRING).
    The table is ``normalize``d first (booleans and timestamps become int64).
    """
    import pyarrow as pa

    table = normalize(table)
    return pa.RecordBatch.from_arrays([_tfdv_column(c) for c in table.columns], table.column_names)


def _tfdv_column(column):
    """One normalised column as TFDV's list array: [[v0], [v1], null, ...]."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_floating(column.type):
        # pandas holds a missing float as NaN, so on the DataFrame path every NaN (also a NaN
        # stored in Parquet) is a missing value; keep that meaning.
        if pc.any(pc.is_nan(column)).as_py():
            column = pc.if_else(pc.is_nan(column), None, column)
    elif not pa.types.is_integer(column.type):
        column = column.cast(pa.large_binary())  # 64-bit offsets: chunks combine safely
    array = column.combine_chunks()
    if array.null_count == 0:
        return pa.LargeListArray.from_arrays(pa.array(np.arange(len(array) + 1)), array)
    offsets = np.zeros(len(array) + 1, np.int64)
    np.cumsum(array.is_valid().to_numpy(zero_copy_only=False), out=offsets[1:])
    return pa.LargeListArray.from_arrays(pa.array(offsets), array.drop_null(), mask=array.is_null())


def table_statistics(table, options=None, *, threads: int | None = None):
    """TFDV statistics of an Arrow table, computed in this process from Arrow (no pandas).

    The same DatasetFeatureStatisticsList as ``tfdv.generate_statistics_from_dataframe`` of
    the table read into pandas with nullable ints (tests/runtime/test_tfdv_io.py checks it).
    When every feature's statistics depend on its own column only (no example weights, no
    custom, semantic-domain, sparse, weighted or natural-language generators), the columns are
    converted and summarised on ``threads`` threads (default: the CPUs this process may use)
    and the results merged: Arrow, numpy and TFDV's C++ sketches release the GIL, so this uses
    the cores, and each feature's statistics are exactly those of the one-pass computation.

    Args:
        table: A pyarrow Table of flat columns (as ``read_table`` returns).
        options: ``tfdv.StatsOptions``; TFDV's defaults when None.
        threads: Worker threads; 1 computes everything in one pass.

    Returns:
        A DatasetFeatureStatisticsList with one dataset.
    """
    import pyarrow as pa
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.statistics import stats_impl
    from tfx_bsl.statistics import merge_util

    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    options = options or tfdv.StatsOptions()
    threads = min(threads or _usable_cpus(), table.num_columns)
    if threads <= 1 or not _per_feature(options):
        return stats_impl.generate_statistics_in_memory(record_batch(table), options)
    table = normalize(table)

    def one_column(index: int):
        column = pa.RecordBatch.from_arrays([_tfdv_column(table.column(index))], [table.column_names[index]])
        return stats_impl.generate_statistics_in_memory(column, options)

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tfdv-stats") as pool:
        per_column = list(pool.map(one_column, range(table.num_columns)))
    # Merged in column order, so the features keep the order of the one-pass result.
    return merge_util.merge_dataset_feature_statistics_list(per_column)


def dataframe_statistics(table, options=None):
    """The same statistics through pandas and ``tfdv.generate_statistics_from_dataframe``.

    The path ``table_statistics`` replaced (several times slower, pandas objects for every
    string): the reference it is checked and benchmarked against. Nullable Int64 keeps an int
    column with holes an INT feature (plain pandas would make it float).
    """
    import pandas as pd
    import pyarrow as pa
    import tensorflow_data_validation as tfdv

    frame = normalize(table).to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    return tfdv.generate_statistics_from_dataframe(frame, stats_options=options or tfdv.StatsOptions())


def _per_feature(options) -> bool:
    """Whether each feature's statistics need its own column only (then columns can split)."""
    schema = options.schema
    cross_feature_schema = schema is not None and (
        schema.sparse_feature
        or schema.weighted_feature
        or any(f.WhichOneof("domain_info") == "natural_language_domain" for f in schema.feature)
        or any(f.HasField("struct_domain") for f in schema.feature)
    )
    return not (
        options.generators
        or options.example_weight_map.all_weight_features()
        or options.enable_semantic_domain_stats
        or options.feature_allowlist
        or cross_feature_schema
    )


def _usable_cpus() -> int:
    """CPUs this process may use: its affinity, bounded by a cgroup v2 quota (a pod's limit)."""
    cpus = len(os.sched_getaffinity(0))
    try:
        with open("/sys/fs/cgroup/cpu.max") as handle:
            quota, period = handle.read().split()
        if quota != "max":
            cpus = min(cpus, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 limit to honour
    return cpus


def load_statistics(uri: str, what: str = "statistics"):
    """Loads a DatasetFeatureStatisticsList: binary proto, TFRecord of it, or text proto."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    data = read_bytes(uri, what)
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    try:
        stats.ParseFromString(data)
        if stats.datasets:
            return stats
    except Exception:  # noqa: BLE001 - not a binary proto: try the other encodings
        pass
    from pyarrow import fs

    filesystem, local = filesystem_for(uri)  # MLflow URIs come back downloaded (once, cached)
    if not isinstance(filesystem, fs.LocalFileSystem):
        raise DataReadError(f"{what} {uri!r} is not a binary DatasetFeatureStatisticsList proto")
    import tensorflow_data_validation as tfdv

    try:
        stats = tfdv.load_statistics(local)  # TFRecord, then text proto
    except Exception as exc:
        raise DataReadError(
            f"{what} {uri!r} is not a DatasetFeatureStatisticsList (binary, TFRecord or text proto)"
        ) from exc
    if not stats.datasets:
        raise DataReadError(f"{what} {uri!r} holds no datasets")
    return stats


def load_schema(uri: str, what: str = "schema"):
    """Loads a tensorflow_metadata Schema from a text proto (or, failing that, a binary one)."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    data = read_bytes(uri, what)
    schema = schema_pb2.Schema()
    try:
        text_format.Parse(data.decode("utf-8"), schema)
    except (UnicodeDecodeError, text_format.ParseError) as text_error:
        try:
            schema.ParseFromString(data)
        except Exception as exc:
            raise DataReadError(f"{what} {uri!r} is not a Schema text proto: {text_error}") from exc
    if not schema.feature:
        raise DataReadError(f"{what} {uri!r} declares no features")
    return schema


def schema_text(schema) -> str:
    from google.protobuf import text_format

    return text_format.MessageToString(schema)


def _require_file(filesystem, path: str, uri: str, what: str) -> int:
    from pyarrow import fs

    try:
        info = filesystem.get_file_info(path)
    except OSError as exc:
        raise DataReadError(f"cannot reach {what} {uri!r}: {exc}") from exc
    if info.type == fs.FileType.NotFound:
        raise DataReadError(f"{what} {uri!r} does not exist")
    if info.type == fs.FileType.Directory:
        raise DataReadError(f"{what} {uri!r} is a directory, expected a file")
    return info.size or 0
