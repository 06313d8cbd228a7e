"""Submitting to Kubeflow Pipelines: upload (content-addressed versions), experiment, run."""

from __future__ import annotations

import datetime
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launch.submit import (
    CONTENT_TAG,
    PIPELINES_DIR,
    PipelineSpecFile,
    coerce_parameters,
    load_spec,
    resolve_spec,
)

logger = logging.getLogger(__name__)


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
