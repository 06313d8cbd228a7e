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



def test_a_local_run_takes_the_model_of_the_in_task_training_branch():
    """kfp.local 2.17 cannot resolve a dsl.OneOf over artifacts; locally the model and eval
    data come from the one-worker branch (train-model) alone, the golden keeps both."""
    import yaml
    from google.protobuf import json_format

    def selected(spec: dict) -> dict[str, list[str]]:
        """DAG output artifact -> the tasks whose output it selects, for the branches' outputs."""
        return {
            key: [s["producerSubtask"] for s in value["artifactSelectors"]]
            for component in spec["components"].values()
            for key, value in component.get("dag", {}).get("outputs", {}).get("artifacts", {}).items()
            if "oneof" in key
        }

    golden = next(yaml.safe_load_all((local.PIPELINES_DIR / "training.yaml").read_text()))
    loaded = json_format.MessageToDict(local.load_pipeline("training").pipeline_spec)
    both, first = selected(golden), selected(loaded)
    assert len(both) == 2 and all(len(producers) == 2 for producers in both.values())  # model, eval_data
    assert first == {key: producers[:1] for key, producers in both.items()}
    tasks = {
        name: task for component in golden["components"].values()
        for name, task in component.get("dag", {}).get("tasks", {}).items()
    }
    for (producer,) in first.values():  # the branch whose DAG runs train-model in the task
        branch = golden["components"][tasks[producer]["componentRef"]["name"]]
        assert "train-model" in branch["dag"]["tasks"]
