"""KFP interface of train_model_on_vertex."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components import images


@dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
def train_model_on_vertex(
    schema: Input[Artifact],
    model: Output[Model],
    eval_data: Output[Dataset],
    metrics: Output[Metrics],
    tensorboard: Output[Artifact],
    label: str,
    data: Input[Dataset] = None,
    data_uri: str = "",
    data_fingerprint: str = "",
    features: list = [],  # noqa: B006
    exclude_features: list = [],  # noqa: B006
    categorical_columns: list = [],  # noqa: B006
    timestamp_column: str = "",
    eval_fraction: float = 0.2,
    task: str = "auto",
    epochs: int = 20,
    batch_size: int = 128,
    learning_rate: float = 0.003,
    hidden_units: list = [64, 32],  # noqa: B006
    dropout: float = 0.1,
    model_fn: str = "",
    mixed_precision: str = "auto",
    checkpoint_uri: str = "",
    early_stopping_patience: int = 3,
    seed: int = 42,
    mlflow_tracking_uri: str = "",
    mlflow_experiment: str = "continuous-training",
    replica_count: int = 2,
    machine_type: str = "n1-standard-8",
    accelerator_type: str = "",
    accelerator_count: int = 0,
    boot_disk_size_gb: int = 100,
    service_account: str = "",
    network: str = "",
    env: dict = {},  # noqa: B006
    labels: dict = {},  # noqa: B006
    trainer_image: str = "",
    project: str = "{{$.pipeline_google_cloud_project_id}}",
    location: str = "{{$.pipeline_google_cloud_location}}",
    pipeline_run_id: str = "",
):
    """Trains like train_model, as a Vertex AI custom job of several replicas.

    Creates a CustomJob whose worker pools are Vertex's layout for distributed TensorFlow:
    workerpool0 is the chief (1 replica), workerpool1 the other replica_count - 1 workers, all
    on machine_type with accelerator_count accelerator_type GPUs, each running train_model's job
    entry point (python -m components.train_model.job) in the trainer image with
    MultiWorkerMirroredStrategy (TF_CONFIG from Vertex, or from its CLUSTER_SPEC). Polls the
    job until it ends, logging each state; a failed or cancelled job fails this task with the
    job's error and its console link; terminating this task (a cancelled pipeline run)
    cancels the job. A retry finds the job its earlier attempt created (label kfp-ct-task,
    from the model artifact's URI) and waits for it, or, when that one failed, starts a new one
    that resumes from the checkpoint. The replicas stage their outputs in Cloud Storage beside
    the model artifact (<model>_job, the job's base output directory), copied into this task's
    outputs at the end: the outputs are those of train_model, so the steps after it are
    unchanged.

    Args:
        schema: TFDV schema (text proto from infer_schema); copied where the replicas read it.
        model: Output SavedModel folder in the TF-Serving layout (<model>/1/saved_model.pb),
            with train_model's metadata.
        eval_data: Output held-out split as Parquet (raw columns, label included).
        metrics: Output final eval metrics, epochs, examples_per_second, row counts.
        tensorboard: Output TensorBoard logs folder (plus the per-epoch training_log.csv).
        label: Label column. Binary, multiclass (ints or strings) or regression.
        data: Training data (CSV or Parquet); its URI is what the replicas read.
        data_uri: Training data URI the replicas can read (gs:// or /gcs/); give this or data.
        data_fingerprint: fingerprint_data's fingerprint of data_uri (the cache key; recorded
            as the model's data_hash).
        features: Feature columns; empty means every schema feature except the label,
            timestamp_column and exclude_features.
        exclude_features: Columns never used as features.
        categorical_columns: Numeric columns to treat as integer-coded categories.
        timestamp_column: When set, the latest eval_fraction rows are the eval split.
        eval_fraction: Share of rows held out for evaluation, between 0 and 1.
        task: "auto", "binary", "multiclass" or "regression".
        epochs: Maximum number of epochs.
        batch_size: Examples per step and replica (the global batch is batch_size times the
            replicas of all machines).
        learning_rate: Adam learning rate.
        hidden_units: Sizes of the hidden Dense layers.
        dropout: Dropout rate after each hidden layer (0 disables).
        model_fn: Optional "package.module:function" building the model (see train_model).
        mixed_precision: "auto" (mixed_float16 on GPUs with compute capability >= 7.0), "on"
            or "off".
        checkpoint_uri: Root for checkpoints every replica reaches; each task run gets its own
            subfolder (the same on every retry). Empty means "<model artifact URI>_checkpoints".
        early_stopping_patience: Epochs without val_loss improvement before stopping; 0
            disables early stopping.
        seed: Seed for the split, weight initialization, shuffling and dropout.
        mlflow_tracking_uri: MLflow server; empty uses this task's MLFLOW_TRACKING_URI
            (passed to the replicas), and without either nothing is logged.
        mlflow_experiment: MLflow experiment name.
        replica_count: Replicas of the job, the chief included: workerpool0 gets 1 (the
            chief), workerpool1 the other replica_count - 1; 1 trains on one machine.
        machine_type: Compute Engine machine type of every replica, e.g. n1-standard-8,
            a2-highgpu-1g, g2-standard-8.
        accelerator_type: Accelerator of every replica as Vertex names it, e.g.
            NVIDIA_TESLA_T4, NVIDIA_L4, NVIDIA_TESLA_A100; empty for none.
        accelerator_count: Accelerators per replica; 0 trains on CPU (accelerator_type is
            then ignored). Several GPUs on a replica are mirrored within it.
        boot_disk_size_gb: Boot disk of every replica, in GB.
        service_account: Service account the replicas run as (it needs the pipeline root's
            bucket and the data); empty means Vertex's default for custom training.
        network: VPC network to peer the job with, projects/<number>/global/networks/<name>;
            empty for none.
        env: Extra environment variables of every replica (not secrets: the job's spec shows
            them), e.g. {"MLFLOW_TRACKING_INSECURE_TLS": "true"}.
        labels: Extra labels of the job (ours win on kfp-ct-task and kfp-ct-pipeline-run).
        trainer_image: Image of the replicas; empty means this release's GPU trainer image
            (images.TRAINER_GPU; the pipelines pass the one images.use points at).
        project: Google Cloud project of the job; the pipeline's own on Vertex AI Pipelines.
        location: Vertex AI region of the job; the pipeline's own on Vertex AI Pipelines.
        pipeline_run_id: The pipeline run, as the job's kfp-ct-pipeline-run label (pass
            dsl.PIPELINE_JOB_ID_PLACEHOLDER); Vertex AI Pipelines' own run labels are added too.
    """
    import logging

    from components import interface
    from components.train_model import job
    from components.train_model_on_vertex import runtime

    logging.basicConfig(level=logging.INFO)
    eval_data.uri += ".parquet"
    result = interface.call(
        runtime.run,
        locals(),
        schema_path=schema.path,
        model_dir=model.path,
        eval_data_path=eval_data.path,
        tensorboard_dir=tensorboard.path,
        model_uri=model.uri,
        data_uri=data_uri or (data.uri if data else ""),
    )
    job.apply(result, model=model, eval_data=eval_data, metrics=metrics)
