"""compute_statistics on real files with real TFDV: both engines, CSV and Parquet, bad input."""

import pytest
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import statistics_pb2

from components.compute_statistics import runtime
from components.make_demo_data import runtime as demo
from components.tfdv_io import DataReadError

STRING = statistics_pb2.FeatureNameStatistics.STRING
INT = statistics_pb2.FeatureNameStatistics.INT


def features(stats) -> dict:
    return {f.path.step[0]: f for f in stats.datasets[0].features}


def compute(tmp_path, data_uri, **kwargs):
    out = tmp_path / "stats.pb"
    metadata = runtime.run(output_path=str(out), data_uri=str(data_uri), **kwargs)
    return tfdv.load_stats_binary(str(out)), metadata


@pytest.fixture(scope="module")
def demo_frame():
    return demo.generate(1500, seed=0)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_in_memory_and_beam_give_comparable_statistics(tmp_path, demo_frame, suffix):
    path = demo.write(demo_frame, tmp_path / f"data{suffix}")
    fast, fast_meta = compute(tmp_path, path, engine="in_memory")
    beam, beam_meta = compute(tmp_path, path, engine="beam")
    assert (fast_meta["engine"], beam_meta["engine"]) == ("in_memory", "beam")
    assert fast.datasets[0].num_examples == beam.datasets[0].num_examples == 1500
    assert fast_meta["rows"] == beam_meta["rows"] == 1500
    a, b = features(fast), features(beam)
    assert sorted(a) == sorted(b) == sorted(demo_frame.columns)
    assert {n: f.type for n, f in a.items()} == {n: f.type for n, f in b.items()}
    # An int column with holes stays INT on both paths, and the missing count agrees.
    assert a["total_charges"].num_stats.common_stats.num_missing == (
        b["total_charges"].num_stats.common_stats.num_missing
    ) == demo_frame["total_charges"].isna().sum()
    assert a["age"].num_stats.mean == pytest.approx(b["age"].num_stats.mean)


def test_int_column_with_holes_stays_int_in_memory(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("area,x\n" + "1,0.5\n,0.5\n3,0.5\n4,0.5\n" * 50)
    stats, _ = compute(tmp_path, path, engine="in_memory")
    assert features(stats)["area"].type == INT
    assert features(stats)["area"].num_stats.common_stats.num_missing == 50


@pytest.mark.parametrize("engine", ["in_memory", "beam"])
def test_mixed_type_column_comes_through_as_strings(tmp_path, demo_frame, engine):
    frame = demo_frame.copy()
    frame["age"] = frame["age"].astype(object)
    frame.loc[frame.index[-200:], "age"] = "25 years"  # after a long run of ints
    path = tmp_path / "mixed.csv"
    frame.to_csv(path, index=False)
    stats, _ = compute(tmp_path, path, engine=engine)
    age = features(stats)["age"]
    assert age.type == STRING
    assert "25 years" in {v.value for v in age.string_stats.top_values}


def test_auto_engine_chooses_by_file_size(tmp_path, demo_frame):
    path = demo.write(demo_frame, tmp_path / "data.parquet")
    _, small = compute(tmp_path, path, engine="auto", in_memory_max_mb=1)
    _, large = compute(tmp_path, path, engine="auto", in_memory_max_mb=0)
    assert (small["engine"], large["engine"]) == ("in_memory", "beam")
    assert runtime.choose_engine("auto", 5 * 2**20, 4) == "beam"
    assert runtime.choose_engine("in_memory", 5 * 2**30, 4) == "in_memory"


def test_beam_takes_pipeline_options_as_flags(tmp_path, demo_frame):
    path = demo.write(demo_frame.head(200), tmp_path / "data.csv")
    stats, meta = compute(
        tmp_path, path, engine="beam",
        beam_pipeline_options=["--runner=DirectRunner", "--direct_num_workers=1"],
    )
    assert meta["engine"] == "beam" and stats.datasets[0].num_examples == 200
    with pytest.raises(ValueError, match="list of flags"):
        compute(tmp_path, path, engine="beam", beam_pipeline_options="--runner=DirectRunner")
    with pytest.raises(ValueError, match="temp_location"):
        compute(tmp_path, path, engine="beam", beam_pipeline_options=["--runner=DataflowRunner"])


@pytest.mark.parametrize("engine", ["in_memory", "beam"])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_categorical_columns_are_summarised_as_categories(tmp_path, demo_frame, engine, suffix):
    path = demo.write(demo_frame, tmp_path / f"data{suffix}")
    stats, _ = compute(tmp_path, path, engine=engine, categorical_columns=["contract_type"])
    contract = features(stats)["contract_type"]
    assert contract.type == INT
    assert contract.string_stats.unique == 3
    assert {v.value for v in contract.string_stats.top_values} == {"0", "1", "2"}
    assert features(stats)["age"].HasField("num_stats")


def test_metadata_and_artifact_path_without_extension(tmp_path, demo_frame):
    artifact = tmp_path / "data"  # a KFP artifact written without an extension: sniffed
    demo_frame.head(100).to_parquet(artifact, index=False)
    out = tmp_path / "stats.pb"
    meta = runtime.run(output_path=str(out), data_path=str(artifact))
    assert meta["format"] == "parquet" and meta["rows"] == 100 and meta["engine"] == "in_memory"
    assert meta["features"] == len(demo_frame.columns)
    assert tfdv.load_stats_binary(str(out)).datasets[0].name == str(artifact)


def test_chicago_taxi_sparse_columns(tmp_path, datasets_dir):
    stats, meta = compute(tmp_path, datasets_dir / "chicago_taxi" / "data.csv")
    assert meta["rows"] == 15002
    taxi = features(stats)
    tract = taxi["pickup_census_tract"]
    assert tract.num_stats.common_stats.num_missing > 0.9 * 15002
    assert taxi["company"].type == STRING and taxi["trip_start_hour"].type == INT


@pytest.mark.parametrize("engine", ["in_memory", "beam"])
def test_empty_file_is_a_clear_error(tmp_path, engine):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataReadError, match=r"empty\.csv.*is empty"):
        compute(tmp_path, empty, engine=engine)
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b,c\n")
    with pytest.raises(DataReadError, match=r"header\.csv.*no rows"):
        compute(tmp_path, header_only, engine=engine)


def test_file_that_is_not_csv_or_parquet_is_a_clear_error(tmp_path):
    json_file = tmp_path / "data.json"
    json_file.write_text('{"a": 1}')
    with pytest.raises(DataReadError, match=r"data\.json.*not CSV or Parquet"):
        compute(tmp_path, json_file)
    fake_parquet = tmp_path / "fake.parquet"
    fake_parquet.write_text("a,b\n1,2\n")
    with pytest.raises(DataReadError, match=r"fake\.parquet.*not a Parquet file"):
        compute(tmp_path, fake_parquet)
    binary_csv = tmp_path / "binary.csv"
    binary_csv.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataReadError, match=r"binary\.csv.*binary data"):
        compute(tmp_path, binary_csv)


def test_missing_uri_is_a_clear_error(tmp_path):
    with pytest.raises(DataReadError, match=r"nowhere\.csv' does not exist"):
        compute(tmp_path, tmp_path / "nowhere.csv")
    with pytest.raises(ValueError, match="data is required"):
        runtime.run(output_path=str(tmp_path / "s.pb"))
    with pytest.raises(ValueError, match="not both"):
        runtime.run(output_path=str(tmp_path / "s.pb"), data_path="a.csv", data_uri="b.csv")
    with pytest.raises(ValueError, match="engine must be one of"):
        runtime.run(output_path=str(tmp_path / "s.pb"), data_uri="a.csv", engine="spark")
