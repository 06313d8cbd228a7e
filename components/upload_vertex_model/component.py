"""KFP interface of upload_vertex_model."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from components import images
from components.artifact_types import VertexModel


@dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
def upload_vertex_model(
    model: Input[Model],
    registered: Input[Artifact],
    vertex_model: Output[VertexModel],
    project: str = "{{$.pipeline_google_cloud_project_id}}",
    location: str = "{{$.pipeline_google_cloud_location}}",
    serving_container_image_uri: str = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest",
    version_aliases: list = ["production"],  # noqa: B006
    is_default_version: bool = True,
    labels: dict = {},  # noqa: B006
) -> str:
    """Uploads the registered SavedModel to the Vertex AI Model Registry, as a new version of
    the Vertex model named like the MLflow registered model, with MLflow's aliases.

    The Vertex model is found by its label ``kfp-ct-registered-model`` (the MLflow name, as a
    label value) and display name; the first upload creates it. The version gets the aliases
    ``v<MLflow version>`` and ``version_aliases``; Vertex keeps an alias on one version of a
    model, so ``production`` leaves the version that had it. Its labels carry the MLflow
    version (``mlflow-version``) and run (``mlflow-run-id``), and the Vertex AI Pipelines run
    labels (billing). A retried task finds the version it uploaded by those labels and does not
    upload it twice (missing aliases are added). Vertex reads the SavedModel from the model
    artifact's gs:// folder (``<uri>/<version>``) and does not copy it: keep the pipeline root
    out of bucket lifecycle rules that would delete it while Vertex serves it.

    Args:
        model: The blessed model (TF-Serving layout ``<version>/saved_model.pb``; on Vertex
            AI Pipelines its URI is gs://).
        registered: register_model's output (metadata: name, version, run_id).
        vertex_model: Output; google.VertexModel as GCPC's ModelUploadOp writes it: uri
            ``https://<location>-aiplatform.googleapis.com/v1/<resourceName>``, metadata
            resourceName (``projects/<p>/locations/<l>/models/<id>@<version id>``), plus
            modelResourceName, versionId, versionAliases, displayName, artifactUri,
            mlflowModelName, mlflowVersion and uploaded (false when a retry found it).
        project: Google Cloud project of the Model Registry; the pipeline's own project on
            Vertex AI Pipelines (elsewhere pass it).
        location: Vertex AI region, e.g. europe-west4; the pipeline's own region on Vertex AI
            Pipelines (elsewhere pass it).
        serving_container_image_uri: Serving container (default: Vertex's prebuilt TensorFlow
            2 CPU prediction image; a newer TensorFlow than the image's may need your own).
        version_aliases: Aliases the version takes besides ``v<MLflow version>`` (moved off
            any other version of the model); [] for none.
        is_default_version: Whether the version also becomes the model's ``default`` (what
            Vertex uses when no version is named); the first version always is.
        labels: Extra labels for the version (ours win on the keys above).

    Returns:
        The version's resource name, ``projects/<p>/locations/<l>/models/<id>@<version id>``.
    """
    import logging

    from components import interface
    from components.upload_vertex_model import runtime

    logging.basicConfig(level=logging.INFO)
    result = interface.call(
        runtime.run,
        locals(),
        model_dir=model.path,
        model_uri=model.uri,
        registered_model_name=str(registered.metadata.get("name", "")),
        registered_model_version=str(registered.metadata.get("version", "")),
        mlflow_run_id=str(registered.metadata.get("run_id") or ""),
    )
    vertex_model.uri = result.pop("uri")
    vertex_model.metadata.update(result)
    return result["resourceName"]
