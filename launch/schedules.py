"""Recurring runs as code: ``pipelines/schedules.yaml`` applied to Kubeflow Pipelines or Vertex AI.

One entry produces a KFP recurring run (6-field cron, seconds first) and/or a Vertex AI
PipelineJobSchedule (5-field cron, ``TZ=`` prefix). Applying is idempotent: an entry that
matches what is deployed is left alone, a changed one is replaced (KFP has no update API;
Vertex updates cron/concurrency in place), and ``prune`` deletes only what this tool created
(marked by a description prefix on KFP and a label on Vertex).
"""

from __future__ import annotations

import json
import logging
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from launch import submit

logger = logging.getLogger(__name__)

DEFAULT_FILE = submit.PIPELINES_DIR / "schedules.yaml"
TARGETS = ("kfp", "vertex")

# KFP recurring runs created by this tool start their description with this marker; Vertex
# schedules carry the label on their pipeline job. Only those are ever replaced or pruned.
KFP_MARKER = "[managed by launch schedules]"
VERTEX_MANAGED_LABEL = ("kfp-ct-managed-by", "launch-schedules")
VERTEX_SPEC_LABEL = "kfp-ct-spec-sha256"

ENTRY_KEYS = {
    "name", "pipeline", "cron", "timezone", "parameters", "max_concurrency", "catchup",
    "experiment", "targets", "enabled", "description",
}
DEFAULTS = {
    "timezone": None,
    "parameters": {},
    "max_concurrency": 1,
    "catchup": False,
    "experiment": "Default",
    "targets": list(TARGETS),
    "enabled": True,
    "description": "",
}
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class ScheduleError(ValueError):
    """schedules.yaml is invalid, or applying it would touch something this tool does not own."""


class CronError(ScheduleError):
    """A cron expression this tool cannot translate faithfully."""


# --------------------------------------------------------------------------- cron

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {m: i for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1)}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
# (name, low, high, names); day of week accepts 0-7 (0 and 7 are Sunday) on input.
_FIELDS = (
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)


def normalize_cron(expression: str) -> str:
    """Validates a standard 5-field cron and returns it in a form KFP and Vertex both read.

    Macros (@daily, @hourly, ...) are expanded, month and weekday names become numbers, and
    day-of-week 7 (Sunday) becomes 0, because KFP's parser (robfig/cron) only takes 0-6.
    Everything else is kept as written.

    Raises:
        CronError: not 5 fields (6-field KFP input included), or a field out of range.
    """
    if not isinstance(expression, str) or not expression.strip():
        raise CronError(f"cron must be a non-empty string like '0 3 * * *', got {expression!r}")
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise CronError(
                f"cron {expression!r}: unsupported macro; use one of {', '.join(MACROS)} or 5 fields"
            )
        text = MACROS[text.lower()]
    if re.match(r"^(CRON_)?TZ=", text, re.IGNORECASE):
        raise CronError(f"cron {expression!r}: put the time zone in the entry's 'timezone' key")
    fields = text.split(" ")
    if len(fields) == 6:
        raise CronError(
            f"cron {expression!r} has 6 fields; schedules.yaml takes the standard 5-field form "
            "(minute hour day-of-month month day-of-week). The seconds field KFP wants is added "
            "for you, e.g. '0 3 * * *' -> KFP '0 0 3 * * *'"
        )
    if len(fields) != 5:
        raise CronError(
            f"cron {expression!r} has {len(fields)} fields; expected 5 "
            "(minute hour day-of-month month day-of-week), e.g. '0 3 * * *'"
        )
    pairs = zip(fields, _FIELDS, strict=True)
    return " ".join(_normalize_field(value, *spec, expression=expression) for value, spec in pairs)


def _normalize_field(text, name, low, high, names, *, expression):
    def fail(reason):
        return CronError(f"cron {expression!r}: {name} field {text!r}: {reason}")

    def number(token, *, range_end=False):
        upper = token.upper()
        if names and upper in names:
            value = names[upper]
            return 7 if range_end and names is _DAYS and value == 0 else value
        if not token.isdigit():
            if token in ("?", "L", "W") or "#" in token or upper.endswith(("L", "W")):
                raise fail(f"{token!r} is not standard cron (Quartz syntax); use numbers, '*', ',', '-', '/'")
            raise fail(f"{token!r} is not a number" + (" or a name" if names else ""))
        value = int(token)
        if not low <= value <= high:
            raise fail(f"{value} is out of range {low}-{high}")
        return value

    out = []
    for part in text.split(","):
        if not part:
            raise fail("empty list element")
        base, slash, step_text = part.partition("/")
        step = None
        if slash:
            if not step_text.isdigit() or int(step_text) < 1:
                raise fail(f"step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            out.append(part)
            continue
        if "-" in base:
            first, _, last = base.partition("-")
            start, end = number(first), number(last, range_end=True)
            if start > end:
                raise fail(f"range {base!r} runs backwards")
        else:
            if step is not None:
                raise fail(f"a step needs a range or '*', e.g. '{base}-{high}/{step}' or '*/{step}'")
            start = end = number(base)
        values = list(range(start, end + 1, step or 1))
        if names is _DAYS and 7 in values:
            # Sunday as 7: list the days explicitly (0-6 only) rather than widening to '*',
            # which would change how day-of-month and day-of-week combine.
            out.extend(str(v) for v in sorted({0 if v == 7 else v for v in values}))
        elif start == end:
            out.append(str(start))
        else:
            out.append(f"{start}-{end}" + (f"/{step}" if step else ""))
    return ",".join(dict.fromkeys(out))


def to_kfp_cron(expression: str) -> str:
    """KFP's 6-field, seconds-first cron (robfig/cron) for a 5-field expression."""
    return f"0 {normalize_cron(expression)}"


def to_vertex_cron(expression: str, timezone: str | None = None) -> str:
    """Vertex AI's 5-field cron, with ``TZ=<zone>`` in front when a time zone is given."""
    cron = normalize_cron(expression)
    if timezone:
        check_timezone(timezone)
        return f"TZ={timezone} {cron}"
    return cron


def check_timezone(timezone: str) -> None:
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(
            f"unknown time zone {timezone!r}; use an IANA name such as 'UTC' or 'Europe/Berlin'"
        ) from exc


# --------------------------------------------------------------------------- the file


@dataclass(frozen=True)
class ScheduleEntry:
    name: str
    pipeline: Mapping[str, str]  # target -> spec reference
    cron: str
    timezone: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    max_concurrency: int = 1
    catchup: bool = False
    experiment: str = "Default"
    targets: tuple[str, ...] = TARGETS
    enabled: bool = True
    description: str = ""

    def spec_for(self, target: str, pipelines_dir: Path = submit.PIPELINES_DIR) -> submit.PipelineSpecFile:
        return submit.load_spec(submit.resolve_spec(self.pipeline[target], pipelines_dir))


def load_schedules(path: str | Path = DEFAULT_FILE) -> list[ScheduleEntry]:
    """Reads and validates schedules.yaml (structure, names, crons, time zones; not parameters,
    which need the specs: see :func:`validate`).

    Raises:
        ScheduleError: naming the entry and the bad key or value.
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ScheduleError(f"cannot read {path}: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("schedules"), list):
        raise ScheduleError(f"{path}: expected a mapping with a 'schedules' list")
    unknown_top = set(document) - {"defaults", "schedules"}
    if unknown_top:
        raise ScheduleError(f"{path}: unknown top-level keys {sorted(unknown_top)}; use defaults, schedules")
    defaults = dict(DEFAULTS)
    file_defaults = document.get("defaults") or {}
    bad = set(file_defaults) - (ENTRY_KEYS - {"name", "cron"})
    if bad:
        raise ScheduleError(f"{path}: unknown keys in defaults: {sorted(bad)}")
    defaults.update(file_defaults)

    entries, seen = [], set()
    for index, raw in enumerate(document["schedules"]):
        where = f"{path.name} schedules[{index}]"
        if not isinstance(raw, dict):
            raise ScheduleError(f"{where}: expected a mapping")
        unknown = set(raw) - ENTRY_KEYS
        if unknown:
            raise ScheduleError(
                f"{where}: unknown keys {sorted(unknown)}; allowed: {', '.join(sorted(ENTRY_KEYS))}"
            )
        values = {**defaults, **raw}
        for required in ("name", "pipeline", "cron"):
            if not values.get(required):
                raise ScheduleError(f"{where}: {required!r} is required")
        name = values["name"]
        where = f"{path.name} schedule {name!r}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise ScheduleError(
                f"{where}: name must be lowercase letters, digits and '-' (max 63), got {name!r}"
            )
        if name in seen:
            raise ScheduleError(f"{where}: duplicate name")
        seen.add(name)
        targets = values["targets"]
        targets = (targets,) if isinstance(targets, str) else tuple(targets or ())
        if not targets or set(targets) - set(TARGETS):
            raise ScheduleError(f"{where}: targets must be a subset of {list(TARGETS)}, got {list(targets)}")
        pipeline = values["pipeline"]
        if isinstance(pipeline, str):
            pipeline = {t: pipeline for t in targets}
        elif isinstance(pipeline, dict):
            missing = [t for t in targets if t not in pipeline]
            if missing or set(pipeline) - set(TARGETS):
                raise ScheduleError(
                    f"{where}: pipeline by target needs keys {list(targets)} (of {list(TARGETS)}), "
                    f"got {sorted(pipeline)}"
                )
        else:
            raise ScheduleError(f"{where}: pipeline must be a golden name or a mapping by target")
        max_concurrency = values["max_concurrency"]
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ScheduleError(
                f"{where}: max_concurrency must be a positive integer, got {max_concurrency!r}"
            )
        for key in ("catchup", "enabled"):
            if not isinstance(values[key], bool):
                raise ScheduleError(f"{where}: {key} must be true or false, got {values[key]!r}")
        if not isinstance(values["parameters"] or {}, dict):
            raise ScheduleError(f"{where}: parameters must be a mapping")
        if not isinstance(values["experiment"], str) or not values["experiment"]:
            raise ScheduleError(f"{where}: experiment must be a non-empty string")
        try:
            normalize_cron(values["cron"])
            if values["timezone"]:
                check_timezone(values["timezone"])
        except ScheduleError as exc:
            raise ScheduleError(f"{where}: {exc}") from exc
        entries.append(
            ScheduleEntry(
                name=name,
                pipeline=dict(pipeline),
                cron=values["cron"],
                timezone=values["timezone"] or None,
                parameters=dict(values["parameters"] or {}),
                max_concurrency=max_concurrency,
                catchup=values["catchup"],
                experiment=values["experiment"],
                targets=targets,
                enabled=values["enabled"],
                description=str(values["description"] or ""),
            )
        )
    return entries


def validate(
    entries: list[ScheduleEntry], pipelines_dir: Path = submit.PIPELINES_DIR
) -> list[str]:
    """Offline check of every entry against its spec(s); returns one line per entry and target.

    Raises:
        ScheduleError / SpecError / ParameterError / VertexSpecError: the first problem found.
    """
    lines = []
    for entry in entries:
        for target in entry.targets:
            try:
                spec = entry.spec_for(target, pipelines_dir)
                submit.coerce_parameters(spec, entry.parameters)
                if target == "vertex":
                    submit.check_vertex_compatible(spec, hint=_VERTEX_HINT)
                    cron = to_vertex_cron(entry.cron, entry.timezone)
                else:
                    cron = to_kfp_cron(entry.cron)
            except ValueError as exc:
                raise type(exc)(f"schedule {entry.name!r} ({target}): {exc}") from exc
            lines.append(f"{entry.name} [{target}] {spec.path.name}: cron {entry.cron!r} -> {cron!r}")
    return lines


_VERTEX_HINT = (
    " In schedules.yaml give the Vertex variant per target, e.g. "
    "pipeline: {kfp: training.yaml, vertex: training_vertex.yaml}."
)


# --------------------------------------------------------------------------- plans


@dataclass
class Action:
    """One step of a plan. ``kind``: unchanged, create, replace (delete + create), update,
    enable, disable, pause, resume, delete, upload, create-experiment."""

    kind: str
    name: str
    detail: str = ""
    request: Any = None  # the request body (dict), or a callable returning it when printed
    run: Any = field(default=None, repr=False)  # performs the step

    @property
    def changes(self) -> bool:
        return self.kind != "unchanged"

    def payload(self) -> dict | None:
        return self.request() if callable(self.request) else self.request

    def describe(self, dry_run: bool = False) -> str:
        verb = self.kind if self.kind == "unchanged" else ("would " if dry_run else "") + self.kind
        return f"{verb}: {self.name}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class Plan:
    target: str
    notes: list[str] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    @property
    def changes(self) -> list[Action]:
        return [a for a in self.actions if a.changes]

    def execute(self, report=None) -> None:
        """Runs the actions in order; ``report(action)`` is called before each one."""
        for action in self.actions:
            if report is not None:
                report(action)
            if action.run is not None:
                logger.info("%s", action.describe())
                action.run()


def _json_equal(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _numbers_as_floats(value: Any) -> Any:
    """Protobuf Values carry every number as a double; compare parameters the same way."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, list):
        return [_numbers_as_floats(v) for v in value]
    if isinstance(value, dict):
        return {k: _numbers_as_floats(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------- Kubeflow Pipelines


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
            "trigger": {"cron_schedule": {"cron": self.cron}},
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

    def differences(self, run) -> list[str]:
        """Fields in which a listed recurring run differs from this entry."""
        out = []
        cron = run.trigger.cron_schedule.cron if run.trigger and run.trigger.cron_schedule else None
        if cron != self.cron:
            out.append("cron")
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
            detail = f"cron {cron!r}"
            if same_name:
                changed = sorted({d for r in same_name for d in diffs[r.recurring_run_id]})
                detail += f"; changed: {', '.join(changed)}"
            plan.actions.append(Action(
                "replace" if same_name else "create", entry.name, detail, request=desired.body,
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


# --------------------------------------------------------------------------- Vertex AI


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
    ``kfp-ct-managed-by=launch-schedules`` on the pipeline job). A changed cron or
    max_concurrency is updated in place; a changed pipeline, parameters, root, service account
    or network replaces the schedule (delete + create). ``enabled: false`` pauses it; resuming
    honours ``catchup``.

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
        return schedule._gca_resource.create_pipeline_job_request.pipeline_job.labels.get(key) == value

    by_name: dict[str, list] = {}
    for schedule in existing:
        by_name.setdefault(schedule.display_name, []).append(schedule)

    def create(schedule, entry, cron):
        schedule.create(
            cron=cron, max_concurrent_run_count=entry.max_concurrency,
            service_account=service_account, network=network,
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
        job = submit.build_pipeline_job(
            spec,
            project=project,
            region=region,
            pipeline_root=pipeline_root,
            credentials=credentials,
            parameters=entry.parameters,
            display_name=entry.name,
            labels={key: value, VERTEX_SPEC_LABEL: spec.sha256[:32]},
        )
        schedule = aiplatform.PipelineJobSchedule(
            pipeline_job=job, display_name=entry.name, credentials=credentials,
            project=project, location=region,
        )
        request = schedule_request(
            schedule, cron=cron, max_concurrent_run_count=entry.max_concurrency,
            service_account=service_account, network=network,
        )
        same_name = by_name.pop(entry.name, [])
        if any(not is_ours(s) for s in same_name):
            conflicts.append(entry.name)
            continue
        diffs = {s.resource_name: _vertex_differences(s._gca_resource, schedule._gca_resource)
                 for s in same_name}
        updatable = {"cron", "max_concurrent_run_count"}
        keep = next((s for s in same_name if not set(diffs[s.resource_name]) - updatable), None)
        if keep is None:
            detail = f"cron {cron!r}"
            if same_name:
                changed = sorted({d for s in same_name for d in diffs[s.resource_name]})
                detail += f"; changed: {', '.join(changed)}"
            plan.actions.append(Action(
                "replace" if same_name else "create", entry.name, detail, request=request,
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
            fields = {}
            if "cron" in changed:
                fields["cron"] = cron
            if "max_concurrent_run_count" in changed:
                fields["max_concurrent_run_count"] = entry.max_concurrency
            updated = gca_schedule.Schedule.deserialize(gca_schedule.Schedule.serialize(keep._gca_resource))
            for name, new in fields.items():
                setattr(updated, name, new)
            plan.actions.append(Action(
                "update", entry.name, f"{keep.resource_name}: {', '.join(changed)}",
                request=submit.message_to_json(schedule_service.UpdateScheduleRequest(
                    schedule=updated, update_mask={"paths": list(fields)})),
                run=lambda keep=keep, fields=fields: keep.update(**fields),
            ))
        state = keep._gca_resource.state
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


def apply(plan: Plan, *, dry_run: bool = False, report=None) -> Plan:
    """Executes a plan unless ``dry_run``; returns it for reporting."""
    if not dry_run:
        plan.execute(report)
    return plan


def schedule_request(
    schedule, *, cron: str, max_concurrent_run_count: int,
    service_account: str | None = None, network: str | None = None,
) -> dict:
    """The CreateScheduleRequest ``schedule.create(...)`` sends, as JSON.

    Sets the same fields on the SDK object that ``PipelineJobSchedule._create`` sets, so that
    the printed request and the sent one agree.
    """
    from google.cloud.aiplatform.compat.types import schedule_service

    resource = schedule._gca_resource
    resource.cron = cron
    resource.max_concurrent_run_count = max_concurrent_run_count
    if service_account:
        resource.create_pipeline_job_request.pipeline_job.service_account = service_account
    if network:
        resource.create_pipeline_job_request.pipeline_job.network = network
    return submit.message_to_json(
        schedule_service.CreateScheduleRequest(parent=schedule._parent, schedule=resource)
    )


def _vertex_differences(current, desired) -> list[str]:
    differences = []
    if current.cron != desired.cron:
        differences.append("cron")
    if current.max_concurrent_run_count != desired.max_concurrent_run_count:
        differences.append("max_concurrent_run_count")
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
