"""KFP interface of register_model."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from components import images


@dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
def register_model(
    model: Input[Model],
    registered: Output[Artifact],
    registered_model_name: str,
    mlflow_tracking_uri: str = "",
    schema: Input[Artifact] = None,
    statistics: Input[Artifact] = None,
    anomalies: Input[Artifact] = None,
    blessing: Input[Artifact] = None,
    eval_data: Input[Dataset] = None,
    predictions: Input[Dataset] = None,
    pipeline_run_id: str = "",
    alias: str = "candidate",
    experiment: str = "continuous-training",
) -> str:
    """Registers the blessed SavedModel as a new version of an MLflow registered model.

    The model is logged as an MLflow 3 LoggedModel that mlflow.pyfunc.load_model loads, with a
    signature and an input example from its serving inputs; its folder is also the SavedModel
    in the TF-Serving layout (1/saved_model.pb) that KServe serves. It is logged into the
    training run (the version's source run: params, per-epoch metrics, data fingerprint and the
    evaluation metrics), else into the run KFP's MLflow integration injected (MLFLOW_RUN_ID),
    else into a new run in ``experiment``. Schema, statistics, anomalies, evaluation data and
    blessing are stored with the version in MLflow (the pipeline root is scratch space: the
    next run and the serving side read them from MLflow); the version's tags point there and
    carry the training data's URI and fingerprint, the evaluation summary, pipeline run id and
    image version. The alias ``alias`` moves to it once it is READY. Aliases only, never the
    deprecated stages. MLflow retries an unreachable server (MLFLOW_HTTP_REQUEST_MAX_RETRIES),
    then the component fails naming the URI.

    Args:
        model: The trained model (folder with ``1/saved_model.pb``; metadata holds data_hash
            and data_uri).
        registered: Output; JSON and metadata with name, version, model_uri
            ("models:/<name>/<version>"), tracking_uri, run_id, alias.
        registered_model_name: Name of the registered model in MLflow.
        mlflow_tracking_uri: MLflow tracking URI; empty uses the MLFLOW_TRACKING_URI env var
            (e.g. from a Kubernetes secret).
        schema: Optional schema the data was validated against; stored with the version
            (resolve_baseline reads it back for the next run's data gate).
        statistics: Optional training data statistics; stored with the version (the next
            run's drift baseline).
        anomalies: Optional data validation anomalies; stored with the version.
        blessing: Optional model-is-blessed verdict (JSON); stored with the version, and its
            outcome, summary and check values become tags. A failed blessing is refused.
        eval_data: Optional held-out evaluation rows; stored with the version (the reference
            for monitoring and reproduction).
        predictions: Optional evaluation predictions (evaluate_model's); stored with the
            version (what monitoring compares served predictions with).
        pipeline_run_id: The pipeline run id, recorded as a tag (e.g. dsl.PIPELINE_JOB_ID_PLACEHOLDER).
        alias: Alias moved to the new version ("candidate"; deploy_model moves "production").
        experiment: MLflow experiment of a new run (without a training or injected run).

    Returns:
        The new version number, as a string.
    """
    import logging

    from components import interface
    from components.register_model import runtime

    logging.basicConfig(level=logging.INFO)
    lineage = dict(
        schema=schema, statistics=statistics, anomalies=anomalies, blessing=blessing, eval_data=eval_data,
        predictions=predictions,
    )
    given = {name: artifact for name, artifact in lineage.items() if artifact is not None}
    result = interface.call(
        runtime.run,
        locals(),
        model_dir=model.path,
        model_metadata=dict(model.metadata),
        model_uri=model.uri,
        lineage_paths={name: a.path for name, a in given.items()},
        pipeline_artifact_uris={name: a.uri for name, a in given.items()},
        output_path=registered.path,
    )
    registered.metadata.update(result)
    return result["version"]
