"""Submit a compiled pipeline spec (a golden in pipelines/) to Kubeflow Pipelines or Vertex AI.

Kubeflow: the spec is uploaded as a pipeline (or as a new version of the pipeline with the same
name; a version with the same content is reused), then a run of that version is created.
Vertex AI: an ``aiplatform.PipelineJob`` is built from the spec and submitted, or only printed
(``dry_run``). Parameters are typed from the spec's root ``inputDefinitions`` and unknown names
are refused before anything is sent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format

logger = logging.getLogger(__name__)

__all__ = [
    "CONTENT_TAG", "KfpRun", "PARAMETER_TYPES", "PIPELINES_DIR", "Parameter", "ParameterError",
    "PipelineSpecFile", "PipelineVersionRef", "SpecError", "VertexSpecError", "VertexSubmission",
    "available_specs", "build_pipeline_job", "check_experiment", "check_labels", "check_vertex_compatible",
    "check_vertex_options", "coerce_parameters", "default_version_name", "ensure_pipeline_version",
    "find_experiment", "find_pipeline_id", "find_pipeline_version", "kfp_client", "list_all",
    "load_spec", "location_path", "message_to_json", "parse_cli_parameters", "pipeline_job_request",
    "resolve_spec",
    "submit_kfp", "submit_vertex", "vertex_accelerator_types", "vertex_credentials",
]

PIPELINES_DIR = Path(__file__).resolve().parents[2] / "pipelines"

# Marks pipeline versions uploaded by this module, so that a re-upload of the same spec is
# recognised by content (KFP stores the description verbatim; names must be unique).
CONTENT_TAG = "sha256:"

PARAMETER_TYPES = {
    "STRING": "str",
    "NUMBER_INTEGER": "int",
    "NUMBER_DOUBLE": "float",
    "BOOLEAN": "bool",
    "LIST": "list (JSON)",
    "STRUCT": "dict (JSON)",
}
_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


class SpecError(ValueError):
    """The file is not a compiled pipeline spec that kfp's own loader accepts."""


class ParameterError(ValueError):
    """A pipeline argument is unknown, missing or of the wrong type."""


class VertexSpecError(ValueError):
    """The spec or the request cannot run on Vertex AI Pipelines as it is."""



@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # the IR parameterType, e.g. NUMBER_INTEGER
    optional: bool
    default: Any = None

    def describe(self) -> str:
        text = f"{self.name} ({PARAMETER_TYPES.get(self.type, self.type)}"
        if self.optional:
            text += f", default {self.default!r}" if self.default is not None else ", optional"
        else:
            text += ", required"
        return text + ")"


@dataclass(frozen=True)
class PipelineSpecFile:
    """A compiled spec as read from disk: raw bytes, YAML documents and the parsed IR."""

    path: Path
    raw: bytes
    documents: tuple[dict, ...]
    parameters: dict[str, Parameter] = field(repr=False)

    @property
    def name(self) -> str:
        return self.documents[0]["pipelineInfo"]["name"]

    @property
    def description(self) -> str:
        return self.documents[0]["pipelineInfo"].get("description", "")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def platform_documents(self) -> tuple[dict, ...]:
        """Documents after the first: kfp-kubernetes settings / PipelineConfig."""
        return self.documents[1:]

    def describe_parameters(self) -> str:
        return ", ".join(p.describe() for p in self.parameters.values()) or "(none)"


def available_specs(pipelines_dir: Path = PIPELINES_DIR) -> dict[str, Path]:
    """Goldens in ``pipelines_dir`` keyed by file name, ``schedules.yaml`` excluded."""
    return {
        p.name: p
        for p in sorted(Path(pipelines_dir).glob("*.yaml"))
        if p.name != "schedules.yaml"
    }


def resolve_spec(ref: str | os.PathLike, pipelines_dir: Path = PIPELINES_DIR) -> Path:
    """Finds a spec from a path, a golden file name (with or without .yaml) or a pipeline name.

    Raises:
        SpecError: nothing matches; the message lists the goldens and their pipeline names.
    """
    path = Path(ref)
    if path.is_file():
        return path
    text = str(ref)
    goldens = available_specs(pipelines_dir)
    for candidate in (text, f"{text}.yaml", f"{text.replace('-', '_')}.yaml"):
        if candidate in goldens:
            return goldens[candidate]
    names = {}
    for golden in goldens.values():
        try:
            first = next(yaml.safe_load_all(golden.read_text()))
            names[first["pipelineInfo"]["name"]] = golden
        except Exception:  # a broken golden is reported when it is actually used
            continue
    if text in names:
        return names[text]
    known = ", ".join(f"{f} ({n})" for n, f in ((n, p.name) for n, p in names.items())) or "none"
    raise SpecError(
        f"no pipeline spec {text!r}: not a file, and not a golden in {pipelines_dir} "
        f"(by file name or pipeline name). Available: {known}"
    )


def load_spec(path: str | os.PathLike) -> PipelineSpecFile:
    """Reads a compiled spec and validates it with kfp's own loader and the IR proto.

    Raises:
        SpecError: unreadable, not YAML, not a pipeline, or rejected by kfp.
    """
    from kfp import components
    from kfp.pipeline_spec import pipeline_spec_pb2

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read pipeline spec {path}: {exc}") from exc
    try:
        documents = tuple(d for d in yaml.safe_load_all(raw) if d is not None)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path} is not valid YAML: {exc}") from exc
    if not documents or not isinstance(documents[0], dict):
        raise SpecError(f"{path} is not a compiled pipeline spec (expected a YAML mapping)")
    first = documents[0]
    if "pipelineInfo" not in first or "dag" not in first.get("root", {}):
        raise SpecError(
            f"{path} is not a compiled pipeline (no pipelineInfo / root.dag); "
            "compile it with `python compile.py`"
        )
    try:
        proto = json_format.ParseDict(first, pipeline_spec_pb2.PipelineSpec())
        for extra in documents[1:]:
            json_format.ParseDict(extra, pipeline_spec_pb2.PlatformSpec())
        components.load_component_from_file(str(path))
    except Exception as exc:
        raise SpecError(f"kfp cannot load {path}: {exc}") from exc

    # Names and defaults in the document's order (sorted by the compiler) and as written there;
    # types from the parsed IR.
    written = first["root"].get("inputDefinitions", {}).get("parameters", {})
    parameters = {}
    for name in written:
        definition = proto.root.input_definitions.parameters[name]
        type_name = pipeline_spec_pb2.ParameterType.ParameterTypeEnum.Name(definition.parameter_type)
        default = written[name].get("defaultValue")
        if type_name == "NUMBER_INTEGER" and isinstance(default, float) and default.is_integer():
            default = int(default)  # the IR prints int defaults as 5000.0
        optional = definition.is_optional or definition.HasField("default_value")
        parameters[name] = Parameter(name, type_name, optional, default)
    return PipelineSpecFile(path=path, raw=raw, documents=documents, parameters=parameters)




def parse_cli_parameters(pairs: Iterable[str] = (), params_json: str | None = None) -> dict[str, Any]:
    """Raw arguments from ``--params-json '{...}'`` (or ``@file.json``) and ``--param k=v``.

    ``--param`` values stay strings here; :func:`coerce_parameters` types them from the spec.
    A ``--param`` overrides the same name in ``--params-json``.
    """
    values: dict[str, Any] = {}
    if params_json:
        text = params_json
        if text.startswith("@"):
            try:
                text = Path(text[1:]).read_text()
            except OSError as exc:
                raise ParameterError(f"cannot read parameters file {text[1:]}: {exc}") from exc
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ParameterError(f"--params-json is not valid JSON: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ParameterError(f"--params-json must be a JSON object, got {type(loaded).__name__}")
        values.update(loaded)
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ParameterError(f"--param expects NAME=VALUE, got {pair!r}")
        values[name.strip()] = value
    return values


def coerce_parameters(spec: PipelineSpecFile, values: Mapping[str, Any]) -> dict[str, Any]:
    """Checks names against the spec's root inputs and types every value.

    Strings (from the command line) are parsed: NUMBER_INTEGER -> int, NUMBER_DOUBLE -> float,
    BOOLEAN -> true/false/1/0/yes/no, LIST and STRUCT -> JSON. Already-typed values (JSON,
    YAML) must match the declared type.

    Raises:
        ParameterError: unknown names (listing the accepted ones), missing required inputs or a
            value that does not fit its type.
    """
    unknown = sorted(set(values) - set(spec.parameters))
    if unknown:
        raise ParameterError(
            f"pipeline {spec.name!r} ({spec.path.name}) has no parameter "
            f"{', '.join(repr(u) for u in unknown)}; accepted: {spec.describe_parameters()}"
        )
    missing = [p.name for p in spec.parameters.values() if not p.optional and p.name not in values]
    if missing:
        raise ParameterError(
            f"pipeline {spec.name!r} needs {', '.join(repr(m) for m in missing)}; "
            f"accepted: {spec.describe_parameters()}"
        )
    return {name: _coerce(spec.parameters[name], value) for name, value in values.items()}


def _coerce(parameter: Parameter, value: Any) -> Any:
    kind = parameter.type

    def fail(reason: str = "") -> ParameterError:
        expected = PARAMETER_TYPES.get(kind, kind)
        return ParameterError(
            f"parameter {parameter.name!r} expects {expected}, got {value!r}"
            + (f" ({reason})" if reason else "")
        )

    if kind == "STRING":
        if not isinstance(value, str):
            raise fail("quote it to pass it as text")
        return value
    if kind == "NUMBER_INTEGER":
        if isinstance(value, bool):
            raise fail()
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise fail() from None
        raise fail()
    if kind == "NUMBER_DOUBLE":
        if isinstance(value, bool):
            raise fail()
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise fail() from None
        raise fail()
    if kind == "BOOLEAN":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise fail("use true or false")
    if kind in ("LIST", "STRUCT"):
        wanted = list if kind == "LIST" else dict
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ParameterError(
                    f"parameter {parameter.name!r} expects {PARAMETER_TYPES[kind]}: {exc}"
                ) from exc
        if not isinstance(value, wanted):
            raise fail()
        return value
    raise ParameterError(
        f"parameter {parameter.name!r} has type {kind}, which cannot be passed at submission"
    )


# Each platform's submission lives in its own module and uses the definitions above, so they
# are imported last. This package's API is all of them.
from launch.submit.kfp import (  # noqa: E402
    KfpRun,
    PipelineVersionRef,
    default_version_name,
    ensure_pipeline_version,
    find_experiment,
    find_pipeline_id,
    find_pipeline_version,
    kfp_client,
    list_all,
    submit_kfp,
)
from launch.submit.vertex import (  # noqa: E402
    VertexSubmission,
    build_pipeline_job,
    check_experiment,
    check_labels,
    check_vertex_compatible,
    check_vertex_options,
    location_path,
    message_to_json,
    pipeline_job_request,
    submit_vertex,
    vertex_accelerator_types,
    vertex_credentials,
)
