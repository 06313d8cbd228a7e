"""Submitting to Vertex AI Pipelines: single-document specs, options checked, PipelineJob built
and submitted (or printed with dry_run)."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from launch.submit import (
    PIPELINES_DIR,
    PipelineSpecFile,
    VertexSpecError,
    coerce_parameters,
    load_spec,
    resolve_spec,
)

logger = logging.getLogger(__name__)


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


_EXPERIMENT = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")


def check_experiment(experiment: str | None) -> None:
    """Vertex AI Experiment names are metadata context ids; the SDK sends them unchecked."""
    if experiment is not None and not _EXPERIMENT.match(experiment):
        raise VertexSpecError(
            f"Vertex AI experiment names use lowercase letters, digits and '-' (start with a letter "
            f"or digit, max 128), got {experiment!r}"
        )


def location_path(project: str, region: str) -> str:
    """``projects/<project>/locations/<region>``, the parent of every Vertex resource here."""
    from google.cloud.aiplatform_v1.services.pipeline_service import PipelineServiceClient

    return PipelineServiceClient.common_location_path(project, region)


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

    # An unsent job has no public view of its resource (``job.gca_resource`` raises until the
    # job has a name), so the request is read from ``_gca_resource``, which submit() sends.
    resource = job._gca_resource
    if service_account:
        resource.service_account = service_account
    if network:
        resource.network = network
    request = pipeline_service.CreatePipelineJobRequest(
        parent=location_path(job.project, job.location), pipeline_job=resource, pipeline_job_id=job.job_id
    )
    return message_to_json(request)


@dataclass(frozen=True)
class VertexSubmission:
    request: dict
    resource_name: str | None
    dashboard_url: str | None
    experiment: str | None = None  # the Vertex AI Experiment the run is (to be) associated with


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
    experiment: str | None = None,
    credentials=None,
    dry_run: bool = False,
    pipelines_dir: Path = PIPELINES_DIR,
) -> VertexSubmission:
    """Builds the PipelineJob, returns its create request, and submits it unless ``dry_run``.

    With ``experiment``, the SDK gets or creates that Vertex AI Experiment before creating the
    job and then associates the run with it (``PipelineJob.submit(experiment=...)``: metadata
    calls, not part of the create request, so a dry run only names it).
    """
    spec = load_spec(resolve_spec(spec_ref, pipelines_dir))
    pipeline_root = pipeline_root or spec.documents[0].get("defaultPipelineRoot")
    check_vertex_options(
        project=project, region=region, pipeline_root=pipeline_root,
        service_account=service_account, network=network,
    )
    check_experiment(experiment)
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
        return VertexSubmission(request, None, None, experiment)
    job.submit(service_account=service_account, network=network, experiment=experiment)
    # The console link: no public API composes it (PipelineJob._dashboard_uri is what the SDK
    # itself logs after submit), and writing the URL format here would be a second copy.
    return VertexSubmission(request, job.resource_name, job._dashboard_uri(), experiment)
