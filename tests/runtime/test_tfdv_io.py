"""tfdv_io.table_statistics (Arrow straight into TFDV) against TFDV's pandas path, on real files.

The in-memory statistics engine used to go through pandas and
``tfdv.generate_statistics_from_dataframe`` (``tfdv_io.dataframe_statistics`` keeps that path as
the reference). The Arrow path must give the very same DatasetFeatureStatisticsList, proto for
proto, with no tolerance: both feed TFDV's generators the same values, so every count, mean,
quantile, histogram and top value agrees exactly, in one pass or split over threads.
"""

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import statistics_pb2

from components import tfdv_io
from components.compute_statistics import runtime
from components.make_demo_data import runtime as demo

INT = statistics_pb2.FeatureNameStatistics.INT
FLOAT = statistics_pb2.FeatureNameStatistics.FLOAT
STRING = statistics_pb2.FeatureNameStatistics.STRING
ROWS = 3000


def mixed_table(rows: int = ROWS, seed: int = 0) -> pa.Table:
    """Every column type a Parquet file hands us, with holes where a real file has them."""
    rng = np.random.default_rng(seed)
    holes = rng.uniform(size=rows) < 0.1
    floats = rng.normal(50, 15, rows).round(2)
    floats[rng.uniform(size=rows) < 0.05] = np.nan  # NaN stored as a value, not a null
    floats[:3] = [np.inf, -np.inf, 0.0]
    seconds = 1_600_000_000 + rng.integers(0, 86_400 * 365, rows)
    words = np.array(["north", "south", "east", "", "zürich"], dtype=object)[rng.integers(0, 5, rows)]
    return pa.table({
        "int_with_nulls": pa.array(rng.poisson(4, rows), mask=holes),
        "int_dense": pa.array(rng.integers(-5, 1000, rows)),
        "int32_small": pa.array(rng.integers(0, 3, rows).astype(np.int32)),
        "float_nan_and_nulls": pa.array(floats, mask=rng.uniform(size=rows) < 0.05),
        "float32": pa.array(rng.lognormal(1, 1, rows).astype(np.float32)),
        "string_with_nulls": pa.array(words, mask=holes),
        "category": pa.array(words).dictionary_encode(),
        "flag": pa.array(rng.uniform(size=rows) < 0.3, mask=rng.uniform(size=rows) < 0.02),
        "signup": pa.array(seconds * 1_000_000, pa.timestamp("us", tz="UTC"), mask=holes),
        "local_time": pa.array(seconds, pa.timestamp("s")),
        "day": pa.array(seconds // 86_400, pa.int32()).cast(pa.date32()),
        "never_filled": pa.nulls(rows),
    })


def assert_same_as_pandas_path(table, options=None):
    reference = tfdv_io.dataframe_statistics(table, options)
    for threads in (1, 4):
        assert tfdv_io.table_statistics(table, options, threads=threads) == reference, (
            f"Arrow path with {threads} thread(s) differs from the pandas path"
        )
    return reference


def features(stats) -> dict:
    return {f.path.step[0]: f for f in stats.datasets[0].features}


def read(path):
    return tfdv_io.read_table(tfdv_io.locate_data(str(path)))


def test_parquet_of_every_type_gives_the_pandas_paths_statistics(tmp_path):
    path = tmp_path / "mixed.parquet"
    pq.write_table(mixed_table(), path)
    stats = assert_same_as_pandas_path(read(path))

    by_name = features(stats)
    assert {name: f.type for name, f in by_name.items()} == {
        "int_with_nulls": INT, "int_dense": INT, "int32_small": INT, "float_nan_and_nulls": FLOAT,
        "float32": FLOAT, "string_with_nulls": STRING, "category": STRING, "flag": INT,
        "signup": INT, "local_time": INT, "day": STRING, "never_filled": STRING,
    }
    table = mixed_table()
    ints = by_name["int_with_nulls"].num_stats
    assert ints.common_stats.num_missing == table["int_with_nulls"].null_count
    # A NaN stored in Parquet is a missing value, as on the pandas path: no NaN is counted.
    floats = by_name["float_nan_and_nulls"].num_stats
    nan_or_null = np.isnan(table["float_nan_and_nulls"].to_numpy(zero_copy_only=False)).sum()
    assert floats.common_stats.num_missing == nan_or_null
    assert (floats.max, floats.min) == (np.inf, -np.inf)
    assert by_name["signup"].num_stats.min >= 1_600_000_000  # seconds since the epoch
    assert by_name["flag"].num_stats.max == 1
    assert by_name["never_filled"].string_stats.common_stats.num_non_missing == 0
    assert "zürich" in {v.value for v in by_name["string_with_nulls"].string_stats.top_values}


def test_csv_and_categorical_hints_give_the_pandas_paths_statistics(tmp_path):
    frame = demo.generate(2000, seed=3)
    path = demo.write(frame, tmp_path / "churn.csv")
    options = runtime._stats_options(["contract_type", "support_calls"])
    stats = assert_same_as_pandas_path(read(path), options)
    contract = features(stats)["contract_type"]
    assert contract.type == INT and contract.string_stats.unique == 3
    assert features(stats)["total_charges"].num_stats.common_stats.num_missing == (
        frame["total_charges"].isna().sum()
    )


def test_chicago_taxi_as_csv_and_as_typed_parquet(tmp_path, datasets_dir):
    table = read(datasets_dir / "chicago_taxi" / "data.csv")
    assert_same_as_pandas_path(table)
    # The same rows as a Parquet file would type them: a timestamp, a boolean label.
    typed = table.set_column(
        table.column_names.index("trip_start_timestamp"), "trip_start_timestamp",
        table["trip_start_timestamp"].cast(pa.timestamp("s")),
    ).set_column(table.column_names.index("big_tipper"), "big_tipper", table["big_tipper"].cast(pa.bool_()))
    path = tmp_path / "taxi.parquet"
    pq.write_table(typed, path)
    stats = assert_same_as_pandas_path(read(path))
    taxi = features(stats)
    area = taxi["pickup_community_area"]
    assert area.type == INT
    assert area.num_stats.common_stats.num_missing == table["pickup_community_area"].null_count
    assert taxi["trip_start_timestamp"].type == INT and taxi["company"].type == STRING


def test_weighted_statistics_are_computed_in_one_pass(tmp_path):
    table = mixed_table(500).append_column("weight", pa.array(np.linspace(0.5, 2, 500)))
    options = tfdv.StatsOptions(weight_feature="weight")
    stats = assert_same_as_pandas_path(table, options)
    assert features(stats)["int_dense"].num_stats.HasField("weighted_numeric_stats")


def test_beam_parquet_batches_are_the_in_memory_batch(tmp_path):
    table = mixed_table(200)
    (batch,) = runtime._record_batches(table)
    assert batch.equals(tfdv_io.record_batch(table))
    assert pa.types.is_large_list(batch.schema.field("int_with_nulls").type)
    assert list(runtime._record_batches(table.slice(0, 0))) == []


def test_threads_must_be_positive():
    with pytest.raises(ValueError, match="threads must be >= 1, got 0"):
        tfdv_io.table_statistics(mixed_table(10), threads=0)


def test_csv_written_by_arrow_reads_back_to_the_same_statistics(tmp_path):
    table = mixed_table(1000).drop_columns(["category"])
    path = tmp_path / "mixed.csv"
    pcsv.write_csv(table, path)
    assert_same_as_pandas_path(read(path))
