"""upload_vertex_model: the real aiplatform SDK (REST) against the local fake Vertex API, whose
Model Registry keeps an alias on one version of a model as Vertex does. The runtime needs only
aiplatform, so it runs here on the host; the component body runs here too, with kfp's artifacts."""

from __future__ import annotations

import pytest
from fake_vertex import FakeVertex, sdk_pointed_at
from google.api_core import exceptions as api_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform
from kfp import dsl

import components
from components import uris
from components.artifact_types import VertexModel
from components.upload_vertex_model import runtime

PROJECT, REGION, NAME = "acme-ml", "europe-west4", "churn-classifier"
MODEL_URI = "gs://acme-pipelines/root/123/train-model/model"
RUN_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
WHERE = dict(project=PROJECT, location=REGION)
DEFAULT_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"


@pytest.fixture
def vertex(monkeypatch):
    """The fake (knowing one project) and the real SDK pointed at it, anonymously."""
    monkeypatch.delenv(runtime.PIPELINE_LABELS_ENV, raising=False)
    with FakeVertex(projects={PROJECT}) as fake, sdk_pointed_at(fake, monkeypatch):
        aiplatform.init(credentials=AnonymousCredentials())
        yield fake


@pytest.fixture
def model_dir(tmp_path):
    """A model folder in the TF-Serving layout (Vertex reads it at MODEL_URI, not from here)."""
    (tmp_path / "model" / "1").mkdir(parents=True)
    (tmp_path / "model" / "1" / "saved_model.pb").write_bytes(b"\x08\x01")
    return str(tmp_path / "model")


def upload(model_dir, version, **overrides):
    arguments = dict(
        model_dir=model_dir, model_uri=MODEL_URI, registered_model_name=NAME,
        registered_model_version=str(version), mlflow_run_id=RUN_ID, project=PROJECT, location=REGION,
    )
    return runtime.run(**{**arguments, **overrides})


def uploads(fake) -> list:
    return [r for r in fake.requests if r.method == "POST" and r.path.endswith("/models:upload")]


def aliases_by_version(fake, model_resource_name) -> dict[str, list[str]]:
    return {v["versionId"]: sorted(v["versionAliases"]) for v in fake.models[model_resource_name]}


# ------------------------------------------------------------------------------ the registry


def test_the_first_upload_creates_the_model_with_v1_production_and_default(vertex, model_dir,
                                                                           monkeypatch):
    billing = '{"vertex-ai-pipelines-run-billing-id": "8717761889"}'  # what Vertex AI Pipelines sets
    monkeypatch.setenv(runtime.PIPELINE_LABELS_ENV, billing)
    result = upload(model_dir, 1, labels={"team": "ml"})

    assert result["versionId"] == "1" and result["uploaded"] is True
    assert result["resourceName"] == result["modelResourceName"] + "@1"
    assert result["uri"] == f"https://{REGION}-aiplatform.googleapis.com/v1/{result['resourceName']}"
    assert result["versionAliases"] == ["default", "production", "v1"]
    assert list(vertex.models) == [result["modelResourceName"]]
    (version,) = vertex.models[result["modelResourceName"]]
    assert version["displayName"] == NAME
    assert version["artifactUri"] == MODEL_URI + "/1"  # the SavedModel folder, as Vertex reads it
    assert version["containerSpec"]["imageUri"] == DEFAULT_IMAGE
    assert version["labels"] == {
        "kfp-ct-registered-model": NAME, "mlflow-version": "1", "mlflow-run-id": RUN_ID,
        "vertex-ai-pipelines-run-billing-id": "8717761889", "team": "ml",
    }
    assert "parentModel" not in uploads(vertex)[0].body
    # What another tool sees through the SDK: the alias resolves to this version.
    assert aiplatform.Model(result["modelResourceName"] + "@production").version_id == "1"


def test_a_second_version_takes_production_and_default_from_the_first(vertex, model_dir):
    first = upload(model_dir, 1)
    second = upload(model_dir, 2)

    assert second["modelResourceName"] == first["modelResourceName"]
    assert second["versionId"] == "2" and second["versionAliases"] == ["default", "production", "v2"]
    assert uploads(vertex)[1].body["parentModel"] == first["modelResourceName"]
    assert aliases_by_version(vertex, first["modelResourceName"]) == {
        "1": ["v1"], "2": ["default", "production", "v2"],
    }
    registry = aiplatform.ModelRegistry(first["modelResourceName"])
    assert registry.get_model("production").version_id == "2"
    assert registry.get_model("v1").version_id == "1"


def test_a_candidate_upload_leaves_production_and_default_where_they_are(vertex, model_dir):
    first = upload(model_dir, 1)
    candidate = upload(model_dir, 2, version_aliases=["candidate"], is_default_version=False)

    assert candidate["versionAliases"] == ["candidate", "v2"]
    assert aliases_by_version(vertex, first["modelResourceName"]) == {
        "1": ["default", "production", "v1"], "2": ["candidate", "v2"],
    }


def test_the_first_version_is_the_default_even_when_not_asked_to_be(vertex, model_dir):
    first = upload(model_dir, 1, version_aliases=[], is_default_version=False)
    assert first["versionAliases"] == ["default", "v1"]  # Vertex: a model always has a default


def test_a_retry_finds_its_version_and_does_not_upload_twice(vertex, model_dir):
    first = upload(model_dir, 1)
    again = upload(model_dir, 1)

    assert len(uploads(vertex)) == 1
    assert again["uploaded"] is False
    assert again["resourceName"] == first["resourceName"]
    assert again["versionAliases"] == ["default", "production", "v1"]


def test_a_retry_adds_the_aliases_its_earlier_try_did_not_set(vertex, model_dir):
    upload(model_dir, 1)
    half_done = upload(model_dir, 2, version_aliases=[], is_default_version=False)
    assert half_done["versionAliases"] == ["v2"]

    retried = upload(model_dir, 2)

    assert len(uploads(vertex)) == 2
    assert retried["resourceName"] == half_done["resourceName"]
    assert aliases_by_version(vertex, retried["modelResourceName"]) == {
        "1": ["v1"], "2": ["default", "production", "v2"],
    }


def test_each_mlflow_model_has_its_own_vertex_model_and_unlabelled_ones_are_left_alone(vertex, model_dir):
    # A model of the same display name made by hand (no label) is not the parent.
    by_hand = aiplatform.Model.upload(display_name=NAME, artifact_uri="gs://acme/other/1",
                                      serving_container_image_uri=DEFAULT_IMAGE, **WHERE)
    churn = upload(model_dir, 1)
    other = upload(model_dir, 1, registered_model_name="Fraud Detector")

    assert len({churn["modelResourceName"], other["modelResourceName"], by_hand.resource_name}) == 3
    (fraud,) = vertex.models[other["modelResourceName"]]
    assert fraud["labels"]["kfp-ct-registered-model"] == "fraud-detector"
    assert fraud["displayName"] == "Fraud Detector"
    assert aliases_by_version(vertex, by_hand.resource_name) == {"1": ["default"]}


# -------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("overrides", "error", "named"),
    [
        ({"project": "Acme_ML"}, ValueError, "'Acme_ML'"),
        ({"project": "{{$.pipeline_google_cloud_project_id}}"}, ValueError, "pass project and location"),
        ({"location": "mars-north1"}, ValueError, "'mars-north1' is not a Vertex AI region"),
        ({"location": ""}, ValueError, "location ''"),
        ({"model_uri": "/tmp/local/model"}, uris.UriError, "'/tmp/local/model'"),
        ({"model_uri": "s3://bucket/model"}, uris.UriError, "only from Cloud Storage"),
        ({"registered_model_version": ""}, ValueError, "MLflow version ''"),
        ({"registered_model_name": ""}, ValueError, "no MLflow model name"),
        ({"version_aliases": ["Production!"]}, ValueError, "'Production!'"),
        ({"version_aliases": ["v7"]}, ValueError, "'v7' is set by the component"),
        ({"version_aliases": ["default"]}, ValueError, "is_default_version"),
        ({"labels": {"Team": "ml"}}, ValueError, "label 'Team'"),
    ],
)
def test_bad_inputs_are_refused_by_name_before_any_call(vertex, model_dir, overrides, error, named):
    with pytest.raises(error, match=named.replace("$", r"\$").replace("{", r"\{").replace("(", r"\(")):
        upload(model_dir, 1, **overrides)
    assert vertex.requests == []


def test_a_model_folder_without_saved_model_pb_is_refused(vertex, tmp_path):
    (tmp_path / "model" / "1").mkdir(parents=True)
    (tmp_path / "model" / "1" / "variables.index").write_bytes(b"")
    with pytest.raises(ValueError, match=r"holds no <version>/saved_model.pb"):
        upload(str(tmp_path / "model"), 1)
    assert vertex.requests == []


def test_an_unknown_project_fails_with_the_apis_answer_chained(vertex, model_dir):
    with pytest.raises(runtime.VertexApiError, match=r"listing models \(projects/other-project/") as caught:
        upload(model_dir, 1, project="other-project")
    assert isinstance(caught.value.__cause__, api_exceptions.Forbidden)  # 403 PERMISSION_DENIED over REST
    assert "Permission denied on resource project other-project" in str(caught.value)


def test_a_failed_upload_operation_fails_the_task_and_creates_nothing(vertex, model_dir):
    vertex.upload_error = "Model directory gs://acme-pipelines/root/123/train-model/model/1 is empty."
    failed = r"failed uploading gs://.*model/1 \(projects/acme-ml"
    with pytest.raises(runtime.VertexApiError, match=failed) as caught:
        upload(model_dir, 1)
    assert isinstance(caught.value.__cause__, api_exceptions.GoogleAPICallError)
    assert "is empty" in str(caught.value)
    assert vertex.models == {}


# --------------------------------------------------------------------- the fake, as Vertex is


def test_merging_an_alias_moves_it_and_the_default_alias_cannot_be_removed(vertex, model_dir):
    name = upload(model_dir, 1)["modelResourceName"]
    upload(model_dir, 2)
    registry = aiplatform.ModelRegistry(name)

    registry.add_version_aliases(["production"], version="1")
    assert aliases_by_version(vertex, name) == {"1": ["production", "v1"], "2": ["default", "v2"]}
    with pytest.raises(api_exceptions.BadRequest, match="default alias cannot be removed"):
        registry.remove_version_aliases(["default"], version="2")
    with pytest.raises(api_exceptions.BadRequest, match="Invalid version alias"):
        registry.add_version_aliases(["9lives"], version="2")


def test_list_filters_are_the_apis_and_others_are_refused(vertex, model_dir):
    upload(model_dir, 1)
    upload(model_dir, 1, registered_model_name="fraud")
    def names(text):
        return [m.display_name for m in aiplatform.Model.list(filter=text, order_by="create_time", **WHERE)]

    assert names('labels.mlflow-version="1"') == [NAME, "fraud"]
    assert names('display_name="fraud" AND labels.kfp-ct-registered-model=fraud') == ["fraud"]
    assert names('display_name="fraud" AND labels.mlflow-version="2"') == []
    with pytest.raises(api_exceptions.BadRequest, match="Unsupported filter"):
        aiplatform.Model.list(filter="labels.mlflow-version>1", **WHERE)


# -------------------------------------------------------------------------- the component body


def test_the_component_reads_register_models_output_and_writes_a_vertex_model_artifact(vertex, model_dir):
    class OnFuse(dsl.Model):  # Vertex mounts the gs:// artifact at /gcs/...; here, model_dir
        @property
        def path(self):
            return model_dir

    registered = dsl.Artifact(uri="gs://acme-pipelines/registered", metadata={
        "name": NAME, "version": "3", "run_id": RUN_ID, "model_uri": f"models:/{NAME}/3"})
    output = VertexModel(uri="gs://acme-pipelines/root/123/upload-vertex-model/vertex_model")

    returned = components.upload_vertex_model.python_func(
        model=OnFuse(uri=MODEL_URI), registered=registered, vertex_model=output, **WHERE)

    assert returned == output.metadata["resourceName"] and returned.endswith("@1")
    assert output.uri == f"https://{REGION}-aiplatform.googleapis.com/v1/{returned}"
    assert output.metadata["mlflowVersion"] == "3" and output.metadata["versionAliases"] == [
        "default", "production", "v3"]
    assert VertexModel.schema_title == "google.VertexModel"  # what GCPC's components take
    assert vertex.models[output.metadata["modelResourceName"]][0]["labels"]["mlflow-run-id"] == RUN_ID
