"""Recurring runs as code: ``pipelines/schedules.yaml`` applied to Kubeflow Pipelines or Vertex AI.

One entry produces a KFP recurring run (6-field cron, seconds first) and/or a Vertex AI
PipelineJobSchedule (5-field cron, ``TZ=`` prefix). Applying is idempotent: an entry that
matches what is deployed is left alone, a changed one is replaced (KFP has no update API;
Vertex updates cron/concurrency in place), and ``prune`` deletes only what this tool created
(marked by a description prefix on KFP and a label on Vertex).
"""

from __future__ import annotations

import datetime
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from launch import submit

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_FILE", "KFP_MARKER", "TARGETS", "VERTEX_EXPERIMENT_LABEL", "VERTEX_MANAGED_LABEL",
    "VERTEX_SPEC_LABEL",
    "Action", "CronError", "Plan", "ScheduleEntry", "ScheduleError", "apply", "check_timezone",
    "load_schedules", "normalize_cron", "plan_kfp", "plan_vertex", "schedule_request",
    "to_kfp_cron", "to_vertex_cron", "validate",
]

DEFAULT_FILE = submit.PIPELINES_DIR / "schedules.yaml"
TARGETS = ("kfp", "vertex")

# KFP recurring runs created by this tool start their description with this marker; Vertex
# schedules carry the label on their pipeline job. Only those are ever replaced or pruned.
KFP_MARKER = "[managed by launch schedules]"
VERTEX_MANAGED_LABEL = ("kfp-ct-managed-by", "launch-schedules")
VERTEX_SPEC_LABEL = "kfp-ct-spec-sha256"
# Vertex's Schedule API has no experiment field (googleapis/python-aiplatform#2340): the
# experiment an entry names rides on its runs as this label (see launch.schedules.vertex).
VERTEX_EXPERIMENT_LABEL = "kfp-ct-vertex-experiment"

ENTRY_KEYS = {
    "name", "pipeline", "cron", "timezone", "parameters", "max_concurrency", "catchup",
    "experiment", "targets", "enabled", "description", "start_time", "end_time",
    "max_run_count", "allow_queueing", "vertex_experiment",
}
# Vertex schedules have these; KFP recurring runs have no equivalent, so an entry that also
# targets KFP is refused rather than run there without them.
VERTEX_ONLY = {
    "max_run_count": "cannot stop after a number of runs (end_time works on both)",
    "allow_queueing": "have no queue for runs past max_concurrency",
}
_MAX_INT64 = 2**63 - 1
DEFAULTS = {
    "timezone": None,
    "parameters": {},
    "max_concurrency": 1,
    "catchup": False,
    "experiment": "Default",
    "targets": list(TARGETS),
    "enabled": True,
    "description": "",
    "start_time": None,
    "end_time": None,
    "max_run_count": None,
    "allow_queueing": False,
    "vertex_experiment": None,
}
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class ScheduleError(ValueError):
    """schedules.yaml is invalid, or applying it would touch something this tool does not own."""


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
    start_time: datetime.datetime | None = None  # timezone-aware
    end_time: datetime.datetime | None = None
    max_run_count: int | None = None  # Vertex only
    allow_queueing: bool = False  # Vertex only
    vertex_experiment: str | None = None  # Vertex only

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
        for key in ("catchup", "enabled", "allow_queueing"):
            if not isinstance(values[key], bool):
                raise ScheduleError(f"{where}: {key} must be true or false, got {values[key]!r}")
        if not isinstance(values["parameters"] or {}, dict):
            raise ScheduleError(f"{where}: parameters must be a mapping")
        if not isinstance(values["experiment"], str) or not values["experiment"]:
            raise ScheduleError(f"{where}: experiment must be a non-empty string")
        start_time = _timestamp(values["start_time"], "start_time", where)
        end_time = _timestamp(values["end_time"], "end_time", where)
        if start_time and end_time and end_time <= start_time:
            raise ScheduleError(
                f"{where}: end_time {end_time.isoformat()} is not after start_time {start_time.isoformat()}"
            )
        if end_time and end_time <= datetime.datetime.now(datetime.timezone.utc):
            raise ScheduleError(
                f"{where}: end_time {end_time.isoformat()} is in the past; the schedule would never run"
            )
        max_run_count = values["max_run_count"]
        if max_run_count is not None and (
            isinstance(max_run_count, bool) or not isinstance(max_run_count, int)
            or not 1 <= max_run_count <= _MAX_INT64
        ):
            raise ScheduleError(f"{where}: max_run_count must be a positive integer, got {max_run_count!r}")
        if "kfp" in targets:
            for key, missing in VERTEX_ONLY.items():
                if values[key] not in (None, False):
                    raise ScheduleError(
                        f"{where}: {key} is Vertex AI only (KFP recurring runs {missing}); "
                        "give the entry targets: [vertex]"
                    )
        vertex_experiment = values["vertex_experiment"]
        try:
            submit.check_experiment(vertex_experiment)
        except submit.VertexSpecError as exc:
            raise ScheduleError(f"{where}: vertex_experiment: {exc}") from exc
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
                start_time=start_time,
                end_time=end_time,
                max_run_count=max_run_count,
                allow_queueing=values["allow_queueing"],
                vertex_experiment=vertex_experiment,
            )
        )
    return entries


def _timestamp(value: Any, key: str, where: str) -> datetime.datetime | None:
    """An RFC 3339 timestamp with its zone (YAML reads an unquoted one as a datetime)."""
    if value is None:
        return None
    example = "e.g. 2027-01-01T02:00:00Z or 2027-01-01T03:00:00+01:00"
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value)
        except ValueError:
            raise ScheduleError(f"{where}: {key} {value!r} is not a timestamp; {example}") from None
    if not isinstance(value, datetime.datetime):
        raise ScheduleError(f"{where}: {key} must be a timestamp with a time and zone, {example}; "
                            f"got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ScheduleError(f"{where}: {key} {value.isoformat()} has no zone; {example}")
    return value.astimezone(datetime.timezone.utc)


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


@dataclass
class Action:
    """One step of a plan. ``kind``: unchanged, create, replace (delete + create), update,
    enable, disable, pause, resume, delete, upload, create-experiment."""

    kind: str
    name: str
    detail: str = ""
    request: Any = None  # the request body (dict), or a callable returning it when printed
    run: Any = field(default=None, repr=False)  # performs the step

    @classmethod
    def create_or_replace(cls, name: str, cron: str, differences: Mapping[Any, list], **kwargs) -> Action:
        """Create when nothing of that name exists; otherwise replace the existing ones, each of
        which differs (``differences``: id -> fields) in something not updated in place."""
        detail = f"cron {cron!r}"
        if differences:
            changed = sorted({d for fields in differences.values() for d in fields})
            detail += f"; changed: {', '.join(changed)}"
        return cls("replace" if differences else "create", name, detail, **kwargs)

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


def rfc3339(value: datetime.datetime | None) -> str | None:
    """A UTC timestamp as both APIs write it: 2027-01-01T02:00:00Z."""
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


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


def apply(plan: Plan, *, dry_run: bool = False, report=None) -> Plan:
    """Executes a plan unless ``dry_run``; returns it for reporting."""
    if not dry_run:
        plan.execute(report)
    return plan


# The cron translation and each platform's reconciler live in their own modules; they use the
# definitions above, so they are imported last. This package's API is all of them.
from launch.schedules.cron import (  # noqa: E402
    CronError,
    check_timezone,
    normalize_cron,
    to_kfp_cron,
    to_vertex_cron,
)
from launch.schedules.kfp import plan_kfp  # noqa: E402
from launch.schedules.vertex import plan_vertex, schedule_request  # noqa: E402
