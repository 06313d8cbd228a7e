"""A real component through kfp.local's DockerRunner in the runtime image: host SDK, image,
executor and artifacts, end to end."""

from pathlib import Path

from components import make_demo_data
from launch import local


def test_component_runs_in_the_runtime_image(tmp_path):
    local.init(tmp_path / "root")
    task = make_demo_data(rows=120, seed=5, scenario="type_change", file_format="parquet")
    artifact = task.outputs["data"]
    data = Path(artifact.path)
    assert data.suffix == ".parquet"
    assert data.read_bytes()[:4] == b"PAR1"  # a real Parquet file, written by the container
    assert artifact.metadata["rows"] == 120
    assert artifact.metadata["scenario"] == "type_change"
    assert "age" in artifact.metadata["columns"]
