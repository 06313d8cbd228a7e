"""launch.schedules and `python -m launch schedules`: cron translation, the schedules file, and
idempotent apply against a local fake KFP API server and a local fake Vertex REST endpoint,
driven through the real kfp.Client and aiplatform SDK."""

from __future__ import annotations

import datetime
import json
import re

import pytest
import tiny_specs
import yaml
from fake_kfp import ApiError, FakeKfp, _check_robfig_cron
from fake_vertex import FakeVertex, sdk_pointed_at
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform

from launch import __main__ as cli
from launch import schedules, submit

pytestmark = pytest.mark.filterwarnings("ignore:This client only works:FutureWarning")

GOLDENS = sorted(submit.available_specs())
SINGLE_DOCUMENT = [
    name for name in GOLDENS
    if len([d for d in yaml.safe_load_all(submit.available_specs()[name].read_text()) if d]) == 1
]
PROJECT, REGION, ROOT = "acme-ml", "europe-west4", "gs://acme-pipelines/root"
SA = "ct-runner@acme-ml.iam.gserviceaccount.com"
NETWORK = "projects/123456789012/global/networks/ml-vpc"
VERTEX = dict(project=PROJECT, region=REGION, pipeline_root=ROOT)

# --------------------------------------------------------------------------- cron

CONVERSIONS = [
    ("0 3 * * *", "0 0 3 * * *"),
    ("* * * * *", "0 * * * * *"),
    ("0 9 * * 1-5", "0 0 9 * * 1-5"),
    ("*/15 * * * *", "0 */15 * * * *"),
    ("0 0,12 1,15 * *", "0 0 0,12 1,15 * *"),
    ("0-30/10 8-18/2 * * *", "0 0,10,20,30 8,10,12,14,16,18 * * *"),
    ("5/20 * * * *", "0 5,25,45 * * * *"),  # N/step: from N to the field's end (Debian cron)
    ("0 0-7 * * 0-7", "0 0 0-7 * * 0-6"),
    ("0 3 * * 7", "0 0 3 * * 0"),
    ("0 3 * * 5-7", "0 0 3 * * 0,5,6"),
    ("0 3 * * 0,7", "0 0 3 * * 0"),
    ("0 9 * * MON-FRI", "0 0 9 * * 1-5"),
    ("0 9 * * mon,wed,Fri", "0 0 9 * * 1,3,5"),
    ("0 9 * * SAT,SUN", "0 0 9 * * 0,6"),
    ("0 0 1 JAN,jul *", "0 0 0 1 1,7 *"),
    ("  0   3 * *  * ", "0 0 3 * * *"),
    ("@daily", "0 0 0 * * *"),
    ("@midnight", "0 0 0 * * *"),
    ("@hourly", "0 0 * * * *"),
    ("@weekly", "0 0 0 * * 0"),
    ("@monthly", "0 0 0 1 * *"),
    ("@yearly", "0 0 0 1 1 *"),
    ("@ANNUALLY", "0 0 0 1 1 *"),
]


@pytest.mark.parametrize(("cron", "kfp"), CONVERSIONS)
def test_five_field_cron_becomes_kfps_six_field_seconds_first_form(cron, kfp):
    assert schedules.to_kfp_cron(cron) == kfp
    _check_robfig_cron(kfp)  # what the KFP API server accepts (fake mirrors robfig/cron v1)
    assert schedules.to_vertex_cron(cron) == kfp[2:]  # Vertex: the same, without seconds


def test_vertex_cron_carries_the_time_zone():
    assert schedules.to_vertex_cron("0 3 * * *", "Europe/Berlin") == "TZ=Europe/Berlin 0 3 * * *"
    assert schedules.to_vertex_cron("@daily", "UTC") == "TZ=UTC 0 0 * * *"
    with pytest.raises(schedules.ScheduleError, match="unknown time zone 'Mars/Olympus'"):
        schedules.to_vertex_cron("0 3 * * *", "Mars/Olympus")


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 0 3 * * *", "has 6 fields; schedules.yaml takes the standard 5-field form"),
        ("0 0 9 ? * 2-6", "has 6 fields"),
        ("0 3 * *", "has 4 fields; expected 5"),
        ("every day", "has 2 fields"),
        ("61 * * * *", "minute field '61' is invalid; it takes 0-59"),
        ("* 24 * * *", "hour field '24' is invalid; it takes 0-23"),
        ("0 0 0 * *", "day of month field '0' is invalid; it takes 1-31"),
        ("0 0 31 2 *", "day of month field '31' is invalid; it takes 1-31 .a day the months given have"),
        ("0 0 * 13 *", "month field '13' is invalid; it takes 1-12 or JAN-DEC"),
        ("0 0 * * 8", "day of week field '8' is invalid; it takes 0-7 or SUN-SAT"),
        ("0 0 * * FUNDAY", "day of week field 'FUNDAY' is invalid"),
        ("0 9 * * SAT-SUN", "day of week field 'SAT-SUN' is invalid.*not backwards"),
        ("*/0 * * * *", "minute field '\\*/0' is invalid.*steps '/n' .n >= 1"),
        ("30-10 * * * *", "minute field '30-10' is invalid.*ranges 'low-high' .not backwards"),
        ("1,,2 * * * *", "minute field '1,,2' is invalid"),
        ("0 0 ? * MON", "day of month field '\\?' is Quartz syntax"),
        ("0 0 L * *", "day of month field 'L' is Quartz syntax"),
        ("0 0 LW * *", "day of month field 'LW' is Quartz syntax"),
        ("0 0 15W * *", "day of month field '15W' is Quartz syntax"),
        ("0 0 * * 5L", "day of week field '5L' is Quartz syntax"),
        ("0 0 * * 5#2", "day of week field '5#2' is Quartz syntax"),
        ("@reboot", "unsupported macro"),
        ("TZ=UTC 0 3 * * *", "put the time zone in the entry's 'timezone' key"),
        ("", "non-empty string"),
        (None, "non-empty string"),
    ],
)
def test_bad_cron_is_refused_with_the_reason(cron, message):
    with pytest.raises(schedules.CronError, match=message):
        schedules.to_kfp_cron(cron)


def test_the_fake_rejects_what_robfig_rejects():
    for bad in ("0 3 * * *", "0 0 3 * * 7"):
        with pytest.raises(ApiError):
            _check_robfig_cron(bad)


# --------------------------------------------------------------------------- the file


def write_schedules(path, entries, defaults=None):
    document = {"schedules": entries}
    if defaults:
        document["defaults"] = defaults
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_the_committed_schedules_file_is_valid_against_the_goldens():
    entries = schedules.load_schedules()
    assert entries, "pipelines/schedules.yaml lists no schedule"
    lines = schedules.validate(entries)
    assert len(lines) == sum(len(e.targets) for e in entries)
    for entry in entries:
        assert any(line.startswith(f"{entry.name} [") for line in lines)


def test_defaults_apply_and_entries_override_them(tmp_path):
    path = write_schedules(
        tmp_path / "s.yaml",
        [{"name": "a", "pipeline": GOLDENS[0], "cron": "@daily"},
         {"name": "b", "pipeline": GOLDENS[0], "cron": "@daily", "max_concurrency": 3, "targets": "kfp"}],
        defaults={"experiment": "ct", "max_concurrency": 2, "catchup": True},
    )
    a, b = schedules.load_schedules(path)
    assert (a.experiment, a.max_concurrency, a.catchup, a.targets) == ("ct", 2, True, ("kfp", "vertex"))
    assert (b.max_concurrency, b.targets, b.pipeline) == (3, ("kfp",), {"kfp": GOLDENS[0]})
    assert a.enabled is True and a.timezone is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"max_concurency": 2}, r"unknown keys \['max_concurency'\]"),
        ({"name": "Nightly"}, "name must be lowercase"),
        ({"cron": "0 0 3 * * *"}, "schedule 'n'.*has 6 fields"),
        ({"timezone": "Berlin"}, "unknown time zone 'Berlin'"),
        ({"targets": ["kfp", "airflow"]}, "targets must be a subset"),
        ({"pipeline": {"kfp": "x.yaml"}}, r"pipeline by target needs keys \['kfp', 'vertex'\]"),
        ({"max_concurrency": 0}, "max_concurrency must be a positive integer"),
        ({"catchup": "yes"}, "catchup must be true or false"),
        ({"parameters": ["rows", 5]}, "parameters must be a mapping"),
        ({"cron": None}, "'cron' is required"),
    ],
)
def test_bad_entries_are_refused_naming_the_entry(tmp_path, entry, message):
    base = {"name": "n", "pipeline": GOLDENS[0], "cron": "0 3 * * *"}
    path = write_schedules(tmp_path / "s.yaml", [{**base, **entry}])
    with pytest.raises(schedules.ScheduleError, match=message):
        schedules.load_schedules(path)


def test_vertex_schedule_options_are_read_with_their_zone(tmp_path):
    path = write_schedules(tmp_path / "s.yaml", [{
        "name": "bounded", "pipeline": GOLDENS[0], "cron": "@daily", "targets": ["vertex"],
        "start_time": "2030-01-01T03:00:00+01:00", "end_time": "2030-06-30T00:00:00Z",
        "max_run_count": 30, "allow_queueing": True, "vertex_experiment": "churn-nightly"}])
    # Unquoted, YAML reads a timestamp as a datetime; quoted, as a string: both are taken.
    path.write_text(path.read_text().replace("'2030-06-30T00:00:00Z'", "2030-06-30T00:00:00Z"))
    (entry,) = schedules.load_schedules(path)
    utc = datetime.timezone.utc
    assert entry.start_time == datetime.datetime(2030, 1, 1, 2, 0, tzinfo=utc)
    assert entry.end_time == datetime.datetime(2030, 6, 30, tzinfo=utc)
    assert (entry.max_run_count, entry.allow_queueing, entry.vertex_experiment) == (30, True, "churn-nightly")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"start_time": "2030-01-02T00:00:00Z", "end_time": "2030-01-01T00:00:00Z"},
         "end_time 2030-01-01T00:00:00\\+00:00 is not after start_time 2030-01-02"),
        ({"end_time": "2001-01-01T00:00:00Z"}, "end_time 2001-01-01.* is in the past"),
        ({"start_time": "2030-01-01T00:00:00"}, "start_time 2030-01-01T00:00:00 has no zone"),
        ({"start_time": "next monday"}, "start_time 'next monday' is not a timestamp"),
        ({"start_time": datetime.date(2030, 1, 1)}, "start_time must be a timestamp with a time and zone"),
        ({"max_run_count": 0}, "max_run_count must be a positive integer, got 0"),
        ({"max_run_count": True}, "max_run_count must be a positive integer, got True"),
        ({"max_run_count": "10"}, "max_run_count must be a positive integer, got '10'"),
        ({"allow_queueing": "yes"}, "allow_queueing must be true or false"),
        ({"vertex_experiment": "Churn_Nightly"}, "vertex_experiment: .*lowercase letters.*'Churn_Nightly'"),
        ({"targets": ["kfp", "vertex"], "max_run_count": 5},
         "max_run_count is Vertex AI only .KFP recurring runs cannot stop after a number of runs"),
        ({"targets": ["kfp"], "allow_queueing": True},
         "allow_queueing is Vertex AI only.*targets: \\[vertex\\]"),
    ],
)
def test_bad_vertex_schedule_options_are_refused_naming_the_value(tmp_path, fields, message):
    raw = {"name": "n", "pipeline": GOLDENS[0], "cron": "0 3 * * *", "targets": ["vertex"], **fields}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"schedules": [raw]}, sort_keys=False))
    with pytest.raises(schedules.ScheduleError, match=f"schedule 'n'.*{message}"):
        schedules.load_schedules(path)


def test_duplicate_names_are_refused(tmp_path):
    entry = {"name": "n", "pipeline": GOLDENS[0], "cron": "0 3 * * *"}
    with pytest.raises(schedules.ScheduleError, match="duplicate name"):
        schedules.load_schedules(write_schedules(tmp_path / "s.yaml", [entry, entry]))


def test_validate_checks_parameters_against_the_spec(tmp_path):
    bad = {"name": "n", "pipeline": GOLDENS[0], "cron": "@daily", "parameters": {"nope": 1}}
    path = write_schedules(tmp_path / "s.yaml", [bad])
    with pytest.raises(submit.ParameterError, match="schedule 'n' \\(kfp\\).*has no parameter 'nope'"):
        schedules.validate(schedules.load_schedules(path))


# --------------------------------------------------------------------------- Kubeflow Pipelines


@pytest.fixture
def kfp_server():
    with FakeKfp(max_page_size=1) as fake:  # page size 1: every list is paginated
        yield fake


@pytest.fixture
def client(kfp_server):
    return submit.kfp_client(kfp_server.url)


@pytest.fixture(scope="module")
def typed_spec(tmp_path_factory):
    return tiny_specs.compile_typed(tmp_path_factory.mktemp("typed") / "typed.yaml")


def entry(name, spec, **fields) -> dict:
    return {"name": name, "pipeline": str(spec), "cron": "0 3 * * *", **fields}


def apply_kfp(client, path, **options):
    plan = schedules.plan_kfp(client, schedules.load_schedules(path), **options)
    return schedules.apply(plan)


def kinds(plan) -> dict[str, str]:
    return {a.name: a.kind for a in plan.actions if a.kind not in ("upload", "create-experiment")}


def recurring_run_posts(server):
    return [r.body for r in server.calls("POST", r"/recurringruns$")]


@pytest.mark.parametrize("golden", GOLDENS)
def test_kfp_apply_creates_recurring_runs_from_each_golden_then_changes_nothing(
    golden, tmp_path, kfp_server, client
):
    path = submit.available_specs()[golden]
    spec = submit.load_spec(path)
    _, arguments = tiny_specs.sample_arguments(spec)
    file = write_schedules(tmp_path / "s.yaml", [
        entry("nightly", golden, parameters=arguments, max_concurrency=2, experiment="ct"),
        entry("weekly", golden, parameters=arguments, cron="30 4 * * MON-FRI", catchup=True, enabled=False),
    ])

    plan = apply_kfp(client, file)

    assert kinds(plan) == {"nightly": "create", "weekly": "create"}
    assert "nightly: cron '0 3 * * *' -> KFP '0 0 3 * * *'" in plan.notes
    (upload,) = kfp_server.calls("POST", "/pipelines/upload$")
    assert upload.files["uploadfile"][1] == path.read_bytes()
    version = next(iter(kfp_server.versions.values()))
    nightly, weekly = recurring_run_posts(kfp_server)
    assert nightly["display_name"] == "nightly"
    assert nightly["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * *"}}
    assert nightly["max_concurrency"] == 2
    assert nightly["no_catchup"] is True
    assert nightly["mode"] == "ENABLE"
    assert nightly["pipeline_version_reference"] == {
        "pipeline_id": version["pipeline_id"], "pipeline_version_id": version["pipeline_version_id"]}
    assert nightly["runtime_config"]["parameters"] == arguments
    assert nightly["description"].startswith(schedules.KFP_MARKER)
    assert kfp_server.experiments[nightly["experiment_id"]]["display_name"] == "ct"
    assert weekly["trigger"]["cron_schedule"]["cron"] == "0 30 4 * * 1-5"
    assert weekly["no_catchup"] is False and weekly["mode"] == "DISABLE"
    assert kfp_server.experiments[weekly["experiment_id"]]["display_name"] == "Default"

    kfp_server.clear()
    again = apply_kfp(client, file)
    assert kinds(again) == {"nightly": "unchanged", "weekly": "unchanged"}
    assert kfp_server.mutations() == []  # no create, no delete, no upload


def test_kfp_a_changed_entry_is_replaced_and_the_others_left_alone(tmp_path, kfp_server, client, typed_spec):
    entries = [entry("a", typed_spec, parameters={"name": "x", "count": 1}),
               entry("b", typed_spec, parameters={"name": "y"}),
               entry("c", typed_spec, parameters={"name": "z"})]
    apply_kfp(client, write_schedules(tmp_path / "s.yaml", entries))
    ids = {r["display_name"]: r["recurring_run_id"] for r in kfp_server.recurring_runs.values()}

    entries[0]["cron"] = "*/15 * * * *"
    entries[1]["parameters"] = {"name": "y", "count": "7"}
    kfp_server.clear()
    plan = apply_kfp(client, write_schedules(tmp_path / "s.yaml", entries))

    assert kinds(plan) == {"a": "replace", "b": "replace", "c": "unchanged"}
    assert "changed: cron" in next(a.detail for a in plan.actions if a.name == "a")
    assert "changed: parameters" in next(a.detail for a in plan.actions if a.name == "b")
    deleted = {r.path.rsplit("/", 1)[1] for r in kfp_server.calls("DELETE")}
    assert deleted == {ids["a"], ids["b"]}
    created = {b["display_name"]: b for b in recurring_run_posts(kfp_server)}
    assert created["a"]["trigger"]["cron_schedule"]["cron"] == "0 */15 * * * *"
    assert created["b"]["runtime_config"]["parameters"] == {"name": "y", "count": 7}
    assert len(kfp_server.mutations()) == 4  # two deletes, two creates: nothing else


def test_kfp_start_and_end_time_bound_the_trigger(tmp_path, kfp_server, client, typed_spec):
    bounded = entry("bounded", typed_spec, parameters={"name": "x"}, targets=["kfp"],
                    start_time="2030-01-01T03:00:00+01:00", end_time="2030-06-30T00:00:00Z")
    apply_kfp(client, write_schedules(tmp_path / "s.yaml", [bounded]))
    (created,) = recurring_run_posts(kfp_server)
    assert created["trigger"] == {"cron_schedule": {
        "cron": "0 0 3 * * *", "start_time": "2030-01-01T02:00:00Z", "end_time": "2030-06-30T00:00:00Z"}}

    kfp_server.clear()
    file = write_schedules(tmp_path / "s.yaml", [bounded])
    assert kinds(apply_kfp(client, file)) == {"bounded": "unchanged"}
    assert kfp_server.mutations() == []

    bounded["end_time"] = "2030-12-31T00:00:00Z"
    plan = apply_kfp(client, write_schedules(tmp_path / "s.yaml", [bounded]))
    assert kinds(plan) == {"bounded": "replace"}
    assert "changed: end_time" in plan.actions[-1].detail
    trigger = recurring_run_posts(kfp_server)[-1]["trigger"]
    assert trigger["cron_schedule"]["end_time"] == "2030-12-31T00:00:00Z"


def test_the_fake_kfp_refuses_unknown_fields_and_bad_times(kfp_server):
    import requests

    url = f"{kfp_server.url}/apis/v2beta1/recurringruns"
    for body, message in (
        ({"display_name": "x", "max_concurency": 1}, "unknown field.*max_concurency"),
        ({"trigger": {"cron_schedule": {"cron": "0 0 3 * * *", "start": "x"}}}, "unknown field.*start"),
        ({"trigger": {"cron_schedule": {"cron": "0 0 3 * * *", "start_time": "soon"}}}, "not an RFC 3339"),
        ({"trigger": {"cron_schedule": {"cron": "0 0 3 * * *", "start_time": "2030-01-02T00:00:00Z",
                                        "end_time": "2030-01-01T00:00:00Z"}}}, "end time should be after"),
    ):
        reply = requests.post(url, json=body, timeout=10)
        assert reply.status_code == 400 and re.search(message, reply.text), reply.text


def test_kfp_enabling_and_disabling_uses_the_mode_endpoints(tmp_path, kfp_server, client, typed_spec):
    entries = [entry("a", typed_spec, parameters={"name": "x"})]
    apply_kfp(client, write_schedules(tmp_path / "s.yaml", entries))
    (rid,) = kfp_server.recurring_runs
    entries[0]["enabled"] = False
    kfp_server.clear()
    assert kinds(apply_kfp(client, write_schedules(tmp_path / "s.yaml", entries))) == {"a": "disable"}
    assert [r.path for r in kfp_server.mutations()] == [f"/apis/v2beta1/recurringruns/{rid}:disable"]
    entries[0]["enabled"] = True
    kfp_server.clear()
    assert kinds(apply_kfp(client, write_schedules(tmp_path / "s.yaml", entries))) == {"a": "enable"}
    assert [r.path for r in kfp_server.mutations()] == [f"/apis/v2beta1/recurringruns/{rid}:enable"]


def test_kfp_a_recompiled_spec_uploads_a_version_and_replaces_its_schedules(tmp_path, kfp_server, client):
    golden = submit.available_specs()[GOLDENS[0]]
    spec_file = tmp_path / golden.name
    spec_file.write_bytes(golden.read_bytes())
    _, arguments = tiny_specs.sample_arguments(submit.load_spec(golden))
    file = write_schedules(tmp_path / "s.yaml", [entry("a", spec_file, parameters=arguments)])
    apply_kfp(client, file)
    old_version = next(iter(kfp_server.versions))

    spec_file.write_bytes(golden.read_bytes() + b"# recompiled\n")
    kfp_server.clear()
    plan = apply_kfp(client, file)

    assert kinds(plan) == {"a": "replace"}
    (upload,) = kfp_server.calls("POST", "/pipelines/upload_version")
    assert upload.files["uploadfile"][1] == spec_file.read_bytes()
    (created,) = recurring_run_posts(kfp_server)
    new_version = created["pipeline_version_reference"]["pipeline_version_id"]
    assert new_version != old_version and new_version in kfp_server.versions


def test_kfp_prune_deletes_only_what_this_tool_created(tmp_path, kfp_server, client, typed_spec):
    users = kfp_server.add_recurring_run(display_name="hand-made", description="created in the UI",
                                         trigger={"cron_schedule": {"cron": "0 0 1 * * *"}})
    entries = [entry("keep", typed_spec, parameters={"name": "k"}),
               entry("drop", typed_spec, parameters={"name": "d"})]
    apply_kfp(client, write_schedules(tmp_path / "s.yaml", entries))
    ours = {r["display_name"]: r["recurring_run_id"] for r in kfp_server.recurring_runs.values()}

    file = write_schedules(tmp_path / "s.yaml", entries[:1])
    kfp_server.clear()
    assert kinds(apply_kfp(client, file)) == {"keep": "unchanged"}  # no --prune: nothing deleted
    assert kfp_server.mutations() == []

    plan = apply_kfp(client, file, prune=True)
    assert kinds(plan) == {"keep": "unchanged", "drop": "delete"}
    assert [r.path for r in kfp_server.mutations()] == [f"/apis/v2beta1/recurringruns/{ours['drop']}"]
    assert users["recurring_run_id"] in kfp_server.recurring_runs


def test_kfp_refuses_to_replace_a_recurring_run_it_did_not_create(tmp_path, kfp_server, client, typed_spec):
    kfp_server.add_recurring_run(display_name="nightly", description="mine, from the UI")
    file = write_schedules(tmp_path / "s.yaml", [entry("nightly", typed_spec, parameters={"name": "x"})])
    with pytest.raises(schedules.ScheduleError, match="'nightly' exist but were not created by this tool"):
        apply_kfp(client, file)
    assert kfp_server.mutations() == []


def test_kfp_refuses_a_time_zone_its_controller_does_not_use(tmp_path, kfp_server, client, typed_spec):
    file = write_schedules(tmp_path / "s.yaml", [
        entry("berlin", typed_spec, parameters={"name": "x"}, timezone="Europe/Berlin")])
    with pytest.raises(schedules.ScheduleError, match="CRON_SCHEDULE_TIMEZONE.*--kfp-timezone Europe/Berlin"):
        apply_kfp(client, file)
    assert kfp_server.mutations() == []
    plan = apply_kfp(client, file, kfp_timezone="Europe/Berlin")
    assert kinds(plan) == {"berlin": "create"}


def test_kfp_skips_entries_for_vertex_only(tmp_path, kfp_server, client, typed_spec):
    file = write_schedules(tmp_path / "s.yaml", [entry("v", typed_spec, targets=["vertex"])])
    plan = apply_kfp(client, file)
    assert plan.actions == [] and kfp_server.mutations() == []


def test_cli_kfp_dry_run_prints_conversions_and_requests_and_changes_nothing(
    tmp_path, kfp_server, capsys, typed_spec
):
    file = write_schedules(tmp_path / "s.yaml", [entry("nightly", typed_spec, parameters={"name": "x"})])
    argv = ["schedules", "apply", "--target", "kfp", "--host", kfp_server.url, "--file", str(file)]
    assert cli.main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "nightly: cron '0 3 * * *' -> KFP '0 0 3 * * *'" in out
    assert "would create: nightly" in out
    assert '"cron": "0 0 3 * * *"' in out
    assert kfp_server.mutations() == []

    assert cli.main(argv) == 0
    assert "kfp: 1 create" in capsys.readouterr().out
    kfp_server.clear()
    assert cli.main(argv) == 0
    assert "unchanged: nightly" in capsys.readouterr().out
    assert kfp_server.mutations() == []


# --------------------------------------------------------------------------- Vertex AI


@pytest.fixture
def vertex_server(monkeypatch):
    with FakeVertex(max_page_size=1) as fake, sdk_pointed_at(fake, monkeypatch):
        yield fake


def apply_vertex(path, **options):
    options = {**VERTEX, "credentials": AnonymousCredentials(), **options}
    return schedules.apply(schedules.plan_vertex(schedules.load_schedules(path), **options))


def schedule_posts(server):
    return [r.body for r in server.calls("POST", r"/schedules$")]


@pytest.mark.parametrize("golden", SINGLE_DOCUMENT)
def test_schedule_request_built_offline_by_the_sdk(golden):
    spec = submit.load_spec(submit.available_specs()[golden])
    credentials = AnonymousCredentials()
    required = {p.name: "gs://b/x" for p in spec.parameters.values() if not p.optional}
    job = submit.build_pipeline_job(spec, project=PROJECT, region=REGION, pipeline_root=ROOT,
                                    credentials=credentials, display_name="nightly", labels={"team": "ml"},
                                    parameters=required)
    schedule = aiplatform.PipelineJobSchedule(pipeline_job=job, display_name="nightly",
                                              credentials=credentials, project=PROJECT, location=REGION)
    request = schedules.schedule_request(schedule, cron=schedules.to_vertex_cron("0 3 * * 1-5", "UTC"),
                                         max_concurrent_run_count=3, service_account=SA, network=NETWORK)
    assert request["parent"] == f"projects/{PROJECT}/locations/{REGION}"
    body = request["schedule"]
    assert body["displayName"] == "nightly"
    assert body["cron"] == "TZ=UTC 0 3 * * 1-5"
    assert body["maxConcurrentRunCount"] == "3"  # int64 in JSON
    pipeline_job = body["createPipelineJobRequest"]["pipelineJob"]
    assert body["createPipelineJobRequest"]["parent"] == request["parent"]
    assert pipeline_job["runtimeConfig"]["gcsOutputDirectory"] == ROOT
    assert pipeline_job["serviceAccount"] == SA and pipeline_job["network"] == NETWORK
    assert pipeline_job["labels"] == {"team": "ml"}
    assert pipeline_job["pipelineSpec"]["pipelineInfo"]["name"] == spec.name


@pytest.mark.parametrize("golden", SINGLE_DOCUMENT)
def test_vertex_apply_creates_schedules_from_each_golden_then_changes_nothing(
    golden, tmp_path, vertex_server
):
    spec = submit.load_spec(submit.available_specs()[golden])
    _, arguments = tiny_specs.sample_arguments(spec)
    file = write_schedules(tmp_path / "s.yaml", [
        entry("nightly", golden, parameters=arguments, timezone="Europe/Berlin", max_concurrency=2),
        entry("weekly", golden, parameters=arguments, cron="@weekly", enabled=False),
    ])

    plan = apply_vertex(file, service_account=SA, network=NETWORK)

    assert kinds(plan) == {"nightly": "create", "weekly": "create"}
    assert "nightly: cron '0 3 * * *' -> Vertex 'TZ=Europe/Berlin 0 3 * * *'" in plan.notes
    nightly, weekly = schedule_posts(vertex_server)
    assert nightly["displayName"] == "nightly"
    assert nightly["cron"] == "TZ=Europe/Berlin 0 3 * * *"
    assert nightly["maxConcurrentRunCount"] == "2"
    job = nightly["createPipelineJobRequest"]["pipelineJob"]
    assert job["runtimeConfig"]["gcsOutputDirectory"] == ROOT
    assert job["runtimeConfig"].get("parameterValues", {}) == tiny_specs.as_protobuf_values(arguments)
    assert job["serviceAccount"] == SA and job["network"] == NETWORK
    key, value = schedules.VERTEX_MANAGED_LABEL
    assert job["labels"][key] == value
    assert job["labels"][schedules.VERTEX_SPEC_LABEL] == spec.sha256[:32]
    assert weekly["cron"] == "0 0 * * 0"
    states = {s["displayName"]: (s["name"], s["state"]) for s in vertex_server.schedules.values()}
    assert states["nightly"][1] == "ACTIVE" and states["weekly"][1] == "PAUSED"
    (pause,) = vertex_server.calls("POST", ":pause$")
    assert pause.path == f"/v1/{states['weekly'][0]}:pause"

    vertex_server.clear()
    again = apply_vertex(file, service_account=SA, network=NETWORK)
    assert kinds(again) == {"nightly": "unchanged", "weekly": "unchanged"}
    assert vertex_server.mutations() == []


def test_vertex_cron_changes_update_in_place_and_other_changes_replace(tmp_path, vertex_server, typed_spec):
    entries = [entry("a", typed_spec, parameters={"name": "x"}),
               entry("b", typed_spec, parameters={"name": "y"}),
               entry("c", typed_spec, parameters={"name": "z"}, enabled=False, catchup=True)]
    apply_vertex(write_schedules(tmp_path / "s.yaml", entries))
    names = {s["displayName"]: s["name"] for s in vertex_server.schedules.values()}

    entries[0]["cron"] = "0 4 * * *"
    entries[0]["max_concurrency"] = 3
    entries[1]["parameters"] = {"name": "y", "count": 2}
    entries[2]["enabled"] = True
    vertex_server.clear()
    plan = apply_vertex(write_schedules(tmp_path / "s.yaml", entries))

    assert kinds(plan) == {"a": "update", "b": "replace", "c": "resume"}
    (patch,) = vertex_server.calls("PATCH")
    assert patch.path == f"/v1/{names['a']}"
    assert patch.param("updateMask") == "cron,maxConcurrentRunCount"
    assert (patch.body["cron"], patch.body["maxConcurrentRunCount"]) == ("0 4 * * *", "3")
    (delete,) = vertex_server.calls("DELETE")
    assert delete.path == f"/v1/{names['b']}"
    (created,) = schedule_posts(vertex_server)
    assert created["createPipelineJobRequest"]["pipelineJob"]["runtimeConfig"]["parameterValues"] == {
        "name": "y", "count": 2.0}
    (resume,) = vertex_server.calls("POST", ":resume$")
    assert resume.path == f"/v1/{names['c']}:resume" and resume.body == {"catchUp": True}
    assert len(vertex_server.mutations()) == 4


def test_vertex_bounds_queueing_and_experiment_reach_the_api_and_update_in_place(
    tmp_path, vertex_server, typed_spec
):
    bounded = entry("bounded", typed_spec, parameters={"name": "x"}, targets=["vertex"],
                    start_time="2030-01-01T02:00:00Z", end_time="2030-06-30T00:00:00Z", max_run_count=30,
                    allow_queueing=True, vertex_experiment="churn-nightly")
    plain = entry("plain", typed_spec, parameters={"name": "y"}, targets=["vertex"])
    plan = apply_vertex(write_schedules(tmp_path / "s.yaml", [bounded, plain]))

    assert kinds(plan) == {"bounded": "create", "plain": "create"}
    assert [a.name for a in plan.actions if a.kind == "create-experiment"] == ["churn-nightly"]
    assert any("labelled kfp-ct-vertex-experiment=churn-nightly" in note for note in plan.notes)
    created, other = schedule_posts(vertex_server)
    assert (created["startTime"], created["endTime"]) == ("2030-01-01T02:00:00Z", "2030-06-30T00:00:00Z")
    assert created["maxRunCount"] == "30" and created["allowQueueing"] is True
    job = created["createPipelineJobRequest"]["pipelineJob"]
    assert job["labels"][schedules.VERTEX_EXPERIMENT_LABEL] == "churn-nightly"
    assert not {"startTime", "endTime", "maxRunCount", "allowQueueing"} & set(other)
    experiment = f"projects/{PROJECT}/locations/{REGION}/metadataStores/default/contexts/churn-nightly"
    assert vertex_server.contexts[experiment]["schemaTitle"] == "system.Experiment"

    vertex_server.clear()  # the server gave "plain" a startTime (its creation time): still unchanged
    assert kinds(apply_vertex(write_schedules(tmp_path / "s.yaml", [bounded, plain]))) == {
        "bounded": "unchanged", "plain": "unchanged"}
    assert vertex_server.mutations() == []

    names = {s["displayName"]: s["name"] for s in vertex_server.schedules.values()}
    bounded.update(end_time="2030-12-31T00:00:00Z", max_run_count=60, allow_queueing=False)
    plain["max_run_count"] = 5
    plan = apply_vertex(write_schedules(tmp_path / "s.yaml", [bounded, plain]))
    assert kinds(plan) == {"bounded": "update", "plain": "update"}
    patches = {r.path: r for r in vertex_server.calls("PATCH")}
    patch = patches[f"/v1/{names['bounded']}"]
    assert sorted(patch.param("updateMask").split(",")) == ["allowQueueing", "endTime", "maxRunCount"]
    stored = vertex_server.schedules[names["bounded"]]
    assert (stored["endTime"], stored["maxRunCount"]) == ("2030-12-31T00:00:00Z", "60")
    assert "allowQueueing" not in stored  # false: cleared
    assert vertex_server.schedules[names["plain"]]["maxRunCount"] == "5"

    del bounded["end_time"]  # an update cannot unset it: replaced
    vertex_server.clear()
    plan = apply_vertex(write_schedules(tmp_path / "s.yaml", [bounded, plain]))
    assert kinds(plan) == {"bounded": "replace", "plain": "unchanged"}
    assert "changed: end_time" in next(a.detail for a in plan.actions if a.name == "bounded")
    (recreated,) = schedule_posts(vertex_server)
    assert "endTime" not in recreated and recreated["maxRunCount"] == "60"


def test_vertex_schedule_fails_clearly_when_the_server_refuses_the_bounds(vertex_server, typed_spec):
    """The fake checks what Vertex checks; the file check catches it first (end before start)."""
    spec = submit.load_spec(typed_spec)
    job = submit.build_pipeline_job(spec, project=PROJECT, region=REGION, pipeline_root=ROOT,
                                    credentials=AnonymousCredentials(), parameters={"name": "x"})
    schedule = aiplatform.PipelineJobSchedule(pipeline_job=job, display_name="x",
                                              credentials=AnonymousCredentials())
    with pytest.raises(Exception, match="endTime must be after startTime"):
        schedule.create(cron="0 3 * * *", start_time="2030-01-02T00:00:00Z", end_time="2030-01-01T00:00:00Z")


def test_vertex_prune_deletes_only_what_this_tool_created(tmp_path, vertex_server, typed_spec):
    foreign = vertex_server.add_schedule(PROJECT, REGION, displayName="console-made", cron="0 1 * * *",
                                         createPipelineJobRequest={"pipelineJob": {"labels": {"team": "x"}}})
    entries = [entry("keep", typed_spec, parameters={"name": "k"}),
               entry("drop", typed_spec, parameters={"name": "d"})]
    apply_vertex(write_schedules(tmp_path / "s.yaml", entries))
    ours = {s["displayName"]: s["name"] for s in vertex_server.schedules.values()}
    vertex_server.clear()
    plan = apply_vertex(write_schedules(tmp_path / "s.yaml", entries[:1]), prune=True)
    assert kinds(plan) == {"keep": "unchanged", "drop": "delete"}
    assert [(r.method, r.path) for r in vertex_server.mutations()] == [("DELETE", f"/v1/{ours['drop']}")]
    assert foreign["name"] in vertex_server.schedules


def test_vertex_refuses_to_replace_a_schedule_it_did_not_create(tmp_path, vertex_server, typed_spec):
    vertex_server.add_schedule(PROJECT, REGION, displayName="nightly", cron="0 1 * * *",
                               createPipelineJobRequest={"pipelineJob": {}})
    file = write_schedules(tmp_path / "s.yaml", [entry("nightly", typed_spec, parameters={"name": "x"})])
    with pytest.raises(schedules.ScheduleError, match="not created by this tool"):
        apply_vertex(file)
    assert vertex_server.mutations() == []


def test_vertex_refuses_a_kubernetes_spec_and_shows_the_per_target_form(tmp_path, vertex_server):
    spec = tiny_specs.compile_kubernetes(tmp_path / "kubernetes_only.yaml")
    file = write_schedules(tmp_path / "s.yaml", [entry("k", spec)])
    with pytest.raises(submit.VertexSpecError, match="schedule 'k'.*kfp-kubernetes.*"
                       r"pipeline: \{kfp: training.yaml, vertex: training_vertex.yaml\}"):
        apply_vertex(file)
    assert vertex_server.mutations() == []


def test_cli_vertex_dry_run_prints_the_exact_create_request_and_sends_nothing(
    tmp_path, vertex_server, capsys, typed_spec, monkeypatch
):
    monkeypatch.setattr(submit, "vertex_credentials", lambda credentials=None, **_: AnonymousCredentials())
    file = write_schedules(tmp_path / "s.yaml", [entry("nightly", typed_spec, parameters={"name": "x"},
                                                       timezone="UTC")])
    argv = ["schedules", "apply", "--target", "vertex", "--file", str(file), "--project", PROJECT,
            "--region", REGION, "--pipeline-root", ROOT, "--service-account", SA]
    assert cli.main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "nightly: cron '0 3 * * *' -> Vertex 'TZ=UTC 0 3 * * *'" in out
    assert "would create: nightly" in out
    printed = json.loads(out[out.index("{"):out.rindex("}") + 1])
    assert [r.method for r in vertex_server.requests] == ["GET"]  # the list, nothing else

    assert cli.main(argv) == 0
    (sent,) = schedule_posts(vertex_server)
    assert sent == printed["schedule"]


def test_cli_vertex_needs_project_region_and_root(capsys):
    assert cli.main(["schedules", "apply", "--target", "vertex", "--project", PROJECT]) == 1
    assert "--region, --pipeline-root" in capsys.readouterr().err


def test_cli_validate_prints_one_line_per_entry_and_target(capsys):
    assert cli.main(["schedules", "validate"]) == 0
    out = capsys.readouterr().out
    for e in schedules.load_schedules():
        for target in e.targets:
            assert f"{e.name} [{target}]" in out
