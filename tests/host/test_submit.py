"""launch.submit and `python -m launch submit`: the real kfp.Client against a local fake KFP API
server, the real aiplatform SDK offline and against a local fake Vertex REST endpoint."""

from __future__ import annotations

import json

import pytest
import tiny_specs
import yaml
from fake_kfp import FakeKfp
from fake_vertex import FakeVertex, sdk_pointed_at
from google.auth.credentials import AnonymousCredentials
from google.protobuf import json_format
from kfp import components
from kfp.pipeline_spec import pipeline_spec_pb2

from launch import __main__ as cli
from launch import submit

GOLDENS = sorted(submit.available_specs())
SINGLE_DOCUMENT = [
    name for name in GOLDENS
    if len([d for d in yaml.safe_load_all(submit.available_specs()[name].read_text()) if d]) == 1
]
MULTI_DOCUMENT = sorted(set(GOLDENS) - set(SINGLE_DOCUMENT))
PROJECT, REGION, ROOT = "acme-ml", "europe-west4", "gs://acme-pipelines/root"
SA = "ct-runner@acme-ml.iam.gserviceaccount.com"
NETWORK = "projects/123456789012/global/networks/ml-vpc"

pytestmark = pytest.mark.filterwarnings("ignore:This client only works:FutureWarning")


@pytest.fixture
def kfp_server():
    with FakeKfp(max_page_size=2) as fake:  # a small page size exercises pagination
        yield fake


@pytest.fixture
def kfp_client(kfp_server):
    return submit.kfp_client(kfp_server.url, token="t0ken")


@pytest.fixture(scope="module")
def typed_spec(tmp_path_factory):
    return tiny_specs.compile_typed(tmp_path_factory.mktemp("typed") / "typed.yaml")


@pytest.fixture(scope="module")
def kubernetes_spec(tmp_path_factory):
    return tiny_specs.compile_kubernetes(tmp_path_factory.mktemp("k8s") / "kubernetes_only.yaml")


@pytest.fixture
def vertex_server(monkeypatch):
    """The real aiplatform SDK pointed at a local fake (REST), restored afterwards."""
    with FakeVertex() as fake, sdk_pointed_at(fake, monkeypatch):
        yield fake


# --------------------------------------------------------------------------- the spec


@pytest.mark.parametrize("golden", GOLDENS)
def test_every_golden_loads_with_kfps_loader_and_the_ir_proto(golden):
    path = submit.available_specs()[golden]
    spec = submit.load_spec(path)
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    component = components.load_component_from_file(str(path))
    proto = json_format.ParseDict(documents[0], pipeline_spec_pb2.PipelineSpec())
    assert component.name == spec.name == proto.pipeline_info.name
    assert set(spec.parameters) == set(proto.root.input_definitions.parameters)
    for extra in documents[1:]:
        json_format.ParseDict(extra, pipeline_spec_pb2.PlatformSpec())


def test_specs_resolve_by_path_file_name_stem_and_pipeline_name():
    path = submit.available_specs()[GOLDENS[0]]
    name = submit.load_spec(path).name
    for ref in (str(path), path.name, path.stem, name):
        assert submit.resolve_spec(ref) == path
    with pytest.raises(submit.SpecError, match=rf"no pipeline spec 'nope'.*{path.name} \({name}\)"):
        submit.resolve_spec("nope")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- just\n- a list\n", "expected a YAML mapping"),
        ("name: a-component\n", "not a compiled pipeline"),
        ("pipelineInfo: {name: x}\nroot: {dag: {tasks: {}}}\nbogusField: 1\n", "kfp cannot load"),
        ("a: [unclosed\n", "not valid YAML"),
    ],
)
def test_load_spec_explains_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(submit.SpecError, match=message):
        submit.load_spec(path)


def test_parameters_are_typed_from_the_root_input_definitions(typed_spec):
    spec = submit.load_spec(typed_spec)
    assert {n: p.type for n, p in spec.parameters.items()} == {
        "name": "STRING", "count": "NUMBER_INTEGER", "ratio": "NUMBER_DOUBLE", "flag": "BOOLEAN",
        "items": "LIST", "config": "STRUCT",
    }
    assert spec.parameters["count"].default == 3 and isinstance(spec.parameters["count"].default, int)
    raw = submit.parse_cli_parameters(
        ["name=run 1", "count=7", "ratio=2", "flag=TRUE", "items=[3, 4]", 'config={"b": [1]}']
    )
    typed = submit.coerce_parameters(spec, raw)
    assert typed == {"name": "run 1", "count": 7, "ratio": 2.0, "flag": True, "items": [3, 4],
                     "config": {"b": [1]}}
    assert type(typed["count"]) is int and type(typed["ratio"]) is float
    # Values that are already typed (JSON, YAML) must fit too.
    assert submit.coerce_parameters(spec, {"name": "x", "count": 4.0, "flag": False}) == {
        "name": "x", "count": 4, "flag": False}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"name": "x", "count": "3.5"}, "'count' expects int, got '3.5'"),
        ({"name": "x", "count": True}, "'count' expects int"),
        ({"name": "x", "ratio": "fast"}, "'ratio' expects float"),
        ({"name": "x", "flag": "maybe"}, "'flag' expects bool.*use true or false"),
        ({"name": "x", "items": '{"a": 1}'}, "'items' expects list"),
        ({"name": "x", "config": "[1"}, "'config' expects dict"),
        ({"name": 5}, "'name' expects str, got 5 .quote it"),
        ({"count": "1"}, r"needs 'name'; accepted: config \(dict \(JSON\), default \{'a': 1.0\}\), "
                         r"count \(int, default 3\).*name \(str, required\)"),
    ],
)
def test_bad_parameter_values_are_refused_with_the_reason(typed_spec, values, message):
    with pytest.raises(submit.ParameterError, match=message):
        submit.coerce_parameters(submit.load_spec(typed_spec), values)


@pytest.mark.parametrize("golden", GOLDENS)
def test_unknown_parameter_names_list_the_accepted_ones(golden):
    spec = submit.load_spec(submit.available_specs()[golden])
    with pytest.raises(submit.ParameterError) as error:
        submit.coerce_parameters(spec, {"no_such_input": "1"})
    assert "has no parameter 'no_such_input'" in str(error.value)
    for name in spec.parameters:
        assert f"{name} (" in str(error.value)


def test_cli_parameters_merge_json_file_and_pairs(tmp_path):
    params = tmp_path / "p.json"
    params.write_text('{"a": 1, "b": "x"}')
    assert submit.parse_cli_parameters(["b=y", "c=k=v"], f"@{params}") == {"a": 1, "b": "y", "c": "k=v"}
    with pytest.raises(submit.ParameterError, match="NAME=VALUE"):
        submit.parse_cli_parameters(["novalue"])
    with pytest.raises(submit.ParameterError, match="JSON object"):
        submit.parse_cli_parameters([], "[1]")


# --------------------------------------------------------------------------- Kubeflow Pipelines


@pytest.mark.parametrize("golden", GOLDENS)
def test_submit_uploads_the_golden_and_starts_a_typed_run(golden, kfp_server, kfp_client):
    path = submit.available_specs()[golden]
    spec = submit.load_spec(path)
    arguments, expected = tiny_specs.sample_arguments(spec)

    run = submit.submit_kfp(golden, client=kfp_client, ui_url=kfp_server.url, parameters=arguments,
                            experiment="ct-tests", run_name="r1")

    (upload,) = kfp_server.calls("POST", r"/pipelines/upload$")
    assert upload.files["uploadfile"][1] == path.read_bytes()  # byte for byte
    assert upload.param("name") == spec.name
    assert f"sha256:{spec.sha256}" in upload.param("description")
    (created,) = kfp_server.calls("POST", r"/experiments$")
    assert created.body["display_name"] == "ct-tests"
    (run_request,) = kfp_server.calls("POST", r"/runs$")
    body = run_request.body
    assert body["display_name"] == "r1"
    assert body["experiment_id"] == run.experiment_id
    assert kfp_server.experiments[run.experiment_id]["display_name"] == "ct-tests"
    assert body["pipeline_version_reference"] == {
        "pipeline_id": run.version.pipeline_id, "pipeline_version_id": run.version.version_id}
    assert "pipeline_spec" not in body
    assert body["runtime_config"]["parameters"] == expected
    for name, value in body["runtime_config"]["parameters"].items():
        assert type(value) is type(expected[name]), name  # 5000, not "5000" or 5000.0
    assert run.url == f"{kfp_server.url}/#/runs/details/{run.run_id}"
    assert {r.headers.get("authorization") for r in kfp_server.requests} == {"Bearer t0ken"}


def test_same_spec_reuses_its_version_and_a_changed_spec_uploads_a_new_one(tmp_path, kfp_server, kfp_client):
    golden = submit.available_specs()[GOLDENS[0]]
    arguments, _ = tiny_specs.sample_arguments(submit.load_spec(golden))
    first = submit.submit_kfp(golden, client=kfp_client, ui_url=kfp_server.url, parameters=arguments)
    again = submit.submit_kfp(golden, client=kfp_client, ui_url=kfp_server.url, parameters=arguments)
    assert again.version.action == "reused"
    assert again.version.version_id == first.version.version_id
    assert len(kfp_server.calls("POST", "/pipelines/upload")) == 1

    changed = tmp_path / golden.name
    changed.write_bytes(golden.read_bytes() + b"# recompiled\n")
    spec = submit.load_spec(changed)
    third = submit.submit_kfp(changed, client=kfp_client, ui_url=kfp_server.url, parameters=arguments)
    (upload,) = kfp_server.calls("POST", "/pipelines/upload_version")
    assert upload.param("pipelineid") == first.version.pipeline_id
    assert upload.param("name").startswith(f"{spec.name}-{spec.sha256[:12]}-")
    assert upload.files["uploadfile"][1] == changed.read_bytes()
    assert third.version.action == "uploaded version"
    assert third.version.version_id != first.version.version_id
    runs = kfp_server.calls("POST", r"/runs$")
    assert runs[-1].body["pipeline_version_reference"]["pipeline_version_id"] == third.version.version_id


def test_an_unknown_parameter_is_refused_before_anything_is_sent(kfp_server, kfp_client):
    with pytest.raises(submit.ParameterError, match="accepted:"):
        submit.submit_kfp(GOLDENS[0], client=kfp_client, ui_url=kfp_server.url, parameters={"bogus": "1"})
    assert kfp_server.mutations() == []


def test_a_caching_override_sends_the_spec_inline(kfp_server, kfp_client):
    golden = submit.available_specs()[GOLDENS[0]]
    arguments, _ = tiny_specs.sample_arguments(submit.load_spec(golden))
    run = submit.submit_kfp(golden, client=kfp_client, ui_url=kfp_server.url, parameters=arguments,
                            enable_caching=False)
    assert run.inline_spec
    (run_request,) = kfp_server.calls("POST", r"/runs$")
    body = run_request.body
    assert "pipeline_version_reference" not in body
    tasks = body["pipeline_spec"]["root"]["dag"]["tasks"]
    assert tasks and all(t["cachingOptions"] == {} for t in tasks.values())  # enableCache false
    assert kfp_server.calls("POST", "/pipelines/upload")  # still uploaded, for the UI


def test_cli_submit_kfp_prints_the_run_url_and_uses_a_token_file(tmp_path, kfp_server, capsys):
    token = tmp_path / "token"
    token.write_text("from-file")
    spec = submit.load_spec(submit.available_specs()[GOLDENS[0]])
    pairs = [f"{k}={v}" for k, v in tiny_specs.sample_arguments(spec)[0].items()]
    argv = ["submit", "kfp", GOLDENS[0], "--host", kfp_server.url, "--token-file", str(token),
            "--experiment", "cli", "--namespace", "team-a"]
    for pair in pairs:
        argv += ["--param", pair]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    run_id = next(iter(kfp_server.runs))
    assert f"run URL: {kfp_server.url}/#/runs/details/{run_id}" in out
    assert {r.headers.get("authorization") for r in kfp_server.requests} == {"Bearer from-file"}
    assert kfp_server.calls("GET", "/healthz") == []  # a namespace keeps the constructor offline


def test_kfps_service_account_token_path_variable_is_honoured(tmp_path, kfp_server, monkeypatch):
    token = tmp_path / "sa-token"
    token.write_text("projected")
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(token))
    arguments, _ = tiny_specs.sample_arguments(submit.load_spec(submit.available_specs()[GOLDENS[0]]))
    submit.submit_kfp(GOLDENS[0], client=submit.kfp_client(kfp_server.url), ui_url=kfp_server.url,
                      parameters=arguments)
    assert {r.headers.get("authorization") for r in kfp_server.requests} == {"Bearer projected"}


def test_cli_reports_an_unreachable_host_without_a_traceback(capsys):
    code = cli.main(["submit", "kfp", GOLDENS[0], "--host", "http://127.0.0.1:9", "--namespace", "x"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: cannot reach the server") and "Traceback" not in err


def test_cli_reports_errors_without_a_traceback(kfp_server, capsys):
    code = cli.main(["submit", "kfp", GOLDENS[0], "--host", kfp_server.url, "-p", "bogus=1"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and "accepted:" in err and "Traceback" not in err
    assert kfp_server.mutations() == []


# --------------------------------------------------------------------------- Vertex AI


def vertex_request(spec_ref, **overrides) -> dict:
    options = dict(project=PROJECT, region=REGION, pipeline_root=ROOT, dry_run=True)
    options.update(overrides)
    return submit.submit_vertex(spec_ref, **options).request


@pytest.mark.parametrize("golden", SINGLE_DOCUMENT)
def test_vertex_request_built_by_the_sdk_carries_every_option(golden):
    path = submit.available_specs()[golden]
    spec = submit.load_spec(path)
    arguments, expected = tiny_specs.sample_arguments(spec)
    request = vertex_request(
        golden, parameters=arguments, service_account=SA, network=NETWORK,
        labels={"team": "ml", "env": "test"}, job_id="nightly-1", display_name="nightly",
    )
    assert request["parent"] == f"projects/{PROJECT}/locations/{REGION}"
    assert request["pipelineJobId"] == "nightly-1"
    job = request["pipelineJob"]
    assert job["displayName"] == "nightly"
    assert job["serviceAccount"] == SA
    assert job["network"] == NETWORK
    assert job["labels"] == {"team": "ml", "env": "test"}
    assert job["runtimeConfig"]["gcsOutputDirectory"] == ROOT
    assert job["runtimeConfig"].get("parameterValues", {}) == tiny_specs.as_protobuf_values(expected)
    assert job["pipelineSpec"] == yaml.safe_load(path.read_text())  # the golden, unchanged


@pytest.mark.parametrize("golden", SINGLE_DOCUMENT)
def test_vertex_caching_override_reaches_every_task(golden):
    arguments, _ = tiny_specs.sample_arguments(submit.load_spec(submit.available_specs()[golden]))
    job = vertex_request(golden, parameters=arguments, enable_caching=False)["pipelineJob"]
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    assert tasks and all(t["cachingOptions"] == {"enableCache": False} for t in tasks.values())


def test_vertex_types_parameters_from_the_spec(typed_spec):
    values = vertex_request(typed_spec, parameters={"name": "n", "count": "9", "flag": "yes",
                                                     "items": "[1]"})["pipelineJob"]["runtimeConfig"]
    assert values["parameterValues"] == {"name": "n", "count": 9.0, "flag": True, "items": [1.0]}


def test_vertex_refuses_a_kubernetes_platform_spec_and_points_to_the_vertex_variant(kubernetes_spec):
    with pytest.raises(submit.VertexSpecError) as error:
        vertex_request(kubernetes_spec)
    message = str(error.value)
    assert "2 YAML documents" in message and "kfp-kubernetes" in message
    assert "compile a Vertex variant" in message
    variant = kubernetes_spec.with_name("kubernetes_only_vertex.yaml")
    variant.write_text("not needed for the message")
    try:
        with pytest.raises(submit.VertexSpecError, match="submit kubernetes_only_vertex.yaml instead"):
            vertex_request(kubernetes_spec)
    finally:
        variant.unlink()


@pytest.mark.parametrize("golden", MULTI_DOCUMENT)
def test_multi_document_goldens_are_refused_for_vertex(golden):
    with pytest.raises(submit.VertexSpecError, match="kfp-kubernetes"):
        vertex_request(golden)


def test_vertex_refuses_kubernetes_accelerator_names_and_takes_vertex_ones(tmp_path):
    k8s = tiny_specs.compile_accelerator(tmp_path / "k8s_gpu.yaml", "nvidia.com/gpu")
    with pytest.raises(submit.VertexSpecError) as error:
        vertex_request(k8s)
    assert "'nvidia.com/gpu' is a Kubernetes/KFP resource name" in str(error.value)
    assert "NVIDIA_TESLA_T4" in str(error.value) and "NVIDIA_L4" in str(error.value)
    with pytest.raises(submit.VertexSpecError, match="'TESLA_T4' is not a Vertex AI accelerator type"):
        vertex_request(tiny_specs.compile_accelerator(tmp_path / "typo.yaml", "TESLA_T4"))
    ok = tiny_specs.compile_accelerator(tmp_path / "vertex_gpu.yaml", "NVIDIA_L4")
    executors = vertex_request(ok)["pipelineJob"]["pipelineSpec"]["deploymentSpec"]["executors"]
    (executor,) = executors.values()
    assert executor["container"]["resources"]["accelerator"]["resourceType"] == "NVIDIA_L4"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pipeline_root": "/tmp/root"}, "Cloud Storage pipeline root"),
        ({"pipeline_root": "s3://bucket"}, "gs://bucket/path"),
        ({"network": "ml-vpc"}, "projects/<project-number>/global/networks/<vpc>"),
        ({"service_account": "runner"}, "service account must be an email"),
        ({"region": "Europe"}, "region must look like"),
        ({"labels": {"Team": "ml"}}, "label key 'Team': start with a lowercase letter"),
        ({"labels": {"team": "ML Ops"}}, "label team='ML Ops': values use lowercase"),
    ],
)
def test_vertex_options_are_checked_before_building(overrides, message):
    with pytest.raises(submit.VertexSpecError, match=message):
        vertex_request(SINGLE_DOCUMENT[0], **overrides)


def test_vertex_dry_run_sends_nothing(vertex_server):
    arguments, _ = tiny_specs.sample_arguments(submit.load_spec(submit.available_specs()[SINGLE_DOCUMENT[0]]))
    vertex_request(SINGLE_DOCUMENT[0], parameters=arguments, service_account=SA)
    assert vertex_server.requests == []


def test_vertex_submit_sends_exactly_the_dry_run_request(vertex_server):
    spec = submit.load_spec(submit.available_specs()[SINGLE_DOCUMENT[0]])
    options = dict(project=PROJECT, region=REGION, pipeline_root=ROOT, service_account=SA,
                   network=NETWORK, labels={"team": "ml"}, job_id="exact-1",
                   parameters=tiny_specs.sample_arguments(spec)[0], credentials=AnonymousCredentials())
    planned = submit.submit_vertex(SINGLE_DOCUMENT[0], dry_run=True, **options).request
    result = submit.submit_vertex(SINGLE_DOCUMENT[0], **options)

    (create,) = vertex_server.calls("POST", "/pipelineJobs$")
    assert create.path == f"/v1/projects/{PROJECT}/locations/{REGION}/pipelineJobs"
    assert create.param("pipelineJobId") == "exact-1"
    assert create.body == planned["pipelineJob"]
    assert result.resource_name == f"projects/{PROJECT}/locations/{REGION}/pipelineJobs/exact-1"


def test_cli_submit_vertex_dry_run_prints_the_request_as_json(capsys):
    code = cli.main(["submit", "vertex", SINGLE_DOCUMENT[0], "--project", PROJECT, "--region", REGION,
                     "--pipeline-root", ROOT, "--label", "team=ml", "--job-id", "j-1", "--dry-run"])
    captured = capsys.readouterr()
    assert code == 0
    request = json.loads(captured.out)
    assert request["pipelineJobId"] == "j-1"
    assert request["pipelineJob"]["labels"] == {"team": "ml"}
    assert "not sent" in captured.err


def test_cli_submit_vertex_without_a_gs_root_fails_clearly(capsys):
    code = cli.main(["submit", "vertex", SINGLE_DOCUMENT[0], "--project", PROJECT, "--region", REGION,
                     "--dry-run"])
    assert code == 1
    assert "gs://bucket/path" in capsys.readouterr().err


def test_vertex_submit_with_an_experiment_creates_it_and_associates_the_run(vertex_server, capsys):
    spec = submit.load_spec(submit.available_specs()[SINGLE_DOCUMENT[0]])
    options = dict(project=PROJECT, region=REGION, pipeline_root=ROOT, job_id="with-exp-1",
                   parameters=tiny_specs.sample_arguments(spec)[0], credentials=AnonymousCredentials())
    result = submit.submit_vertex(SINGLE_DOCUMENT[0], experiment="churn-nightly", **options)

    store = f"projects/{PROJECT}/locations/{REGION}/metadataStores/default"
    (created,) = vertex_server.calls("POST", "/metadataStores/default/contexts$")
    assert created.param("contextId") == "churn-nightly"
    assert created.body["schemaTitle"] == "system.Experiment"
    (associate,) = vertex_server.calls("POST", ":addContextChildren$")
    assert associate.path == f"/v1/{store}/contexts/churn-nightly:addContextChildren"
    assert associate.body == {"childContexts": [f"{store}/contexts/with-exp-1"]}
    assert vertex_server.experiment_runs("churn-nightly") == ["with-exp-1"]
    assert result.experiment == "churn-nightly"

    # A second run joins the existing experiment (no second create).
    vertex_server.clear()
    options["job_id"] = "with-exp-2"
    submit.submit_vertex(SINGLE_DOCUMENT[0], experiment="churn-nightly", **options)
    assert vertex_server.calls("POST", "/contexts$") == []
    assert vertex_server.experiment_runs("churn-nightly") == ["with-exp-1", "with-exp-2"]


@pytest.mark.parametrize("name", ["Churn", "churn_nightly", "-churn", "x" * 129])
def test_vertex_experiment_names_are_checked_before_anything_is_sent(vertex_server, name):
    with pytest.raises(submit.VertexSpecError, match=f"experiment names use lowercase.*got '{name}'"):
        vertex_request(SINGLE_DOCUMENT[0], experiment=name, dry_run=False)
    assert vertex_server.requests == []


def test_cli_submit_vertex_dry_run_names_the_experiment(capsys):
    code = cli.main(["submit", "vertex", SINGLE_DOCUMENT[0], "--project", PROJECT, "--region", REGION,
                     "--pipeline-root", ROOT, "--experiment", "churn-nightly", "--dry-run"])
    assert code == 0
    assert "then associated with Vertex AI Experiment 'churn-nightly'" in capsys.readouterr().err


def test_the_fake_vertex_refuses_a_misspelt_field_like_the_real_api(vertex_server):
    """The SDK cannot send a wrong name; a hand-written body can, and the fake must refuse it."""
    import requests

    url = f"{vertex_server.url}/v1/{submit.location_path(PROJECT, REGION)}/schedules"
    body = {"displayName": "s", "cron": "0 3 * * *", "maxRunCount": "2",
            "createPipelineJobRequest": {"pipelineJob": {"displayName": "j"}}}
    assert requests.post(url, json=body, timeout=10).status_code == 200
    for wrong in ({"maxRunCounts": "2"}, {"allowQueuing": True}, {"startTime": "tomorrow"}):
        reply = requests.post(url, json={**body, **wrong}, timeout=10)
        assert reply.status_code == 400 and "Invalid JSON payload" in reply.text, wrong
    nested = {**body, "createPipelineJobRequest": {"pipelineJob": {"experiment": "x"}}}
    assert requests.post(url, json=nested, timeout=10).status_code == 400
