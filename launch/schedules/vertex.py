"""The Vertex AI reconciler: schedules.yaml entries as PipelineJobSchedules."""

from __future__ import annotations

import logging
from pathlib import Path

from launch import submit
from launch.schedules import (
    _VERTEX_HINT,
    VERTEX_EXPERIMENT_LABEL,
    VERTEX_MANAGED_LABEL,
    VERTEX_SPEC_LABEL,
    Action,
    Plan,
    ScheduleEntry,
    ScheduleError,
    _json_equal,
)
from launch.schedules.cron import to_vertex_cron

logger = logging.getLogger(__name__)


def plan_vertex(
    entries: list[ScheduleEntry],
    *,
    project: str,
    region: str,
    pipeline_root: str,
    credentials=None,
    service_account: str | None = None,
    network: str | None = None,
    prune: bool = False,
    pipelines_dir: Path = submit.PIPELINES_DIR,
) -> Plan:
    """Compares the entries targeting Vertex with the project's PipelineJobSchedules (reads only).

    Identity is the display name among schedules this tool created (label
    ``kfp-ct-managed-by=launch-schedules`` on the pipeline job). A changed cron,
    max_concurrency, allow_queueing, or a new start_time, end_time or max_run_count is updated
    in place; a changed pipeline, parameters, root, service account, network or experiment, or
    a removed end_time / max_run_count (an update cannot unset them), replaces the schedule
    (delete + create). ``enabled: false`` pauses it; resuming honours ``catchup``.

    ``vertex_experiment``: Vertex's Schedule API has no experiment field (the SDK's
    ``PipelineJobSchedule.create`` takes none; googleapis/python-aiplatform#2340), so the
    experiment is created when missing and every run the schedule starts carries the label
    ``kfp-ct-vertex-experiment=<name>``; the runs are not listed under the experiment by Vertex.

    Raises:
        ScheduleError: a schedule with an entry's name that this tool did not create.
    """
    from google.cloud import aiplatform
    from google.cloud.aiplatform.compat.types import schedule as gca_schedule
    from google.cloud.aiplatform.compat.types import schedule_service

    plan = Plan("vertex")
    submit.check_vertex_options(
        project=project, region=region, pipeline_root=pipeline_root,
        service_account=service_account, network=network,
    )
    credentials = submit.vertex_credentials(credentials)
    existing = aiplatform.PipelineJobSchedule.list(project=project, location=region, credentials=credentials)
    key, value = VERTEX_MANAGED_LABEL

    def is_ours(schedule) -> bool:
        return schedule.gca_resource.create_pipeline_job_request.pipeline_job.labels.get(key) == value

    by_name: dict[str, list] = {}
    for schedule in existing:
        by_name.setdefault(schedule.display_name, []).append(schedule)

    experiments: set[str] = set()

    def experiment_for(name: str) -> None:
        """Plans creating the entry's experiment when it does not exist yet (read only)."""
        if name in experiments:
            return
        experiments.add(name)
        if aiplatform.Experiment.get(name, project=project, location=region, credentials=credentials) is None:
            plan.actions.append(Action(
                "create-experiment", name, "Vertex AI Experiment",
                run=lambda: aiplatform.Experiment.get_or_create(
                    name, project=project, location=region, credentials=credentials),
            ))

    def create(schedule, entry, cron):
        schedule.create(
            cron=cron, max_concurrent_run_count=entry.max_concurrency,
            service_account=service_account, network=network, **_bounds(entry),
        )
        if not entry.enabled:
            schedule.pause()

    def replace(schedule, entry, cron, old):
        for other in old:
            other.delete()
        create(schedule, entry, cron)

    conflicts = []
    for entry in (e for e in entries if "vertex" in e.targets):
        cron = to_vertex_cron(entry.cron, entry.timezone)
        plan.notes.append(f"{entry.name}: cron {entry.cron!r} -> Vertex {cron!r}")
        spec = entry.spec_for("vertex", pipelines_dir)
        try:
            submit.check_vertex_compatible(spec, hint=_VERTEX_HINT)
        except submit.VertexSpecError as exc:
            raise submit.VertexSpecError(f"schedule {entry.name!r}: {exc}") from exc
        labels = {key: value, VERTEX_SPEC_LABEL: spec.sha256[:32]}
        if entry.vertex_experiment:
            labels[VERTEX_EXPERIMENT_LABEL] = entry.vertex_experiment
            experiment_for(entry.vertex_experiment)
            plan.notes.append(
                f"{entry.name}: runs labelled {VERTEX_EXPERIMENT_LABEL}={entry.vertex_experiment} (Vertex "
                "schedules cannot join runs to an experiment; googleapis/python-aiplatform#2340)"
            )
        job = submit.build_pipeline_job(
            spec,
            project=project,
            region=region,
            pipeline_root=pipeline_root,
            credentials=credentials,
            parameters=entry.parameters,
            display_name=entry.name,
            labels=labels,
        )
        schedule = aiplatform.PipelineJobSchedule(
            pipeline_job=job, display_name=entry.name, credentials=credentials,
            project=project, location=region,
        )
        request = schedule_request(
            schedule, cron=cron, max_concurrent_run_count=entry.max_concurrency,
            service_account=service_account, network=network, **_bounds(entry),
        )
        same_name = by_name.pop(entry.name, [])
        if any(not is_ours(s) for s in same_name):
            conflicts.append(entry.name)
            continue
        # The desired schedule is not created, so only its private resource holds the request
        # (``gca_resource`` raises until a schedule has a name); listed ones use the public one.
        diffs = {s.resource_name: _vertex_differences(s.gca_resource, schedule._gca_resource)
                 for s in same_name}
        updatable = {"cron", "max_concurrent_run_count", "allow_queueing"} | {
            k for k in ("start_time", "end_time", "max_run_count") if getattr(entry, k) is not None}
        keep = next((s for s in same_name if not set(diffs[s.resource_name]) - updatable), None)
        if keep is None:
            plan.actions.append(Action.create_or_replace(
                entry.name, cron, diffs, request=request,
                run=lambda s=schedule, e=entry, c=cron, old=same_name: replace(s, e, c, old),
            ))
            continue
        for other in same_name:
            if other is not keep:
                plan.actions.append(Action(
                    "delete", entry.name, f"duplicate, {other.resource_name}",
                    request={"name": other.resource_name}, run=other.delete,
                ))
        changed = diffs[keep.resource_name]
        if changed:
            wanted = {"cron": cron, "max_concurrent_run_count": entry.max_concurrency, **_bounds(entry)}
            fields = {name: wanted.get(name, False) for name in changed}  # allow_queueing off: False
            updated = gca_schedule.Schedule.deserialize(gca_schedule.Schedule.serialize(keep.gca_resource))
            for name, new in fields.items():
                setattr(updated, name, new)
            plan.actions.append(Action(
                "update", entry.name, f"{keep.resource_name}: {', '.join(changed)}",
                request=submit.message_to_json(schedule_service.UpdateScheduleRequest(
                    schedule=updated, update_mask={"paths": list(fields)})),
                run=lambda keep=keep, fields=fields: keep.update(**fields),
            ))
        state = keep.gca_resource.state
        if entry.enabled and state == gca_schedule.Schedule.State.PAUSED:
            plan.actions.append(Action(
                "resume", entry.name, f"{keep.resource_name}; catch_up={entry.catchup}",
                request={"name": keep.resource_name, "catchUp": entry.catchup},
                # PipelineJobSchedule.resume() drops catch_up; the API takes it.
                run=lambda keep=keep, entry=entry: keep.api_client.resume_schedule(
                    name=keep.resource_name, catch_up=entry.catchup),
            ))
        elif not entry.enabled and state == gca_schedule.Schedule.State.ACTIVE:
            plan.actions.append(Action("pause", entry.name, keep.resource_name,
                                       request={"name": keep.resource_name}, run=keep.pause))
        elif not changed:
            plan.actions.append(Action("unchanged", entry.name, keep.resource_name))
    if conflicts:
        raise ScheduleError(
            f"Vertex schedule(s) {', '.join(repr(c) for c in conflicts)} exist but were not created "
            f"by this tool (no label {key}={value}); rename the entries or delete those schedules first"
        )
    if prune:
        for name, schedules in sorted(by_name.items()):
            for schedule in filter(is_ours, schedules):
                plan.actions.append(Action(
                    "delete", name, f"{schedule.resource_name}; not in schedules.yaml",
                    request={"name": schedule.resource_name}, run=schedule.delete,
                ))
    return plan


def _bounds(entry: ScheduleEntry) -> dict:
    """The entry's optional Vertex schedule fields, as ``PipelineJobSchedule.create`` takes them."""
    bounds = {"start_time": entry.start_time, "end_time": entry.end_time,
              "max_run_count": entry.max_run_count, "allow_queueing": entry.allow_queueing}
    return {k: v for k, v in bounds.items() if v not in (None, False)}


def schedule_request(
    schedule, *, cron: str, max_concurrent_run_count: int,
    service_account: str | None = None, network: str | None = None,
    start_time=None, end_time=None, max_run_count: int | None = None, allow_queueing: bool = False,
) -> dict:
    """The CreateScheduleRequest ``schedule.create(...)`` sends, as JSON.

    Sets the same fields on the SDK object that ``PipelineJobSchedule._create`` sets, so that
    the printed request and the sent one agree. An unsent schedule has no public view of its
    resource (``gca_resource`` raises until it has a name), hence ``_gca_resource``.
    """
    from google.cloud.aiplatform.compat.types import schedule_service

    resource = schedule._gca_resource
    resource.cron = cron
    resource.max_concurrent_run_count = max_concurrent_run_count
    for name, given in (("start_time", start_time), ("end_time", end_time),
                        ("max_run_count", max_run_count), ("allow_queueing", allow_queueing)):
        if given:
            setattr(resource, name, given)
    if service_account:
        resource.create_pipeline_job_request.pipeline_job.service_account = service_account
    if network:
        resource.create_pipeline_job_request.pipeline_job.network = network
    parent = submit.location_path(schedule.project, schedule.location)
    return submit.message_to_json(schedule_service.CreateScheduleRequest(parent=parent, schedule=resource))


def _vertex_differences(current, desired) -> list[str]:
    differences = []
    if current.cron != desired.cron:
        differences.append("cron")
    if current.max_concurrent_run_count != desired.max_concurrent_run_count:
        differences.append("max_concurrent_run_count")
    if current.allow_queueing != desired.allow_queueing:
        differences.append("allow_queueing")
    # Vertex sets start_time to the creation time when none was given: compare only a wanted one.
    if "start_time" in desired and current.start_time != desired.start_time:
        differences.append("start_time")
    for name in ("end_time", "max_run_count"):
        if (name in current, getattr(current, name)) != (name in desired, getattr(desired, name)):
            differences.append(name)
    a = current.create_pipeline_job_request.pipeline_job
    b = desired.create_pipeline_job_request.pipeline_job
    if a.labels.get(VERTEX_SPEC_LABEL) != b.labels.get(VERTEX_SPEC_LABEL):
        differences.append("pipeline spec")
    a_params = submit.message_to_json(a.runtime_config).get("parameterValues", {})
    b_params = submit.message_to_json(b.runtime_config).get("parameterValues", {})
    if not _json_equal(a_params, b_params):
        differences.append("parameters")
    if a.runtime_config.gcs_output_directory != b.runtime_config.gcs_output_directory:
        differences.append("pipeline_root")
    if a.service_account != b.service_account:
        differences.append("service_account")
    if a.network != b.network:
        differences.append("network")
    if dict(a.labels) != dict(b.labels):
        differences.append("labels")
    return differences
