"""components.uris: every scheme the platforms hand us, against real stores (a local folder, an
S3-compatible server for s3:// and KFP's minio://, a real MLflow server for runs:/)."""

import pytest

from components import run_records, tfdv_io, uris


@pytest.mark.parametrize("scheme", ["s3", "minio"])
def test_object_store_round_trip_and_listing(s3_env, scheme):
    folder = f"{scheme}://{s3_env}/v2/artifacts/training/run-1"
    uris.write_bytes(uris.join(folder, "a.txt"), b"alpha")
    uris.write_bytes(uris.join(folder, "sub/b.txt"), b"beta")
    assert uris.read_bytes(uris.join(folder, "a.txt")) == b"alpha"
    assert uris.exists(uris.join(folder, "sub/b.txt"))
    assert not uris.exists(uris.join(folder, "missing.txt"))
    assert [p.rsplit("/", 1)[-1] for p in uris.list_files(folder)] == ["a.txt", "b.txt"]


def test_minio_and_s3_name_the_same_objects(s3_env):
    uris.write_bytes(f"minio://{s3_env}/x/data.csv", b"a,b\n1,2\n")
    assert uris.read_bytes(f"s3://{s3_env}/x/data.csv") == b"a,b\n1,2\n"
    table = tfdv_io.read_table(tfdv_io.locate_data(f"minio://{s3_env}/x/data.csv"))
    assert table.column_names == ["a", "b"] and table.num_rows == 1


def test_run_records_on_minio(s3_env):
    record_dir = f"minio://{s3_env}/v2/artifacts/run-records/job-7"
    run_records.write(record_dir, "data-is-valid", {"passed": True})
    run_records.write(record_dir, "summary", {"state": "SUCCEEDED"})
    assert run_records.read_all(record_dir) == {
        "data-is-valid": {"passed": True},
        "summary": {"state": "SUCCEEDED"},
    }
    assert run_records.read_all(f"minio://{s3_env}/v2/artifacts/run-records/absent") == {}


def test_directory_upload_and_download(tmp_path, s3_env):
    source = tmp_path / "src"
    (source / "1" / "variables").mkdir(parents=True)
    (source / "1" / "saved_model.pb").write_bytes(b"pb")
    (source / "1" / "variables" / "v.index").write_bytes(b"idx")
    assert uris.upload_dir(str(source), f"s3://{s3_env}/models/m") == 2
    assert uris.download_dir(f"s3://{s3_env}/models/m", str(tmp_path / "dst")) == 2
    assert (tmp_path / "dst" / "1" / "variables" / "v.index").read_bytes() == b"idx"


def test_local_paths_and_file_urls(tmp_path):
    path = tmp_path / "f.bin"
    uris.write_bytes(str(path), b"1")
    assert uris.read_bytes(f"file://{path}") == b"1"
    assert uris.is_local(str(path)) and uris.is_local(f"file://{path}")
    assert not uris.is_local("minio://mlpipeline/v2/x")


def test_mlflow_artifacts_are_read_through_the_tracking_server(tmp_path, mlflow_server, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    mlflow.set_tracking_uri(mlflow_server)
    (tmp_path / "schema.pbtxt").write_text('feature { name: "a" type: INT }\n')
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "schema.pbtxt"), artifact_path="lineage")
    schema = tfdv_io.load_schema(f"runs:/{run.info.run_id}/lineage/schema.pbtxt")
    assert [f.name for f in schema.feature] == ["a"]


def test_mlflow_uri_without_a_tracking_uri_names_the_secret(monkeypatch):
    from components import registry

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    expected = "secret 'mlflow-tracking' with the key 'MLFLOW_TRACKING_URI'"
    with pytest.raises(registry.TrackingUriMissing, match=expected):
        uris.read_bytes("runs:/abc/lineage/schema.pbtxt")


def test_unknown_scheme_is_a_clear_error():
    with pytest.raises(uris.UriError, match="unknown scheme"):
        uris.filesystem_for("ftp://host/data.csv")
    with pytest.raises(tfdv_io.DataReadError, match="unknown scheme"):
        tfdv_io.locate_data("ftp://host/data.csv")


@pytest.mark.parametrize(
    ("given", "served"),
    [
        ("minio://mlpipeline/v2/artifacts/m", "s3://mlpipeline/v2/artifacts/m"),
        ("/gcs/bucket/models/m", "gs://bucket/models/m"),
        ("gs://bucket/m", "gs://bucket/m"),
    ],
)
def test_kserve_storage_uris(given, served):
    assert uris.for_kserve(given) == served


def test_kserve_cannot_read_local_or_proxied_mlflow_uris():
    for bad in ("/tmp/model", "mlflow-artifacts:/1/abc/artifacts/model"):
        with pytest.raises(uris.UriError, match="not one KServe can read"):
            uris.for_kserve(bad)
