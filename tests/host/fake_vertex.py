"""A local stand-in for the Vertex AI REST API (v1) and the one Cloud Storage call
``PipelineJob.submit()`` makes, for host tests.

The real ``google-cloud-aiplatform`` SDK talks to it when initialised with
``aiplatform.init(api_endpoint=fake.url, api_transport="rest")``, and google-cloud-storage
with ``STORAGE_EMULATOR_HOST=fake.url``. Endpoints: pipelineJobs.create, schedules
create/list/get/patch/delete/pause/resume, operations.get, storage buckets.get. Every request
is recorded (camelCase JSON bodies, as sent).
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import json
import re
from http.server import BaseHTTPRequestHandler

from fake_http import ApiError, RecordingServer, Request

_LOCATION = r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeVertex(RecordingServer):
    def __init__(self, *, max_page_size: int = 100):
        self.max_page_size = max_page_size
        super().__init__()
        self.pipeline_jobs: dict[str, dict] = {}
        self.schedules: dict[str, dict] = {}
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
        body = dict(r.body or {})
        job_id = r.param("pipelineJobId") or f"job-{next(self._ids)}"
        root = body.get("runtimeConfig", {}).get("gcsOutputDirectory", "")
        if not root.startswith("gs://"):
            raise ApiError(400, "runtimeConfig.gcsOutputDirectory must be a gs:// URI")
        job = {**body, "name": f"projects/{project}/locations/{location}/pipelineJobs/{job_id}",
               "state": "PIPELINE_STATE_PENDING", "createTime": _now()}
        self.pipeline_jobs[job["name"]] = job
        return job

    def _create_schedule(self, r, project, location):
        body = dict(r.body or {})
        cron = body.get("cron", "")
        fields = re.sub(r"^(CRON_)?TZ=\S+\s+", "", cron).split()
        if len(fields) != 5:
            raise ApiError(400, f"Invalid cron {cron!r}: Vertex AI expects 5 fields with optional TZ=")
        if "createPipelineJobRequest" not in body:
            raise ApiError(400, "createPipelineJobRequest is required")
        name = f"projects/{project}/locations/{location}/schedules/{next(self._ids)}"
        schedule = {**body, "name": name, "state": "ACTIVE", "createTime": _now()}
        self.schedules[name] = schedule
        return schedule

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
        mask = [p for p in (r.param("updateMask") or "").split(",") if p]
        if not mask:
            raise ApiError(400, "updateMask is required")
        for path in mask:
            key = re.sub(r"_(\w)", lambda m: m.group(1).upper(), path)
            if key in (r.body or {}):
                schedule[key] = r.body[key]
        schedule["updateTime"] = _now()
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
        schedule["state"] = "PAUSED" if verb == "pause" else "ACTIVE"
        if verb == "resume":
            schedule["catchUp"] = bool((r.body or {}).get("catchUp"))
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
