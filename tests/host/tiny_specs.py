"""Small pipelines compiled by the tests themselves, for cases the goldens need not cover:
every parameter type, a kfp-kubernetes (two-document) spec, accelerator names."""

# No `from __future__ import annotations`: kfp reads the annotations as types.
import json
from pathlib import Path

from kfp import compiler, dsl, kubernetes

IMAGE = "python:3.11-slim"


@dsl.container_component
def echo(message: str):
    return dsl.ContainerSpec(image=IMAGE, command=["echo"], args=[message])


def compile_typed(path: Path) -> Path:
    """A pipeline with one input of each submittable type; ``name`` has no default."""

    @dsl.pipeline(name="typed-inputs")
    def typed_inputs(
        name: str,
        count: int = 3,
        ratio: float = 0.5,
        flag: bool = False,
        items: list = [1, 2],  # noqa: B006 - kfp reads defaults from the signature
        config: dict = {"a": 1},  # noqa: B006
    ):
        echo(message=name)

    compiler.Compiler().compile(typed_inputs, str(path))
    return path


def compile_kubernetes(path: Path) -> Path:
    """A KFP-only pipeline: a node selector from kfp-kubernetes adds a second YAML document."""

    @dsl.pipeline(name="kubernetes-only")
    def kubernetes_only(message: str = "hi"):
        task = echo(message=message)
        kubernetes.add_node_selector(task, "cloud.google.com/gke-accelerator", "nvidia-tesla-t4")

    compiler.Compiler().compile(kubernetes_only, str(path))
    return path


def compile_accelerator(path: Path, accelerator: str) -> Path:
    """A single-document pipeline whose task asks for one ``accelerator``."""

    @dsl.pipeline(name="gpu-task")
    def gpu_task(message: str = "hi"):
        echo(message=message).set_accelerator_type(accelerator).set_accelerator_limit(1)

    compiler.Compiler().compile(gpu_task, str(path))
    return path


_SAMPLES = {"STRING": "sample", "NUMBER_INTEGER": 1, "NUMBER_DOUBLE": 0.5, "BOOLEAN": True,
            "LIST": [], "STRUCT": {}}


def sample_arguments(spec) -> tuple[dict[str, str], dict]:
    """Arguments for every input of a loaded spec (``launch.submit.PipelineSpecFile``): defaults
    where given, a sample of the right type otherwise. Returns (command-line strings, the typed
    values the server should receive)."""
    typed = {
        p.name: p.default if p.default is not None else _SAMPLES[p.type]
        for p in spec.parameters.values()
    }
    as_text = {}
    for name, value in typed.items():
        kind = spec.parameters[name].type
        if kind in ("LIST", "STRUCT"):
            as_text[name] = json.dumps(value)
        elif kind == "BOOLEAN":
            as_text[name] = str(value).lower()
        else:
            as_text[name] = str(value)
    return as_text, typed


def as_protobuf_values(value):
    """Numbers as doubles, the way a protobuf Value (Vertex parameterValues) carries them."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, list):
        return [as_protobuf_values(v) for v in value]
    return {k: as_protobuf_values(v) for k, v in value.items()}
