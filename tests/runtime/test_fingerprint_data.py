"""fingerprint_data: the data's identity follows its content (local) or its object version
(S3/MinIO, on a real S3-compatible server), never its name."""

import pytest

from components import uris
from components.fingerprint_data import runtime


def test_local_file_overwritten_in_place_changes_the_fingerprint(tmp_path):
    data = tmp_path / "latest" / "train.csv"
    data.parent.mkdir()
    data.write_bytes(b"a,b\n1,2\n")
    day1 = runtime.run(data_uri=str(data))
    data.write_bytes(b"a,b\n1,2\n")  # the same bytes rewritten: same data
    assert runtime.run(data_uri=str(data))["fingerprint"] == day1["fingerprint"]
    data.write_bytes(b"a,b\n1,3\n")  # same size, other content
    day2 = runtime.run(data_uri=str(data))
    assert day2["fingerprint"] != day1["fingerprint"]
    assert day1["method"] == "sha256" and day1["size_bytes"] == 8
    assert day2["data_uri"] == str(data) and not day2["snapshot"]


def test_local_folder_fingerprint_covers_every_file(tmp_path):
    (tmp_path / "part-0.parquet").write_bytes(b"zero")
    (tmp_path / "part-1.parquet").write_bytes(b"one")
    before = runtime.run(data_uri=str(tmp_path))["fingerprint"]
    (tmp_path / "part-1.parquet").write_bytes(b"uno")
    assert runtime.run(data_uri=str(tmp_path))["fingerprint"] != before


@pytest.mark.parametrize("scheme", ["s3", "minio"])
def test_object_overwritten_in_place_changes_the_fingerprint(s3_env, scheme):
    uri = f"{scheme}://{s3_env}/churn/latest/train.csv"
    uris.write_bytes(uri, b"a,b\n1,2\n")
    day1 = runtime.run(data_uri=uri)
    uris.write_bytes(uri, b"a,b\n1,2\n")
    assert runtime.run(data_uri=uri)["fingerprint"] == day1["fingerprint"]
    uris.write_bytes(uri, b"a,b\n1,3\n")
    day2 = runtime.run(data_uri=uri)
    assert day1["method"] == "etag" and day1["size_bytes"] == 8
    assert day2["fingerprint"] != day1["fingerprint"]


def test_snapshot_is_content_addressed_and_immutable(tmp_path, s3_env):
    uri = f"minio://{s3_env}/churn/latest/train.csv"
    snapshots = f"s3://{s3_env}/snapshots"
    uris.write_bytes(uri, b"a\n1\n")
    first = runtime.run(data_uri=uri, snapshot_uri=snapshots)
    assert first["snapshot"] and first["data_uri"].startswith(snapshots + "/etag-")
    assert first["source_uri"] == uri
    uris.write_bytes(uri, b"a\n2\n")
    second = runtime.run(data_uri=uri, snapshot_uri=snapshots)
    assert second["data_uri"] != first["data_uri"]
    assert uris.read_bytes(first["data_uri"]) == b"a\n1\n"  # day 1's copy is untouched
    assert uris.read_bytes(second["data_uri"]) == b"a\n2\n"


def test_missing_data_is_a_clear_error(tmp_path, s3_env):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        runtime.run(data_uri=str(tmp_path / "absent.csv"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        runtime.run(data_uri=f"s3://{s3_env}/absent.csv")
    with pytest.raises(ValueError, match="data_uri is required"):
        runtime.run(data_uri=" ")
