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
    assert {t.split("-2")[0] for t, _ in readers} >= {"compute-statistics"}
    for task_name, task in readers:
        parameters = task["inputs"]["parameters"]
        for input_name in ("data_uri", "data_fingerprint"):
            binding = parameters[input_name]
            producer = binding.get("taskOutputParameter", {}).get("producerTask") or binding.get(
                "componentInputParameter", ""
            )
            assert "fingerprint-data" in producer, f"{task_name}.{input_name} is bound to {binding}"
    for _, dag in dags(spec):
        for task_name, task in dag["tasks"].items():
            if task_name.startswith("fingerprint-data"):
                assert task.get("cachingOptions", {}) == {}, f"{task_name} must never be cached"
