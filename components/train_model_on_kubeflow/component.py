"""KFP interface of train_model_on_kubeflow."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components import images


@dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
def train_model_on_kubeflow(
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
    num_nodes: int = 2,
    cpu_per_node: str = "4",
    memory_per_node: str = "16Gi",
    gpus_per_node: int = 1,
    gpu_resource: str = "nvidia.com/gpu",
    training_runtime: str = "kfp-ct-tensorflow",
    training_runtime_kind: str = "TrainingRuntime",
    namespace: str = "",
    trainer_image: str = "",
    pipeline_run_id: str = "",
    pipeline_task_name: str = "",
):
    """Trains like train_model, as a Kubeflow Trainer TrainJob of several nodes.

    Creates a TrainJob (trainer.kubeflow.org/v1alpha1) of num_nodes nodes, each running
    train_model's job entry point (python -m components.train_model.job) with
    MultiWorkerMirroredStrategy: TF_CONFIG lists the nodes by their JobSet host names and each
    pod is the worker of its JOB_COMPLETION_INDEX (worker 0, the chief, writes the outputs).
    Watches it, shows the chief's log in this step's log, fails naming the pod and its reason
    when a node fails or is evicted or preempted, and deletes the TrainJob when it ends or when
    this task is terminated. A retry adopts the TrainJob its earlier attempt created (the name
    comes from the model artifact's URI), or replaces a failed one and resumes from the
    checkpoint. The outputs are those of train_model, so the steps after it are unchanged.
    Needs the TrainingRuntime of manifests/trainer and the Role of manifests/rbac.

    Args:
        schema: TFDV schema (text proto from infer_schema); copied where the nodes read it.
        model: Output SavedModel folder in the TF-Serving layout (<model>/1/saved_model.pb),
            with train_model's metadata.
        eval_data: Output held-out split as Parquet (raw columns, label included).
        metrics: Output final eval metrics, epochs, examples_per_second, row counts.
        tensorboard: Output TensorBoard logs folder (plus the per-epoch training_log.csv).
        label: Label column. Binary, multiclass (ints or strings) or regression.
        data: Training data (CSV or Parquet); its URI is what the nodes read.
        data_uri: Training data URI the nodes can read (gs://, s3://, minio://, a shared
            volume); give this or data.
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
            replicas of all nodes).
        learning_rate: Adam learning rate.
        hidden_units: Sizes of the hidden Dense layers.
        dropout: Dropout rate after each hidden layer (0 disables).
        model_fn: Optional "package.module:function" building the model (see train_model).
        mixed_precision: "auto" (mixed_float16 on GPUs with compute capability >= 7.0), "on"
            or "off".
        checkpoint_uri: Root for checkpoints every node reaches; each task run gets its own
            subfolder (the same on every retry). Empty means "<model artifact URI>_checkpoints".
        early_stopping_patience: Epochs without val_loss improvement before stopping; 0
            disables early stopping.
        seed: Seed for the split, weight initialization, shuffling and dropout.
        mlflow_tracking_uri: MLflow server; empty uses the nodes' MLFLOW_TRACKING_URI (the
            mlflow-tracking secret, passed to them), and without either nothing is logged.
        mlflow_experiment: MLflow experiment name.
        num_nodes: Nodes (pods) of the TrainJob: spec.trainer.numNodes; each is one worker.
        cpu_per_node: CPU request of each node, e.g. "8".
        memory_per_node: Memory request of each node, e.g. "32Gi".
        gpus_per_node: GPUs of each node (a limit on gpu_resource); 0 trains on CPU. Several
            GPUs on a node are mirrored within it.
        gpu_resource: The GPU's extended resource name, e.g. nvidia.com/gpu or amd.com/gpu.
        training_runtime: The runtime the TrainJob references (spec.runtimeRef.name):
            manifests/trainer's TrainingRuntime kfp-ct-tensorflow, or your platform's.
        training_runtime_kind: "TrainingRuntime" (in the namespace) or "ClusterTrainingRuntime".
        namespace: Namespace of the TrainJob; empty means this task's own namespace.
        trainer_image: Image of the nodes; empty means this release's GPU trainer image
            (images.TRAINER_GPU; the pipelines pass the one images.use points at).
        pipeline_run_id: The pipeline run, as the TrainJob's pipeline/runid label (pass
            dsl.PIPELINE_JOB_ID_PLACEHOLDER).
        pipeline_task_name: The task, as the TrainJob's pipeline/task label (pass
            dsl.PIPELINE_TASK_NAME_PLACEHOLDER).
    """
    import logging

    from components import interface
    from components.train_model import job
    from components.train_model_on_kubeflow import runtime

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
