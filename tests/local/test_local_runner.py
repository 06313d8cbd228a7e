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


def test_a_local_run_can_leave_out_the_retries_and_nothing_else():
    def tasks(pipeline) -> dict:  # every task of every DAG (gates and the exit handler nest them)
        spec = pipeline.pipeline_spec
        dags = [spec.root.dag, *(c.dag for c in spec.components.values() if c.HasField("dag"))]
        return {name: task for dag in dags for name, task in dag.tasks.items()}

    with_retries, without = local.load_pipeline("training"), local.load_pipeline("training", retries=False)
    assert tasks(with_retries)["resolve-inputs"].HasField("retry_policy")
    assert not any(task.HasField("retry_policy") for task in tasks(without).values())
    for name, task in tasks(with_retries).items():
        task.ClearField("retry_policy")
        assert task == tasks(without)[name], name
    assert with_retries.platform_spec == without.platform_spec  # Kubeflow's second document kept
