"""Submit a compiled pipeline spec (a golden in pipelines/) to Kubeflow Pipelines or Vertex AI.

Kubeflow: the spec is uploaded as a pipeline (or as a new version of the pipeline with the same
name; a version with the same content is reused), then a run of that version is created.
Vertex AI: an ``aiplatform.PipelineJob`` is built from the spec and submitted, or only printed
(``dry_run``). Parameters are typed from the spec's root ``inputDefinitions`` and unknown names
are refused before anything is sent.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format

logger = logging.getLogger(__name__)

PIPELINES_DIR = Path(__file__).resolve().parent.parent / "pipelines"

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


# --------------------------------------------------------------------------- the spec


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


# --------------------------------------------------------------------------- parameters


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


# --------------------------------------------------------------------------- Kubeflow Pipelines


@dataclass(frozen=True)
class PipelineVersionRef:
    pipeline_id: str | None
    version_id: str | None
    version_name: str
    action: str  # "reused", "uploaded pipeline", "uploaded version"; dry run: "new pipeline/version ..."


@dataclass(frozen=True)
class KfpRun:
    run_id: str
    url: str
    experiment_id: str
    version: PipelineVersionRef
    inline_spec: bool


def kfp_client(
    host: str,
    *,
    namespace: str | None = None,
    token: str | None = None,
    token_file: str | None = None,
    ssl_ca_cert: str | None = None,
    verify_ssl: bool | None = None,
    ui_host: str | None = None,
):
    """A ``kfp.Client`` with the usual options.

    Authentication: ``token`` (sent as a bearer token), or ``token_file`` (a projected
    service-account token, re-read on refresh), or, when neither is given and the environment
    sets ``KF_PIPELINES_SA_TOKEN_PATH``, kfp's own ServiceAccountTokenVolumeCredentials.
    The constructor calls /apis/v2beta1/healthz unless ``namespace`` is set.
    """
    import kfp
    from kfp.client import set_volume_credentials

    if not host:
        raise ValueError("a KFP host is required, e.g. --host http://localhost:8080")
    if token and token_file:
        raise ValueError("give either a token or a token file, not both")
    credentials = None
    if token_file:
        credentials = set_volume_credentials.ServiceAccountTokenVolumeCredentials(path=token_file)
    elif not token and os.environ.get("KF_PIPELINES_SA_TOKEN_PATH"):
        credentials = set_volume_credentials.ServiceAccountTokenVolumeCredentials()
    return kfp.Client(
        host=host,
        namespace=namespace or "kubeflow",
        existing_token=token,
        credentials=credentials,
        ssl_ca_cert=ssl_ca_cert,
        verify_ssl=verify_ssl,
        ui_host=ui_host,
    )


def list_all(list_call, items_attr: str, **kwargs) -> list:
    found, token = [], ""
    while True:
        response = list_call(page_token=token, page_size=100, **kwargs)
        found.extend(getattr(response, items_attr) or [])
        token = response.next_page_token
        if not token:
            return found


def find_pipeline_id(client, name: str, namespace: str | None = None) -> str | None:
    """The id of the pipeline named ``name`` (shared, or in ``namespace``), or None."""
    name_filter = json.dumps(
        {"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]}
    )
    found = list_all(client.list_pipelines, "pipelines", filter=name_filter, namespace=namespace)
    if len(found) > 1:
        raise RuntimeError(f"KFP has {len(found)} pipelines named {name!r}; the name must be unique")
    return found[0].pipeline_id if found else None


def find_pipeline_version(client, pipeline_id: str, sha256: str):
    """The version of ``pipeline_id`` uploaded from the spec with this content hash, if any."""
    tag = f"{CONTENT_TAG}{sha256}"
    for version in list_all(client.list_pipeline_versions, "pipeline_versions", pipeline_id=pipeline_id):
        if tag in (version.description or ""):
            return version
    return None


def default_version_name(spec: PipelineSpecFile, now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return f"{spec.name}-{spec.sha256[:12]}-{now.strftime('%Y%m%d-%H%M%S')}"


def ensure_pipeline_version(
    client,
    spec: PipelineSpecFile,
    *,
    pipeline_name: str | None = None,
    version_name: str | None = None,
    namespace: str | None = None,
    dry_run: bool = False,
) -> PipelineVersionRef:
    """Uploads the spec as a pipeline, or as a new version, or reuses the version with the same
    content hash. ``dry_run`` only looks."""
    name = pipeline_name or spec.name
    tag = f"{CONTENT_TAG}{spec.sha256}"
    description = f"{spec.description}\n\n{spec.path.name} {tag}".strip()
    pipeline_id = find_pipeline_id(client, name, namespace)
    if pipeline_id is None:
        if dry_run:
            return PipelineVersionRef(None, None, name, f"new pipeline {name!r}")
        pipeline = client.upload_pipeline(
            str(spec.path), pipeline_name=name, description=description, namespace=namespace
        )
        # The upload creates the pipeline and its first version (same name and description).
        version = find_pipeline_version(client, pipeline.pipeline_id, spec.sha256)
        if version is None:
            raise RuntimeError(f"KFP created pipeline {name!r} but lists no version with {tag}")
        return PipelineVersionRef(
            pipeline.pipeline_id, version.pipeline_version_id, version.display_name, "uploaded pipeline"
        )
    version = find_pipeline_version(client, pipeline_id, spec.sha256)
    if version is not None:
        return PipelineVersionRef(pipeline_id, version.pipeline_version_id, version.display_name, "reused")
    version_name = version_name or default_version_name(spec)
    if dry_run:
        return PipelineVersionRef(pipeline_id, None, version_name, f"new version {version_name!r}")
    version = client.upload_pipeline_version(
        str(spec.path), version_name, pipeline_id=pipeline_id, description=description
    )
    return PipelineVersionRef(pipeline_id, version.pipeline_version_id, version_name, "uploaded version")


def find_experiment(client, name: str, namespace: str | None = None):
    """The experiment named ``name`` or None (never creates)."""
    try:
        return client.get_experiment(experiment_name=name, namespace=namespace)
    except ValueError as exc:
        if str(exc).startswith("No experiment is found"):
            return None
        raise


def submit_kfp(
    spec_ref: str | os.PathLike,
    *,
    client,
    ui_url: str,
    parameters: Mapping[str, Any] | None = None,
    experiment: str = "Default",
    run_name: str | None = None,
    pipeline_name: str | None = None,
    version_name: str | None = None,
    namespace: str | None = None,
    pipeline_root: str | None = None,
    service_account: str | None = None,
    enable_caching: bool | None = None,
    pipelines_dir: Path = PIPELINES_DIR,
) -> KfpRun:
    """Uploads the spec (or reuses its version) and creates a run in ``experiment``.

    ``enable_caching`` overrides every task's caching; kfp applies that override only to a
    spec sent inline, so with it the run carries the spec itself (the version is still
    uploaded, for the UI).
    """
    spec = load_spec(resolve_spec(spec_ref, pipelines_dir))
    arguments = coerce_parameters(spec, parameters or {})
    version = ensure_pipeline_version(
        client, spec, pipeline_name=pipeline_name, version_name=version_name, namespace=namespace
    )
    found = find_experiment(client, experiment, namespace)
    experiment_id = (
        found.experiment_id
        if found is not None
        else client.create_experiment(experiment, namespace=namespace).experiment_id
    )
    run_name = run_name or f"{spec.name} {datetime.datetime.now().strftime('%Y-%m-%d %H-%M-%S')}"
    inline = enable_caching is not None
    source = (
        {"pipeline_package_path": str(spec.path)}
        if inline
        else {"pipeline_id": version.pipeline_id, "version_id": version.version_id}
    )
    run = client.run_pipeline(
        experiment_id=experiment_id,
        job_name=run_name,
        params=arguments,
        pipeline_root=pipeline_root,
        enable_caching=enable_caching,
        service_account=service_account,
        **source,
    )
    url = f"{ui_url.rstrip('/')}/#/runs/details/{run.run_id}"
    logger.info("created run %s: %s", run.run_id, url)
    return KfpRun(run.run_id, url, experiment_id, version, inline)


# --------------------------------------------------------------------------- Vertex AI

_NETWORK = re.compile(r"^projects/[^/]+/global/networks/[^/]+$")
_SERVICE_ACCOUNT = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]+$")
# Placeholders such as {{$.inputs.parameters['pipelinechannel--accelerator']}} are decided at
# run time and cannot be checked here.
_PLACEHOLDER = re.compile(r"\{\{.*\}\}")


def vertex_accelerator_types() -> set[str]:
    from google.cloud.aiplatform_v1.types import accelerator_type

    names = set(accelerator_type.AcceleratorType.__members__)
    names.discard("ACCELERATOR_TYPE_UNSPECIFIED")
    return names


def check_vertex_compatible(spec: PipelineSpecFile, *, hint: str = "") -> None:
    """Refuses what Vertex AI Pipelines rejects or misreads.

    Raises:
        VertexSpecError: a second YAML document (kfp-kubernetes platform settings or
            dsl.PipelineConfig), or an accelerator type that is not a Vertex enum name.
    """
    if spec.platform_documents:
        variant = spec.path.with_name(f"{spec.path.stem}_vertex.yaml")
        pointer = (
            f"submit {variant.name} instead (the Vertex variant of this pipeline)"
            if variant.is_file()
            else "compile a Vertex variant of the pipeline without kfp.kubernetes calls and "
            "PipelineConfig"
        )
        raise VertexSpecError(
            f"{spec.path.name} has {len(spec.documents)} YAML documents: the extra one holds "
            "Kubernetes platform settings (kfp-kubernetes: node selectors, tolerations, secrets, "
            "PVCs; or dsl.PipelineConfig), which only the Kubeflow backend understands; Vertex "
            f"AI loads a single document and fails on this spec. {pointer}.{hint}"
        )
    valid = vertex_accelerator_types()
    executors = spec.documents[0].get("deploymentSpec", {}).get("executors", {})
    for executor_name, executor in sorted(executors.items()):
        accelerator = (executor.get("container") or {}).get("resources", {}).get("accelerator")
        if not accelerator:
            continue
        for key in ("resourceType", "type"):
            value = accelerator.get(key)
            if not value or _PLACEHOLDER.search(str(value)) or value in valid:
                continue
            examples = ", ".join(n for n in ("NVIDIA_TESLA_T4", "NVIDIA_L4", "NVIDIA_TESLA_A100")
                                 if n in valid)
            k8s = (
                f"{value!r} is a Kubernetes/KFP resource name"
                if "/" in value
                else f"{value!r} is not a Vertex AI accelerator type"
            )
            raise VertexSpecError(
                f"{spec.path.name}: executor {executor_name} asks for accelerator {k8s}; Vertex "
                f"AI expects an AcceleratorType enum name such as {examples} "
                "(task.set_accelerator_type('NVIDIA_TESLA_T4') in the Vertex variant)"
            )


def check_vertex_options(
    *, project: str, region: str, pipeline_root: str | None, service_account: str | None = None,
    network: str | None = None,
) -> None:
    if not project:
        raise VertexSpecError("a Google Cloud project is required (--project)")
    if not region or not re.fullmatch(r"[a-z]+(-[a-z]+)+\d+", region):
        raise VertexSpecError(f"region must look like 'europe-west4', got {region!r}")
    if not pipeline_root or not str(pipeline_root).startswith("gs://") or len(pipeline_root) <= 5:
        raise VertexSpecError(
            f"Vertex AI needs a Cloud Storage pipeline root (gs://bucket/path), got {pipeline_root!r}"
        )
    if service_account and not _SERVICE_ACCOUNT.match(service_account):
        raise VertexSpecError(
            f"service account must be an email such as "
            f"ct-runner@{project}.iam.gserviceaccount.com, got {service_account!r}"
        )
    if network and not _NETWORK.match(network):
        raise VertexSpecError(
            f"network must look like projects/<project-number>/global/networks/<vpc>, got {network!r}"
        )


_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


def check_labels(labels: Mapping[str, str]) -> None:
    """Google Cloud label rules, checked here because the SDK only checks they are strings."""
    if len(labels) > 64:
        raise VertexSpecError(f"at most 64 labels are allowed, got {len(labels)}")
    for key, value in labels.items():
        if not isinstance(key, str) or not _LABEL_KEY.match(key):
            raise VertexSpecError(
                f"label key {key!r}: start with a lowercase letter; use lowercase letters, digits, "
                "'_' and '-' (max 63)"
            )
        if not isinstance(value, str) or not _LABEL_VALUE.match(value):
            raise VertexSpecError(
                f"label {key}={value!r}: values use lowercase letters, digits, '_' and '-' (max 63)"
            )


def vertex_credentials(credentials=None, *, offline: bool = False):
    """Injected credentials, else anonymous ones for offline work, else google.auth.default()."""
    if credentials is not None:
        return credentials
    if offline:
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()
    import google.auth

    creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    return creds


def build_pipeline_job(
    spec: PipelineSpecFile,
    *,
    project: str,
    region: str,
    pipeline_root: str,
    credentials,
    parameters: Mapping[str, Any] | None = None,
    display_name: str | None = None,
    job_id: str | None = None,
    labels: Mapping[str, str] | None = None,
    enable_caching: bool | None = None,
    encryption_key: str | None = None,
):
    """An ``aiplatform.PipelineJob`` from a checked spec; purely local (no request is sent)."""
    from google.cloud import aiplatform

    check_vertex_compatible(spec)
    check_labels(labels or {})
    arguments = coerce_parameters(spec, parameters or {})
    try:
        return aiplatform.PipelineJob(
            display_name=display_name or spec.name,
            template_path=str(spec.path),
            job_id=job_id,
            pipeline_root=pipeline_root,
            parameter_values=arguments,
            enable_caching=enable_caching,
            encryption_spec_key_name=encryption_key,
            labels=dict(labels) if labels else None,
            credentials=credentials,
            project=project,
            location=region,
        )
    except ValueError as exc:  # labels, job id, display name
        raise VertexSpecError(f"Vertex AI refuses the job: {exc}") from exc


def message_to_json(message) -> dict:
    """A proto-plus or protobuf message as its REST JSON body (camelCase)."""
    pb = getattr(message, "_pb", message)
    return json_format.MessageToDict(pb)


def pipeline_job_request(job, *, service_account: str | None = None, network: str | None = None) -> dict:
    """The CreatePipelineJobRequest ``job.submit()`` sends, as JSON.

    Sets service account and network on the job the way ``submit()`` does, so printing this and
    then submitting send the same thing.
    """
    from google.cloud.aiplatform.compat.types import pipeline_service

    if service_account:
        job._gca_resource.service_account = service_account
    if network:
        job._gca_resource.network = network
    request = pipeline_service.CreatePipelineJobRequest(
        parent=job._parent, pipeline_job=job._gca_resource, pipeline_job_id=job.job_id
    )
    return message_to_json(request)


@dataclass(frozen=True)
class VertexSubmission:
    request: dict
    resource_name: str | None
    dashboard_url: str | None


def submit_vertex(
    spec_ref: str | os.PathLike,
    *,
    project: str,
    region: str,
    pipeline_root: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    service_account: str | None = None,
    network: str | None = None,
    labels: Mapping[str, str] | None = None,
    enable_caching: bool | None = None,
    display_name: str | None = None,
    job_id: str | None = None,
    encryption_key: str | None = None,
    credentials=None,
    dry_run: bool = False,
    pipelines_dir: Path = PIPELINES_DIR,
) -> VertexSubmission:
    """Builds the PipelineJob, returns its create request, and submits it unless ``dry_run``."""
    spec = load_spec(resolve_spec(spec_ref, pipelines_dir))
    pipeline_root = pipeline_root or spec.documents[0].get("defaultPipelineRoot")
    check_vertex_options(
        project=project, region=region, pipeline_root=pipeline_root,
        service_account=service_account, network=network,
    )
    job = build_pipeline_job(
        spec,
        project=project,
        region=region,
        pipeline_root=pipeline_root,
        credentials=vertex_credentials(credentials, offline=dry_run),
        parameters=parameters,
        display_name=display_name,
        job_id=job_id,
        labels=labels,
        enable_caching=enable_caching,
        encryption_key=encryption_key,
    )
    request = pipeline_job_request(job, service_account=service_account, network=network)
    if dry_run:
        return VertexSubmission(request, None, None)
    job.submit(service_account=service_account, network=network)
    return VertexSubmission(request, job.resource_name, job._dashboard_uri())
