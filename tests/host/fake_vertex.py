"""A local stand-in for the Vertex AI REST API (v1) and the one Cloud Storage call
``PipelineJob.submit()`` makes, for host tests.

The real ``google-cloud-aiplatform`` SDK talks to it when initialised with
``aiplatform.init(api_endpoint=fake.url, api_transport="rest")``, and google-cloud-storage
with ``STORAGE_EMULATOR_HOST=fake.url``. Endpoints: pipelineJobs create/get, schedules
create/list/get/patch/delete/pause/resume, operations.get, the metadata calls Vertex AI
Experiments make (metadataStores.get, contexts get/create/addContextChildren), storage
buckets.get. Every request is recorded (camelCase JSON bodies, as sent).

Strict like the real API where our code could get it wrong: every request body is parsed into
its v1 proto message (``google.cloud.aiplatform_v1`` types), so an unknown field name or a
wrongly typed value is a 400 "Invalid JSON payload", as the real front end answers; update
masks must name fields of the message.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import json
import re
from http.server import BaseHTTPRequestHandler

from fake_http import ApiError, RecordingServer, Request
from google.cloud.aiplatform_v1 import types
from google.protobuf import json_format

_LOCATION = r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parsed(body, message) -> dict:
    """``body`` checked against the proto-plus ``message`` type (400 on unknown names/types)."""
    try:
        json_format.ParseDict(body or {}, message.pb()())
    except json_format.ParseError as exc:
        raise ApiError(400, f"Invalid JSON payload received. {exc}") from None
    return dict(body or {})


def _timestamp(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


class FakeVertex(RecordingServer):
    def __init__(self, *, max_page_size: int = 100):
        self.max_page_size = max_page_size
        super().__init__()
        self.pipeline_jobs: dict[str, dict] = {}
        self.schedules: dict[str, dict] = {}
        self.contexts: dict[str, dict] = {}  # metadata contexts: experiments, pipeline runs
        self._ids = itertools.count(1)

    def add_schedule(self, project: str, location: str, **fields) -> dict:
        """Seeds a schedule as if created elsewhere (console, another tool)."""
        name = f"projects/{project}/locations/{location}/schedules/{next(self._ids)}"
        schedule = {"name": name, "state": "ACTIVE", "createTime": _now(), **fields}
        self.schedules[name] = schedule
        return schedule

    # ------------------------------------------------------------------ HTTP

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        request, raw = self.read(handler)
        request.body = json.loads(raw) if raw else None
        with self._lock:
            self.requests.append(request)
            try:
                status, payload = 200, self._route(request)
            except ApiError as exc:
                code = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ALREADY_EXISTS"}.get(exc.status)
                status, payload = exc.status, {
                    "error": {"code": exc.status, "message": str(exc), "status": code or "UNKNOWN"}}
        self.reply(handler, status, payload)

    def _route(self, r: Request):
        routes = [
            ("POST", _LOCATION + r"/pipelineJobs", self._create_job),
            ("GET", _LOCATION + r"/pipelineJobs/(?P<jid>[^/:]+)", self._get_job),
            ("GET", _LOCATION + r"/metadataStores/(?P<store>[^/:]+)", self._get_store),
            ("GET", _LOCATION + r"/metadataStores/default/contexts/(?P<cid>[^/:]+)", self._get_context),
            ("POST", _LOCATION + r"/metadataStores/default/contexts", self._create_context),
            ("POST", _LOCATION + r"/metadataStores/default/contexts/(?P<cid>[^/:]+):addContextChildren",
             self._add_context_children),
            ("POST", _LOCATION + r"/schedules", self._create_schedule),
            ("GET", _LOCATION + r"/schedules", self._list_schedules),
            ("GET", _LOCATION + r"/schedules/(?P<sid>[^/:]+)", self._get_schedule),
            ("PATCH", _LOCATION + r"/schedules/(?P<sid>[^/:]+)", self._patch_schedule),
            ("DELETE", _LOCATION + r"/schedules/(?P<sid>[^/:]+)", self._delete_schedule),
            ("POST", _LOCATION + r"/schedules/(?P<sid>[^/:]+):(?P<verb>pause|resume)", self._set_state),
            ("GET", _LOCATION + r"/operations/(?P<oid>[^/]+)", self._get_operation),
            ("GET", r"/storage/v1/b/(?P<bucket>[^/]+)", self._get_bucket),
        ]
        for method, pattern, action in routes:
            match = re.fullmatch(pattern, r.path)
            if match and r.method == method:
                return action(r, **match.groupdict())
        raise ApiError(404, f"no route for {r.method} {r.path}")

    def _create_job(self, r, project, location):
        body = _parsed(r.body, types.PipelineJob)
        job_id = r.param("pipelineJobId") or f"job-{next(self._ids)}"
        root = body.get("runtimeConfig", {}).get("gcsOutputDirectory", "")
        if not root.startswith("gs://"):
            raise ApiError(400, "runtimeConfig.gcsOutputDirectory must be a gs:// URI")
        store = f"projects/{project}/locations/{location}/metadataStores/default"
        # Like Vertex: the run's metadata context exists once the job does.
        run_context = {"name": f"{store}/contexts/{job_id}", "displayName": job_id,
                       "schemaTitle": "system.PipelineRun", "parentContexts": []}
        self.contexts[run_context["name"]] = run_context
        job = {**body, "name": f"projects/{project}/locations/{location}/pipelineJobs/{job_id}",
               "state": "PIPELINE_STATE_PENDING", "createTime": _now(),
               "jobDetail": {"pipelineRunContext": run_context}}
        self.pipeline_jobs[job["name"]] = job
        return job

    def _get_job(self, r, project, location, jid):
        name = f"projects/{project}/locations/{location}/pipelineJobs/{jid}"
        if name not in self.pipeline_jobs:
            raise ApiError(404, f"pipeline job {name} not found")
        return self.pipeline_jobs[name]

    def _get_store(self, r, project, location, store):
        if store != "default":
            raise ApiError(404, f"metadata store {store} not found")
        return {"name": f"projects/{project}/locations/{location}/metadataStores/default"}

    def _get_context(self, r, project, location, cid):
        name = f"projects/{project}/locations/{location}/metadataStores/default/contexts/{cid}"
        if name not in self.contexts:
            raise ApiError(404, f"context {name} not found")
        return self.contexts[name]

    def _create_context(self, r, project, location):
        body = _parsed(r.body, types.Context)
        cid = r.param("contextId")
        if not cid or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,127}", cid):
            raise ApiError(400, f"contextId must match [a-z0-9][a-z0-9-]{{0,127}}, got {cid!r}")
        name = f"projects/{project}/locations/{location}/metadataStores/default/contexts/{cid}"
        if name in self.contexts:
            raise ApiError(409, f"context {name} already exists")
        context = {**body, "name": name, "createTime": _now()}
        self.contexts[name] = context
        return context

    def _add_context_children(self, r, project, location, cid):
        body = _parsed(r.body, types.AddContextChildrenRequest)
        parent = self._get_context(r, project, location, cid)["name"]
        for child in body.get("childContexts", []):
            if child not in self.contexts:
                raise ApiError(404, f"context {child} not found")
            self.contexts[child]["parentContexts"].append(parent)
        return {}

    def experiment_runs(self, experiment: str) -> list[str]:
        """Display names of the pipeline-run contexts associated with an experiment context."""
        return sorted(c["displayName"] for c in self.contexts.values()
                      if any(p.endswith(f"/contexts/{experiment}") for p in c.get("parentContexts", ())))

    def _create_schedule(self, r, project, location):
        body = _parsed(r.body, types.Schedule)
        cron = body.get("cron", "")
        fields = re.sub(r"^(CRON_)?TZ=\S+\s+", "", cron).split()
        if len(fields) != 5:
            raise ApiError(400, f"Invalid cron {cron!r}: Vertex AI expects 5 fields with optional TZ=")
        if "createPipelineJobRequest" not in body:
            raise ApiError(400, "createPipelineJobRequest is required")
        _parsed(body["createPipelineJobRequest"].get("pipelineJob"), types.PipelineJob)
        self._check_bounds(body)
        name = f"projects/{project}/locations/{location}/schedules/{next(self._ids)}"
        created = _now()
        # Output: startTime defaults to the creation time, as on Vertex.
        schedule = {"startTime": created, **body, "name": name, "state": "ACTIVE", "createTime": created}
        self.schedules[name] = schedule
        return schedule

    @staticmethod
    def _check_bounds(schedule: dict) -> None:
        if "maxRunCount" in schedule and int(schedule["maxRunCount"]) < 1:
            raise ApiError(400, f"maxRunCount must be positive, got {schedule['maxRunCount']}")
        if "startTime" in schedule and "endTime" in schedule and (
            _timestamp(schedule["endTime"]) <= _timestamp(schedule["startTime"])
        ):
            raise ApiError(400, "endTime must be after startTime")

    def _list_schedules(self, r, project, location):
        prefix = f"projects/{project}/locations/{location}/"
        items = [s for s in self.schedules.values() if s["name"].startswith(prefix)]
        size = min(int(r.param("pageSize") or 100), self.max_page_size)
        start = int(r.param("pageToken") or 0)
        response = {"schedules": items[start:start + size]}
        if start + size < len(items):
            response["nextPageToken"] = str(start + size)
        return response

    def _schedule(self, project, location, sid):
        name = f"projects/{project}/locations/{location}/schedules/{sid}"
        if name not in self.schedules:
            raise ApiError(404, f"schedule {name} not found")
        return self.schedules[name]

    def _get_schedule(self, r, project, location, sid):
        return self._schedule(project, location, sid)

    def _patch_schedule(self, r, project, location, sid):
        schedule = self._schedule(project, location, sid)
        body = _parsed(r.body, types.Schedule)
        mask = [p for p in (r.param("updateMask") or "").split(",") if p]
        if not mask:
            raise ApiError(400, "updateMask is required")
        fields = types.Schedule.pb().DESCRIPTOR.fields_by_camelcase_name
        updated = dict(schedule)
        for path in mask:
            key = re.sub(r"_(\w)", lambda m: m.group(1).upper(), path)
            if key not in fields:
                raise ApiError(400, f"updateMask path {path!r} is not a field of Schedule")
            if key in body:
                updated[key] = body[key]
            else:
                updated.pop(key, None)  # a masked field absent from the body is cleared
        self._check_bounds(updated)
        schedule.clear()
        schedule.update(updated, updateTime=_now())
        return schedule

    def _delete_schedule(self, r, project, location, sid):
        schedule = self._schedule(project, location, sid)
        del self.schedules[schedule["name"]]
        return {
            "name": f"projects/{project}/locations/{location}/operations/{next(self._ids)}",
            "done": True,
            "response": {"@type": "type.googleapis.com/google.protobuf.Empty"},
        }

    def _set_state(self, r, project, location, sid, verb):
        schedule = self._schedule(project, location, sid)
        message = types.PauseScheduleRequest if verb == "pause" else types.ResumeScheduleRequest
        body = _parsed(r.body, message)
        schedule["state"] = "PAUSED" if verb == "pause" else "ACTIVE"
        if verb == "resume":
            schedule["catchUp"] = bool(body.get("catchUp"))
        return {}

    def _get_operation(self, r, project, location, oid):
        return {"name": f"projects/{project}/locations/{location}/operations/{oid}", "done": True}

    def _get_bucket(self, r, bucket):
        return {"kind": "storage#bucket", "name": bucket, "id": bucket, "location": "EU",
                "projectNumber": "123456789012"}


@contextlib.contextmanager
def sdk_pointed_at(fake: FakeVertex, monkeypatch):
    """The real aiplatform SDK talking REST to ``fake``; its global config restored afterwards."""
    from google.cloud import aiplatform
    from google.cloud.aiplatform import initializer

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake.url)  # submit() checks the root bucket
    saved = dict(vars(initializer.global_config))
    aiplatform.init(api_endpoint=fake.url, api_transport="rest")
    try:
        yield fake
    finally:
        vars(initializer.global_config).clear()
        vars(initializer.global_config).update(saved)
