"""A local stand-in for the Kubeflow Pipelines API server (REST v2beta1), for host tests.

It speaks the endpoints ``kfp.Client`` (kfp 2.17, kfp_server_api) calls, with the JSON shapes
the generated client parses (snake_case fields, ``recurringRuns`` in the recurring-run list,
int64 as strings), validates what the real server validates where our code could get it wrong
(6-field robfig cron, max_concurrency 1-10, both pipeline and version ids, unique names), and
records every request so tests can assert on the bodies.

    with FakeKfp() as kfp:
        client = kfp_lib.Client(host=kfp.url)
        ...
        kfp.requests  # [Request(method, path, query, headers, body, files), ...]
"""

from __future__ import annotations

import datetime
import email.parser
import email.policy
import itertools
import json
import re
from http.server import BaseHTTPRequestHandler
from typing import Any

import kfp_server_api
import yaml
from fake_http import ApiError, RecordingServer, Request

API = "/apis/v2beta1"
_EQUALS = (1, "EQUALS")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_robfig_cron(cron: str) -> None:
    """What KFP's API server accepts (robfig/cron v1 Parse): six fields, seconds first,
    day of week 0-6 (names allowed), '?' allowed in day fields."""
    fields = cron.split()
    if len(fields) != 6:
        raise ApiError(400, f"Invalid cron expression {cron!r}: expected 6 fields, found {len(fields)}")
    bounds = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]
    names = {3: {}, 4: {m: i + 1 for i, m in enumerate(
        "jan feb mar apr may jun jul aug sep oct nov dec".split())},
        5: {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}}
    for index, (text, (low, high)) in enumerate(zip(fields, bounds, strict=True)):
        for part in text.split(","):
            base = part.split("/")[0]
            if base in ("*", "?"):
                continue
            for token in base.split("-"):
                value = names.get(index, {}).get(token.lower())
                if value is None:
                    if not token.isdigit():
                        raise ApiError(400, f"Invalid cron expression {cron!r}: bad value {token!r}")
                    value = int(token)
                if not low <= value <= high:
                    raise ApiError(400, f"Invalid cron expression {cron!r}: {value} beyond [{low}, {high}]")


def _check_fields(body: dict, model, where: str) -> None:
    """Like the API server's JSON decoding: a field the proto does not have is a 400."""
    unknown = sorted(set(body) - set(model.attribute_map.values()))
    if unknown:
        raise ApiError(400, f"unknown field(s) {unknown} in {where}")


def _check_cron_schedule(schedule: dict) -> None:
    _check_fields(schedule, kfp_server_api.V2beta1CronSchedule, "trigger.cron_schedule")
    _check_robfig_cron(schedule.get("cron", ""))
    times = {}
    for key in ("start_time", "end_time"):
        if key in schedule:
            try:
                times[key] = datetime.datetime.fromisoformat(schedule[key].replace("Z", "+00:00"))
            except (AttributeError, ValueError):
                raise ApiError(400, f"{key} {schedule[key]!r} is not an RFC 3339 timestamp") from None
    if len(times) == 2 and times["end_time"] <= times["start_time"]:
        raise ApiError(400, "The end time should be after the start time")


class FakeKfp(RecordingServer):
    """The fake server; start with ``with FakeKfp() as kfp`` (binds 127.0.0.1, free port)."""

    def __init__(self, *, max_page_size: int = 100, multi_user: bool = False):
        self.max_page_size = max_page_size
        self.multi_user = multi_user
        super().__init__()
        self.pipelines: dict[str, dict] = {}
        self.versions: dict[str, dict] = {}
        self.version_files: dict[str, bytes] = {}  # version id -> uploaded bytes
        self.experiments: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self.recurring_runs: dict[str, dict] = {}
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------ lifecycle


    def add_recurring_run(self, **fields) -> dict:
        """Seeds a recurring run as if created by someone else (e.g. in the UI)."""
        run = {
            "recurring_run_id": self._id("rr"),
            "mode": "ENABLE",
            "max_concurrency": "1",
            "no_catchup": False,
            "created_at": _now(),
            "status": "ENABLED",
            **fields,
        }
        self.recurring_runs[run["recurring_run_id"]] = run
        return run

    # ------------------------------------------------------------------ HTTP

    def _id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):04d}"

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        request, raw = self.read(handler)
        content_type = handler.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            request.files = _parse_multipart(content_type, raw)
        elif raw:
            request.body = json.loads(raw)
        with self._lock:
            self.requests.append(request)
            try:
                status, payload = 200, self._route(request)
            except ApiError as exc:
                status, payload = exc.status, {"error": str(exc), "message": str(exc), "code": exc.status}
        self.reply(handler, status, payload)

    def _route(self, r: Request) -> Any:
        routes = [
            ("GET", r"/healthz", self._healthz),
            ("POST", r"/pipelines/upload", self._upload_pipeline),
            ("POST", r"/pipelines/upload_version", self._upload_version),
            ("GET", r"/pipelines", self._list_pipelines),
            ("GET", r"/pipelines/(?P<pid>[^/]+)", self._get_pipeline),
            ("GET", r"/pipelines/(?P<pid>[^/]+)/versions", self._list_versions),
            ("GET", r"/pipelines/(?P<pid>[^/]+)/versions/(?P<vid>[^/]+)", self._get_version),
            ("POST", r"/experiments", self._create_experiment),
            ("GET", r"/experiments", self._list_experiments),
            ("GET", r"/experiments/(?P<eid>[^/:]+)", self._get_experiment),
            ("POST", r"/runs", self._create_run),
            ("GET", r"/runs/(?P<rid>[^/:]+)", self._get_run),
            ("POST", r"/recurringruns", self._create_recurring_run),
            ("GET", r"/recurringruns", self._list_recurring_runs),
            ("GET", r"/recurringruns/(?P<rid>[^/:]+)", self._get_recurring_run),
            ("DELETE", r"/recurringruns/(?P<rid>[^/:]+)", self._delete_recurring_run),
            ("POST", r"/recurringruns/(?P<rid>[^/:]+):(?P<verb>enable|disable)", self._set_mode),
        ]
        for method, pattern, action in routes:
            match = re.fullmatch(API + pattern, r.path)
            if match and r.method == method:
                return action(r, **match.groupdict())
        raise ApiError(404, f"no route for {r.method} {r.path}")

    # ------------------------------------------------------------------ listing

    def _page(self, r: Request, items: list[dict], key: str) -> dict:
        items = _filtered(items, r.param("filter"))
        if r.param("namespace"):
            items = [i for i in items if i.get("namespace", "") in ("", r.param("namespace"))]
        size = min(int(r.param("page_size") or 20), self.max_page_size)
        start = int(r.param("page_token") or 0)
        page = items[start:start + size]
        response = {key: page, "total_size": len(items)}
        if start + size < len(items):
            response["next_page_token"] = str(start + size)
        return response

    # ------------------------------------------------------------------ endpoints

    def _healthz(self, r):
        return {"multi_user": self.multi_user}

    def _upload_pipeline(self, r):
        filename, content = _upload(r)
        name = r.param("display_name") or r.param("name") or filename
        if any(p["display_name"] == name for p in self.pipelines.values()):
            raise ApiError(409, "Failed to create a pipeline and a pipeline version")
        pipeline = {
            "pipeline_id": self._id("pipeline"),
            "name": r.param("name") or name,
            "display_name": name,
            "description": r.param("description") or "",
            "created_at": _now(),
            "namespace": r.param("namespace") or "",
        }
        self.pipelines[pipeline["pipeline_id"]] = pipeline
        # Like the real server: the first version takes the pipeline's name and description.
        self._add_version(pipeline["pipeline_id"], pipeline["name"], name, pipeline["description"], content)
        return pipeline

    def _upload_version(self, r):
        _, content = _upload(r)
        pipeline_id = r.param("pipelineid")
        if pipeline_id not in self.pipelines:
            raise ApiError(400, "Failed to create a pipeline version")
        name = r.param("display_name") or r.param("name")
        if any(v["pipeline_id"] == pipeline_id and v["display_name"] == name for v in self.versions.values()):
            raise ApiError(409, "Failed to create a pipeline version")
        return self._add_version(pipeline_id, r.param("name") or name, name, r.param("description") or "",
                                 content)

    def _add_version(self, pipeline_id, name, display_name, description, content):
        documents = list(yaml.safe_load_all(content))
        version = {
            "pipeline_id": pipeline_id,
            "pipeline_version_id": self._id("version"),
            "name": name,
            "display_name": display_name,
            "description": description,
            "created_at": _now(),
            "pipeline_spec": documents[0] if len(documents) == 1 else {
                "pipeline_spec": documents[0], "platform_spec": documents[1]},
        }
        self.versions[version["pipeline_version_id"]] = version
        self.version_files[version["pipeline_version_id"]] = content
        return version

    def _list_pipelines(self, r):
        return self._page(r, list(self.pipelines.values()), "pipelines")

    def _get_pipeline(self, r, pid):
        if pid not in self.pipelines:
            raise ApiError(404, f"pipeline {pid} not found")
        return self.pipelines[pid]

    def _list_versions(self, r, pid):
        self._get_pipeline(r, pid)
        versions = [v for v in self.versions.values() if v["pipeline_id"] == pid]
        return self._page(r, versions, "pipeline_versions")

    def _get_version(self, r, pid, vid):
        version = self.versions.get(vid)
        if not version or version["pipeline_id"] != pid:
            raise ApiError(404, f"pipeline version {vid} not found")
        return version

    def _create_experiment(self, r):
        body = r.body or {}
        if not body.get("display_name"):
            raise ApiError(400, "experiment display_name is required")
        if any(e["display_name"] == body["display_name"] for e in self.experiments.values()):
            raise ApiError(409, f"experiment {body['display_name']} already exists")
        experiment = {**body, "experiment_id": self._id("experiment"), "created_at": _now(),
                      "storage_state": "AVAILABLE"}
        self.experiments[experiment["experiment_id"]] = experiment
        return experiment

    def _list_experiments(self, r):
        return self._page(r, list(self.experiments.values()), "experiments")

    def _get_experiment(self, r, eid):
        if eid not in self.experiments:
            raise ApiError(404, f"experiment {eid} not found")
        return self.experiments[eid]

    def _check_source(self, body):
        reference = body.get("pipeline_version_reference")
        if bool(reference) == bool(body.get("pipeline_spec")):
            raise ApiError(400, "exactly one of pipeline_spec and pipeline_version_reference is required")
        if reference:
            version = self.versions.get(reference.get("pipeline_version_id"))
            if not version or version["pipeline_id"] != reference.get("pipeline_id"):
                raise ApiError(400, f"pipeline version {reference} not found")
        if body.get("experiment_id") not in self.experiments:
            raise ApiError(400, f"experiment {body.get('experiment_id')} not found")

    def _create_run(self, r):
        body = dict(r.body or {})
        self._check_source(body)
        run = {**body, "run_id": self._id("run"), "state": "PENDING", "created_at": _now()}
        self.runs[run["run_id"]] = run
        return run

    def _get_run(self, r, rid):
        if rid not in self.runs:
            raise ApiError(404, f"run {rid} not found")
        return self.runs[rid]

    def _create_recurring_run(self, r):
        body = dict(r.body or {})
        _check_fields(body, kfp_server_api.V2beta1RecurringRun, "the recurring run")
        trigger = body.get("trigger") or {}
        _check_fields(trigger, kfp_server_api.V2beta1Trigger, "trigger")
        if "cron_schedule" in trigger:
            _check_cron_schedule(trigger["cron_schedule"])
        elif "periodic_schedule" not in trigger:
            raise ApiError(400, "a trigger is required")
        self._check_source(body)
        concurrency = int(body.get("max_concurrency") or 0)
        if not 1 <= concurrency <= 10:
            raise ApiError(400, f"max concurrency of a recurring run must be in [1, 10], got {concurrency}")
        run = {
            **body,
            "recurring_run_id": self._id("rr"),
            "max_concurrency": str(concurrency),  # int64 -> JSON string
            "no_catchup": bool(body.get("no_catchup")),
            "created_at": _now(),
            "status": "ENABLED" if body.get("mode") == "ENABLE" else "DISABLED",
        }
        self.recurring_runs[run["recurring_run_id"]] = run
        return run

    def _list_recurring_runs(self, r):
        runs = list(self.recurring_runs.values())
        if r.param("experiment_id"):
            runs = [x for x in runs if x.get("experiment_id") == r.param("experiment_id")]
        return self._page(r, runs, "recurringRuns")

    def _get_recurring_run(self, r, rid):
        if rid not in self.recurring_runs:
            raise ApiError(404, f"recurring run {rid} not found")
        return self.recurring_runs[rid]

    def _delete_recurring_run(self, r, rid):
        if self.recurring_runs.pop(rid, None) is None:
            raise ApiError(404, f"recurring run {rid} not found")
        return {}

    def _set_mode(self, r, rid, verb):
        run = self._get_recurring_run(r, rid)
        run["mode"] = "ENABLE" if verb == "enable" else "DISABLE"
        run["status"] = "ENABLED" if verb == "enable" else "DISABLED"
        return {}


def _filtered(items: list[dict], filter_text: str | None) -> list[dict]:
    """Applies a v2beta1 Filter (as kfp sends it: JSON, EQUALS on a string field)."""
    if not filter_text:
        return items
    predicates = json.loads(filter_text).get("predicates", [])
    for predicate in predicates:
        if predicate.get("operation") not in _EQUALS:
            raise ApiError(400, f"fake supports EQUALS only, got {predicate}")
        key, value = predicate["key"], predicate.get("stringValue", predicate.get("string_value"))
        items = [i for i in items if i.get(key) == value]
    return items


def _upload(r: Request) -> tuple[str, bytes]:
    if "uploadfile" not in r.files:
        raise ApiError(400, "Failed to read pipeline from file")
    return r.files["uploadfile"]


def _parse_multipart(content_type: str, raw: bytes) -> dict[str, tuple[str, bytes]]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    files = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        files[name] = (part.get_filename() or "", part.get_payload(decode=True))
    return files
