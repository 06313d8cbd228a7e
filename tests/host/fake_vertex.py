"""A local stand-in for the Vertex AI REST API (v1) and the one Cloud Storage call
``PipelineJob.submit()`` makes, for host tests.

The real ``google-cloud-aiplatform`` SDK talks to it when initialised with
``aiplatform.init(api_endpoint=fake.url, api_transport="rest")``, and google-cloud-storage
with ``STORAGE_EMULATOR_HOST=fake.url``. Endpoints: pipelineJobs create/get, schedules
create/list/get/patch/delete/pause/resume, operations.get, the metadata calls Vertex AI
Experiments make (metadataStores.get, contexts get/create/addContextChildren), the Model
Registry (models.upload as a long-running operation, models.list / get / listVersions with
filters, mergeVersionAliases), custom jobs (create/get/list with label filters/cancel, their
states advancing one step per read), storage buckets.get. Every request is recorded (camelCase
JSON bodies, as sent).

Strict like the real API where our code could get it wrong: every request body is parsed into
its v1 proto message (``google.cloud.aiplatform_v1`` types), so an unknown field name or a
wrongly typed value is a 400 "Invalid JSON payload", as the real front end answers; update
masks must name fields of the message. Model versions follow the registry's rules: a version
alias is on at most one version of a model (uploading or merging it moves it there), exactly
one version carries ``default`` (the first always does), aliases and labels have Vertex's
formats, and ``FakeVertex(projects={...})`` answers 403 for any other project. Custom jobs
follow the v1 rules our launcher could break: a display name, at least one worker pool, pool 0
with exactly one replica, a machine type and a container image in every pool that has
replicas, accelerators with a count, a gs:// base output directory; cancelling a job that has
ended is a 400 (FAILED_PRECONDITION). The fake runs no container: on success it calls
``on_job_succeeded(job)``, where a test writes what the job's chief would have written.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import json
import re
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote

from fake_http import ApiError, RecordingServer, Request
from google.cloud.aiplatform_v1 import types
from google.protobuf import json_format

_LOCATION = r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
_MODEL = _LOCATION + r"/models/(?P<mid>[^/:@]+)"
_CUSTOM_JOB = _LOCATION + r"/customJobs/(?P<jid>[^/:]+)"
JOB_PLAN = ("JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED")
"""The states a custom job reports on its reads after creation (JOB_STATE_QUEUED); the last stays."""
_TYPE = "type.googleapis.com/google.cloud.aiplatform.v1."
_ALIAS = re.compile(r"[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]")
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
# The filter forms the Model Registry documents for models.list / listVersions, joined by AND.
_FILTER_TERM = re.compile(
    r'\s*(?:labels\.(?P<key>[\w-]+)\s*=\s*(?P<value>"(?:[^"\\]|\\.)*"|[\w-]+)'
    r'|(?:display_name|displayName)\s*=\s*(?P<display>"(?:[^"\\]|\\.)*"))\s*'
)


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
    def __init__(self, *, max_page_size: int = 100, projects: set[str] | None = None):
        self.max_page_size = max_page_size
        self.projects = projects  # None: every project exists and may be used
        super().__init__()
        self.pipeline_jobs: dict[str, dict] = {}
        self.schedules: dict[str, dict] = {}
        self.contexts: dict[str, dict] = {}  # metadata contexts: experiments, pipeline runs
        self.models: dict[str, list[dict]] = {}  # model name -> its versions, oldest first
        self.operations: dict[str, dict] = {}  # long-running operations not yet polled
        self.upload_error: str = ""  # when set, every upload operation ends with this error
        self.custom_jobs: dict[str, dict] = {}
        self._plans: dict[str, list[str]] = {}  # each job's states still to come
        self.job_plan: tuple[str, ...] = JOB_PLAN  # what new custom jobs go through
        self.job_error: str = ""  # the error message of a job whose plan ends JOB_STATE_FAILED
        self.on_job_succeeded = None  # called with a job as it succeeds (the chief's outputs)
        self.on_job_state = None  # called with a job after each read that changed its state
        self.unavailable_job_reads = 0  # this many next reads of a custom job answer 503
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
                code = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                        409: "ALREADY_EXISTS", 503: "UNAVAILABLE"}.get(exc.status)
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
            ("POST", _LOCATION + r"/models:upload", self._upload_model),
            ("GET", _LOCATION + r"/models", self._list_models),
            ("GET", _MODEL + r"(?:@(?P<version>[^/:]+))?", self._get_model),
            ("GET", _MODEL + r":listVersions", self._list_versions),
            ("POST", _MODEL + r"@(?P<version>[^/:]+):mergeVersionAliases", self._merge_version_aliases),
            # The REST operations client polls at /ui/..., the first of its two HTTP rules.
            ("GET", r"/(?:v1|ui)" + _MODEL[len("/v1"):] + r"/operations/(?P<oid>[^/]+)",
             self._get_model_operation),
            ("POST", _LOCATION + r"/customJobs", self._create_custom_job),
            ("GET", _LOCATION + r"/customJobs", self._list_custom_jobs),
            ("GET", _CUSTOM_JOB, self._get_custom_job),
            ("POST", _CUSTOM_JOB + r":cancel", self._cancel_custom_job),
            ("GET", r"/storage/v1/b/(?P<bucket>[^/]+)", self._get_bucket),
        ]
        path = unquote(r.path)  # a version's name is models/<id>@<version>, sent as %40
        for method, pattern, action in routes:
            match = re.fullmatch(pattern, path)
            if match and r.method == method:
                project = match.groupdict().get("project")
                if self.projects is not None and project is not None and project not in self.projects:
                    raise ApiError(
                        403, f"Permission denied on resource project {project} (or it may not exist).")
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

    # ------------------------------------------------------------------ Model Registry

    def _versions(self, name: str) -> list[dict]:
        if name not in self.models:
            raise ApiError(404, f"Model {name} not found.")
        return self.models[name]

    @staticmethod
    def _check_labels(labels: dict) -> None:
        for key, value in labels.items():
            if not _LABEL_KEY.fullmatch(key) or not _LABEL_VALUE.fullmatch(value):
                raise ApiError(400, f"Invalid label {key!r}: {value!r}. Keys and values can be no longer "
                                    "than 63 characters, and contain only lowercase letters, numbers, "
                                    "underscores and dashes; keys start with a letter.")

    @staticmethod
    def _check_alias(alias: str) -> None:
        if not _ALIAS.fullmatch(alias):
            raise ApiError(400, f"Invalid version alias {alias!r}: expected {_ALIAS.pattern}.")

    @staticmethod
    def _give(versions: list[dict], target: dict, alias: str) -> None:
        """Puts ``alias`` on ``target``, taking it off whichever version had it (one per model)."""
        for version in versions:
            if alias in version["versionAliases"] and version is not target:
                version["versionAliases"].remove(alias)
                version["versionUpdateTime"] = _now()
        if alias not in target["versionAliases"]:
            target["versionAliases"].append(alias)

    def _upload_model(self, r, project, location):
        body = _parsed(r.body, types.UploadModelRequest)
        model = dict(body.get("model") or {})
        if not model.get("displayName"):
            raise ApiError(400, "model.display_name is required.")
        if body.get("parentModel") and body.get("modelId"):
            raise ApiError(400, "parent_model and model_id cannot both be set.")
        artifact = model.get("artifactUri", "")
        if artifact and not artifact.startswith("gs://"):
            raise ApiError(400, f"artifact_uri {artifact!r} must be a Cloud Storage URI (gs://).")
        if artifact and not (model.get("containerSpec") or {}).get("imageUri"):
            raise ApiError(400, "container_spec.image_uri is required for a model with artifact_uri.")
        self._check_labels(model.get("labels") or {})
        aliases = list(model.get("versionAliases") or [])
        for alias in aliases:
            self._check_alias(alias)
        if len(set(aliases)) != len(aliases):
            raise ApiError(400, f"Duplicate version aliases {aliases}.")
        location_name = f"projects/{project}/locations/{location}"
        parent = body.get("parentModel", "")
        if parent:
            if not parent.startswith(location_name + "/models/") or "@" in parent:
                raise ApiError(
                    400, f"parent_model {parent!r} must be a model of {location_name}, without a version.")
            self._versions(parent)
            name = parent
        else:
            model_id = body.get("modelId") or str(next(self._ids))
            name = f"{location_name}/models/{model_id}"
            if name in self.models:
                raise ApiError(409, f"Model {name} already exists.")
        operation = {
            "name": f"{name}/operations/{next(self._ids)}",
            "metadata": {"@type": _TYPE + "UploadModelOperationMetadata",
                         "genericMetadata": {"createTime": _now(), "updateTime": _now()}},
            "done": False,
        }
        # Like Vertex: the version exists once the operation is done (here: when it is polled).
        self.operations[operation["name"]] = {
            "operation": operation, "commit": lambda: self._commit(name, model, aliases)}
        return operation

    def _commit(self, name: str, model: dict, aliases: list[str]) -> dict:
        versions = self.models.setdefault(name, [])
        now = _now()
        version_id = max((int(v["versionId"]) for v in versions), default=0) + 1
        version = {
            **model, "name": name, "versionId": str(version_id), "versionAliases": [],
            "createTime": versions[0]["createTime"] if versions else now, "updateTime": now,
            "versionCreateTime": now, "versionUpdateTime": now,
        }
        versions.append(version)
        for alias in (["default"] if len(versions) == 1 else []) + aliases:  # the first is the default
            self._give(versions, version, alias)
        return {"@type": _TYPE + "UploadModelResponse",
                "model": name, "modelVersionId": version["versionId"]}

    def _get_model_operation(self, r, project, location, mid, oid):
        name = f"projects/{project}/locations/{location}/models/{mid}/operations/{oid}"
        if name not in self.operations:
            raise ApiError(404, f"Operation {name} not found.")
        entry = self.operations[name]
        operation = entry["operation"]
        if not operation["done"]:
            operation["done"] = True
            if self.upload_error:
                operation["error"] = {"code": 3, "message": self.upload_error}
            else:
                operation["response"] = entry["commit"]()
        return operation

    @staticmethod
    def _unquoted(value: str) -> str:
        if value.startswith('"'):
            return re.sub(r"\\(.)", r"\1", value[1:-1])
        return value

    def _matches(self, item: dict, text: str) -> bool:
        """Whether ``item`` passes ``text``, a filter of the forms the API documents
        (``labels.k="v"``, ``labels.k=v``, ``display_name="x"``) joined by AND; others are 400s."""
        for term in re.split(r"\s+AND\s+", text.strip()) if text and text.strip() else []:
            match = _FILTER_TERM.fullmatch(term)
            if not match:
                raise ApiError(400, f"Unsupported filter: {text!r}.")
            if match["key"] is not None:
                if (item.get("labels") or {}).get(match["key"]) != self._unquoted(match["value"]):
                    return False
            elif item.get("displayName") != self._unquoted(match["display"]):
                return False
        return True

    def _page(self, r, items: list[dict]) -> dict:
        order = (r.param("orderBy") or "").strip()
        if order:
            field, _, direction = order.partition(" ")
            key = {"create_time": "createTime", "display_name": "displayName", "update_time": "updateTime"}
            key = key.get(field) or (field if field in key.values() else None)
            if key is None or direction.strip() not in ("", "desc"):
                raise ApiError(400, f"Unsupported order_by: {order!r}.")
            items = sorted(items, key=lambda i: i.get(key, ""), reverse=direction.strip() == "desc")
        size = min(int(r.param("pageSize") or 100), self.max_page_size)
        start = int(r.param("pageToken") or 0)
        response = {"models": items[start:start + size]}
        if start + size < len(items):
            response["nextPageToken"] = str(start + size)
        return response

    def _list_models(self, r, project, location):
        prefix = f"projects/{project}/locations/{location}/models/"
        # One entry per model: its default version, as the API lists them.
        defaults = [next(v for v in versions if "default" in v["versionAliases"])
                    for name, versions in self.models.items() if name.startswith(prefix)]
        return self._page(r, [m for m in defaults if self._matches(m, r.param("filter") or "")])

    def _get_model(self, r, project, location, mid, version=None):
        name = f"projects/{project}/locations/{location}/models/{mid}"
        versions = self._versions(name)
        wanted = version or "default"
        for item in versions:
            if item["versionId"] == wanted or wanted in item["versionAliases"]:
                return item
        raise ApiError(404, f"Model {name}@{wanted} not found.")

    def _list_versions(self, r, project, location, mid):
        versions = self._versions(f"projects/{project}/locations/{location}/models/{mid}")
        return self._page(r, [v for v in versions if self._matches(v, r.param("filter") or "")])

    def _merge_version_aliases(self, r, project, location, mid, version):
        body = _parsed(r.body, types.MergeVersionAliasesRequest)
        versions = self._versions(f"projects/{project}/locations/{location}/models/{mid}")
        if not version.isdigit():
            raise ApiError(400, f"The name must include a version ID, not {version!r}.")
        target = self._get_model(r, project, location, mid, version)
        changes = body.get("versionAliases") or []
        if not changes:
            raise ApiError(400, "version_aliases is required.")
        for change in changes:
            alias = change[1:] if change.startswith("-") else change
            self._check_alias(alias)
            if change.startswith("-"):
                if alias == "default":
                    raise ApiError(400, "The default alias cannot be removed; move it to another version.")
                if alias in target["versionAliases"]:
                    target["versionAliases"].remove(alias)
            else:
                self._give(versions, target, alias)
        target["versionUpdateTime"] = _now()
        return target

    # ------------------------------------------------------------------ custom jobs

    def _create_custom_job(self, r, project, location):
        body = _parsed(r.body, types.CustomJob)
        if not body.get("displayName"):
            raise ApiError(400, "custom_job.display_name is required.")
        spec = body.get("jobSpec") or {}
        pools = spec.get("workerPoolSpecs") or []
        if not pools:
            raise ApiError(400, "custom_job.job_spec.worker_pool_specs is required.")
        for index, pool in enumerate(pools):
            replicas = int(pool.get("replicaCount") or 0)
            if index == 0 and replicas != 1:
                raise ApiError(400, f"worker_pool_specs[0].replica_count must be 1 (chief), not {replicas}.")
            if not replicas:
                continue  # an empty pool keeps the later pools' indices
            machine = pool.get("machineSpec") or {}
            if not machine.get("machineType"):
                raise ApiError(400, f"worker_pool_specs[{index}].machine_spec.machine_type is required.")
            if bool(machine.get("acceleratorType")) != bool(machine.get("acceleratorCount")):
                raise ApiError(400, f"worker_pool_specs[{index}]: accelerator_type and accelerator_count "
                                    "must be set together.")
            if not (pool.get("containerSpec") or {}).get("imageUri"):
                raise ApiError(400, f"worker_pool_specs[{index}].container_spec.image_uri is required.")
        prefix = (spec.get("baseOutputDirectory") or {}).get("outputUriPrefix", "")
        if prefix and not prefix.startswith("gs://"):
            raise ApiError(400, f"base_output_directory {prefix!r} must be a Cloud Storage URI (gs://).")
        self._check_labels(body.get("labels") or {})
        name = f"projects/{project}/locations/{location}/customJobs/{next(self._ids)}"
        job = {**body, "name": name, "state": "JOB_STATE_QUEUED", "createTime": _now(), "updateTime": _now()}
        self.custom_jobs[name] = job
        self._plans[name] = list(self.job_plan)
        return job

    def _custom_job(self, project, location, jid) -> dict:
        name = f"projects/{project}/locations/{location}/customJobs/{jid}"
        if name not in self.custom_jobs:
            raise ApiError(404, f"CustomJob {name} not found.")
        return self.custom_jobs[name]

    def _get_custom_job(self, r, project, location, jid):
        if self.unavailable_job_reads:
            self.unavailable_job_reads -= 1
            raise ApiError(503, "The service is currently unavailable.")
        job = self._custom_job(project, location, jid)
        plan = self._plans[job["name"]]
        before = job["state"]
        if job["state"] == "JOB_STATE_CANCELLING":
            job.update(state="JOB_STATE_CANCELLED", error={"code": 1, "message": "CANCELED"})
        elif plan and job["state"] not in ("JOB_STATE_CANCELLED", "JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED"):
            job["state"] = plan.pop(0) if len(plan) > 1 else plan[0]
            if job["state"] == "JOB_STATE_RUNNING":
                job.setdefault("startTime", _now())
            if job["state"] == "JOB_STATE_FAILED":
                job["error"] = {"code": 3, "message": self.job_error or "The replica workerpool0-0 exited "
                                "with a non-zero status of 1."}
            if job["state"] == "JOB_STATE_SUCCEEDED" and self.on_job_succeeded:
                self.on_job_succeeded(job)
        if job["state"] != before:
            job["updateTime"] = _now()
            if self.on_job_state:
                self.on_job_state(job)
        return job

    def _list_custom_jobs(self, r, project, location):
        prefix = f"projects/{project}/locations/{location}/customJobs/"
        items = [j for n, j in self.custom_jobs.items() if n.startswith(prefix)]
        items = [j for j in items if self._matches(j, r.param("filter") or "")]
        size = min(int(r.param("pageSize") or 100), self.max_page_size)
        start = int(r.param("pageToken") or 0)
        response = {"customJobs": items[start:start + size]}
        if start + size < len(items):
            response["nextPageToken"] = str(start + size)
        return response

    def _cancel_custom_job(self, r, project, location, jid):
        _parsed(r.body, types.CancelCustomJobRequest)
        job = self._custom_job(project, location, jid)
        if job["state"] in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"):
            raise ApiError(400, f"Cannot cancel {job['name']}: it is in state {job['state']}.")
        job.update(state="JOB_STATE_CANCELLING", updateTime=_now())
        return {}

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
