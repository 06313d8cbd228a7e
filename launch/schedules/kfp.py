"""The Kubeflow Pipelines reconciler: schedules.yaml entries as KFP recurring runs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from launch import submit
from launch.schedules import (
    KFP_MARKER,
    Action,
    Plan,
    ScheduleEntry,
    ScheduleError,
    _json_equal,
    _numbers_as_floats,
    rfc3339,
)
from launch.schedules.cron import check_timezone, to_kfp_cron

logger = logging.getLogger(__name__)


def _is_ours_kfp(run) -> bool:
    return (run.description or "").startswith(KFP_MARKER)


@dataclass
class _KfpDesired:
    """What one entry should look like on the server. Ids of a pipeline version or experiment
    that do not exist yet are filled in by the upload / create-experiment actions."""

    entry: ScheduleEntry
    spec: submit.PipelineSpecFile
    cron: str
    params: dict
    description: str
    version: dict  # {"pipeline_id", "version_id"}, shared by entries using the same spec
    experiment: dict  # {"experiment_id"}, shared by entries using the same experiment
    pipeline_root: str | None
    service_account: str | None

    def body(self) -> dict:
        """The V2beta1RecurringRun kfp.Client.create_recurring_run sends (unset fields omitted)."""
        body = {
            "display_name": self.entry.name,
            "description": self.description,
            "experiment_id": self.experiment["experiment_id"] or f"<new experiment {self.entry.experiment}>",
            "mode": "ENABLE" if self.entry.enabled else "DISABLE",
            "trigger": {"cron_schedule": self.cron_schedule()},
            "max_concurrency": self.entry.max_concurrency,
            "no_catchup": not self.entry.catchup,
            "pipeline_version_reference": {
                "pipeline_id": self.version["pipeline_id"] or f"<new pipeline {self.spec.name}>",
                "pipeline_version_id": self.version["version_id"] or "<new version>",
            },
            "runtime_config": {"parameters": self.params},
        }
        if self.pipeline_root:
            body["runtime_config"]["pipeline_root"] = self.pipeline_root
        if self.service_account:
            body["service_account"] = self.service_account
        return body

    def cron_schedule(self) -> dict:
        """The trigger: the cron and, when the entry bounds it, its start and end times."""
        bounds = {"start_time": rfc3339(self.entry.start_time), "end_time": rfc3339(self.entry.end_time)}
        return {"cron": self.cron, **{k: v for k, v in bounds.items() if v}}

    def differences(self, run) -> list[str]:
        """Fields in which a listed recurring run differs from this entry."""
        out = []
        trigger = run.trigger.cron_schedule if run.trigger and run.trigger.cron_schedule else None
        if (trigger.cron if trigger else None) != self.cron:
            out.append("cron")
        for key in ("start_time", "end_time"):
            current = getattr(trigger, key, None) if trigger else None
            if rfc3339(current) != rfc3339(getattr(self.entry, key)):
                out.append(key)
        runtime = run.runtime_config
        current = (runtime.parameters if runtime else None) or {}
        if not _json_equal(_numbers_as_floats(current), _numbers_as_floats(self.params)):
            out.append("parameters")
        if ((runtime.pipeline_root if runtime else None) or None) != self.pipeline_root:
            out.append("pipeline_root")
        reference = run.pipeline_version_reference
        if self.version["version_id"] is None or reference is None or (
            reference.pipeline_version_id != self.version["version_id"]
        ):
            out.append("pipeline version")
        if int(run.max_concurrency or 0) != self.entry.max_concurrency:
            out.append("max_concurrency")
        if bool(run.no_catchup) != (not self.entry.catchup):
            out.append("catchup")
        if self.experiment["experiment_id"] is None or run.experiment_id != self.experiment["experiment_id"]:
            out.append("experiment")
        if (run.description or "") != self.description:
            out.append("description")
        if (run.service_account or None) != self.service_account:
            out.append("service_account")
        if str(run.mode) != ("ENABLE" if self.entry.enabled else "DISABLE"):
            out.append("mode")
        return out


def plan_kfp(
    client,
    entries: list[ScheduleEntry],
    *,
    namespace: str | None = None,
    prune: bool = False,
    pipeline_root: str | None = None,
    service_account: str | None = None,
    kfp_timezone: str = "UTC",
    pipelines_dir: Path = submit.PIPELINES_DIR,
) -> Plan:
    """Compares the entries targeting KFP with the recurring runs on the server (reads only).

    Executing the plan uploads missing pipeline versions, creates missing experiments, then
    creates, replaces (delete + create), enables/disables and prunes recurring runs.

    Raises:
        ScheduleError: a time zone KFP cannot honour, or a recurring run with an entry's name
            that this tool did not create.
    """
    plan = Plan("kfp")
    check_timezone(kfp_timezone)
    existing = submit.list_all(client.list_recurring_runs, "recurring_runs", namespace=namespace)
    by_name: dict[str, list] = {}
    for run in existing:
        by_name.setdefault(run.display_name, []).append(run)
    versions: dict[str, dict] = {}
    experiments: dict[str, dict] = {}

    def version_for(spec: submit.PipelineSpecFile) -> dict:
        if spec.sha256 not in versions:
            ref = submit.ensure_pipeline_version(client, spec, namespace=namespace, dry_run=True)
            holder = versions[spec.sha256] = {"pipeline_id": ref.pipeline_id, "version_id": ref.version_id}
            if ref.version_id is None:
                def upload():
                    done = submit.ensure_pipeline_version(client, spec, namespace=namespace)
                    holder.update(pipeline_id=done.pipeline_id, version_id=done.version_id)

                detail = f"{spec.path.name}: {ref.action}"
                plan.actions.append(Action("upload", spec.name, detail, run=upload))
        return versions[spec.sha256]

    def experiment_for(name: str) -> dict:
        if name not in experiments:
            found = submit.find_experiment(client, name, namespace)
            holder = experiments[name] = {"experiment_id": found.experiment_id if found else None}
            if found is None:
                def create():
                    created = client.create_experiment(name, namespace=namespace)
                    holder["experiment_id"] = created.experiment_id

                plan.actions.append(Action("create-experiment", name, run=create))
        return experiments[name]

    def create(desired: _KfpDesired) -> None:
        client.create_recurring_run(
            experiment_id=desired.experiment["experiment_id"],
            job_name=desired.entry.name,
            description=desired.description,
            cron_expression=desired.cron,
            start_time=rfc3339(desired.entry.start_time),
            end_time=rfc3339(desired.entry.end_time),
            max_concurrency=desired.entry.max_concurrency,
            no_catchup=not desired.entry.catchup,
            params=desired.params,
            pipeline_id=desired.version["pipeline_id"],
            version_id=desired.version["version_id"],
            enabled=desired.entry.enabled,
            pipeline_root=pipeline_root,
            service_account=service_account,
        )

    def replace(desired: _KfpDesired, old: list) -> None:
        for run in old:
            client.delete_recurring_run(run.recurring_run_id)
        create(desired)

    conflicts = []
    for entry in (e for e in entries if "kfp" in e.targets):
        if entry.timezone and entry.timezone != kfp_timezone:
            raise ScheduleError(
                f"schedule {entry.name!r}: timezone {entry.timezone!r}, but KFP evaluates cron in "
                f"the scheduledworkflow controller's zone ({kfp_timezone}; set by "
                "CRON_SCHEDULE_TIMEZONE on ml-pipeline-scheduledworkflow) and has no per-run zone. "
                f"Pass --kfp-timezone {entry.timezone} if the controller runs in that zone, or "
                "limit the entry to targets: [vertex]."
            )
        cron = to_kfp_cron(entry.cron)
        plan.notes.append(f"{entry.name}: cron {entry.cron!r} -> KFP {cron!r}")
        spec = entry.spec_for("kfp", pipelines_dir)
        text = f"{KFP_MARKER} {spec.path.name} sha256:{spec.sha256[:12]}"
        desired = _KfpDesired(
            entry=entry,
            spec=spec,
            cron=cron,
            params=submit.coerce_parameters(spec, entry.parameters),
            description=f"{text}. {entry.description}" if entry.description else text,
            version=version_for(spec),
            experiment=experiment_for(entry.experiment),
            pipeline_root=pipeline_root or None,
            service_account=service_account or None,
        )
        same_name = by_name.pop(entry.name, [])
        if any(not _is_ours_kfp(r) for r in same_name):
            conflicts.append(entry.name)
            continue
        diffs = {r.recurring_run_id: desired.differences(r) for r in same_name}
        keep = next((r for r in same_name if not diffs[r.recurring_run_id]), None) or next(
            (r for r in same_name if diffs[r.recurring_run_id] == ["mode"]), None
        )
        if keep is None:
            plan.actions.append(Action.create_or_replace(
                entry.name, cron, diffs, request=desired.body,
                run=lambda desired=desired, old=same_name: replace(desired, old),
            ))
            continue
        for run in same_name:
            if run is not keep:
                plan.actions.append(Action(
                    "delete", entry.name, f"duplicate, id {run.recurring_run_id}",
                    run=lambda rid=run.recurring_run_id: client.delete_recurring_run(rid),
                ))
        rid = keep.recurring_run_id
        if not diffs[rid]:
            plan.actions.append(Action("unchanged", entry.name, f"id {rid}"))
        elif entry.enabled:
            plan.actions.append(Action("enable", entry.name, f"id {rid}",
                                       run=lambda rid=rid: client.enable_recurring_run(rid)))
        else:
            plan.actions.append(Action("disable", entry.name, f"id {rid}",
                                       run=lambda rid=rid: client.disable_recurring_run(rid)))
    if conflicts:
        raise ScheduleError(
            f"recurring run(s) {', '.join(repr(c) for c in conflicts)} exist but were not created "
            f"by this tool (description does not start with {KFP_MARKER!r}); rename the "
            "entries or delete those recurring runs first"
        )
    if prune:
        for name, runs in sorted(by_name.items()):
            for run in filter(_is_ours_kfp, runs):
                plan.actions.append(Action(
                    "delete", name, f"id {run.recurring_run_id}; not in schedules.yaml",
                    run=lambda rid=run.recurring_run_id: client.delete_recurring_run(rid),
                ))
    return plan
