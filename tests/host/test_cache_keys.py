"""Cache keys follow the data, not its name: in every compiled golden, no cached task reads a
pipeline parameter that names mutable data; each cached task that reads data takes the
location and the fingerprint from the uncached fingerprint-data step.

KFP and Vertex key a cached task on its component and its input values, so a cached task that
reads ``data_uri`` directly would reuse yesterday's result for today's file at the same URI.
"""

import re
from pathlib import Path

import pytest
import yaml

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
GOLDENS = sorted(p.stem for p in PIPELINES.glob("*.yaml") if p.name != "schedules.yaml")
MUTABLE_DATA = re.compile(r"(^|_)data_uri$")
"""Pipeline parameters that name data whose content may change behind the name."""


def dags(spec: dict):
    """(component name, dag) for the root and every sub-DAG."""
    yield "root", spec["root"]["dag"]
    for name, component in spec["components"].items():
        if "dag" in component:
            yield name, component["dag"]


def pipeline_parameter(spec: dict, dag_name: str, binding: dict) -> str | None:
    """The root pipeline parameter a task input is bound to, through any sub-DAG, else None."""
    name = binding.get("componentInputParameter")
    if name is None:
        return None
    if dag_name == "root":
        return name
    # Sub-DAG inputs are named pipelinechannel--<param> (a pipeline parameter) or
    # pipelinechannel--<task>-<output> (a task output passed into the branch).
    plain = name.removeprefix("pipelinechannel--")
    return plain if plain in spec["root"]["inputDefinitions"]["parameters"] else None


def cached_tasks(spec: dict):
    for dag_name, dag in dags(spec):
        for task_name, task in dag["tasks"].items():
            if task.get("cachingOptions", {}).get("enableCache"):
                yield dag_name, task_name, task


@pytest.mark.parametrize("name", GOLDENS)
def test_no_cached_task_reads_mutable_data_by_name(name):
    spec = yaml.safe_load((PIPELINES / f"{name}.yaml").read_text().split("\n---\n")[0])
    offenders = []
    for dag_name, task_name, task in cached_tasks(spec):
        for input_name, binding in task.get("inputs", {}).get("parameters", {}).items():
            parameter = pipeline_parameter(spec, dag_name, binding)
            if parameter and MUTABLE_DATA.search(parameter):
                offenders.append(f"{task_name}.{input_name} <- pipeline parameter {parameter}")
    assert offenders == [], "cached tasks keyed on a data URI string instead of its fingerprint"


@pytest.mark.parametrize("name", ["training", "training_vertex", "drift_retraining"])
def test_cached_data_readers_take_the_fingerprint(name):
    spec = yaml.safe_load((PIPELINES / f"{name}.yaml").read_text().split("\n---\n")[0])
    readers = [
        (task_name, task)
        for _, task_name, task in cached_tasks(spec)
        if "data_uri" in task.get("inputs", {}).get("parameters", {})
    ]
    assert {t.split("-2")[0] for t, _ in readers} >= {"check-data", "train-model"}
    for task_name, task in readers:
        parameters = task["inputs"]["parameters"]
        for input_name in ("data_uri", "data_fingerprint"):
            binding = parameters[input_name]
            producer = binding.get("taskOutputParameter", {}).get("producerTask") or binding.get(
                "componentInputParameter", ""
            )
            assert "resolve-inputs" in producer, f"{task_name}.{input_name} is bound to {binding}"
    for _, dag in dags(spec):
        for task_name, task in dag["tasks"].items():
            if task_name.startswith("resolve-inputs"):
                assert task.get("cachingOptions", {}) == {}, f"{task_name} must never be cached"


def artifact_producer(spec: dict, dag_name: str, binding: dict) -> tuple[str, dict] | None:
    """(dag name, task) that produced an input artifact, followed out of sub-DAGs; None for a
    pipeline input."""
    while "componentInputArtifact" in binding:
        if dag_name == "root":
            return None
        # The sub-DAG's input is bound by the task that runs the sub-DAG in its parent.
        dag_name, parent = next(
            (name, task)
            for name, dag in dags(spec)
            for task in dag["tasks"].values()
            if task["componentRef"]["name"] == dag_name
        )
        binding = parent["inputs"]["artifacts"][binding["componentInputArtifact"]]
    producer = binding["taskOutputArtifact"]["producerTask"]
    dag = spec["root"]["dag"] if dag_name == "root" else spec["components"][dag_name]["dag"]
    return dag_name, dag["tasks"][producer]


@pytest.mark.parametrize("name", GOLDENS)
def test_cached_tasks_read_artifacts_only_from_cached_tasks(name):
    """KFP keys a cached task on the identity of its input artifacts (backend
    cacheutils.GenerateCacheKey: InputArtifactNames), and an uncached producer makes new ones
    every run: a cached task fed by one would never be a cache hit (e.g. training would repeat
    on unchanged data). That is why check-data does not record the data gate's verdict: the
    uncached steps after it do."""
    spec = yaml.safe_load((PIPELINES / f"{name}.yaml").read_text().split("\n---\n")[0])
    offenders = []
    for dag_name, task_name, task in cached_tasks(spec):
        for input_name, binding in task.get("inputs", {}).get("artifacts", {}).items():
            found = artifact_producer(spec, dag_name, binding)
            if found and not found[1].get("cachingOptions", {}).get("enableCache"):
                offenders.append(f"{task_name}.{input_name} <- uncached {found[1]['taskInfo']['name']}")
    assert offenders == [], "cached tasks that can never be a cache hit"
