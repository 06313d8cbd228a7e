"""KFP interface of train_model."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components import images


@dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
def train_model(
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
):
    """Trains a Keras model on tabular data and exports it for TF Serving.

    The model is built from the TFDV schema: numeric features are normalized (missing values
    imputed with the training mean, plus a missing indicator), string and integer-coded
    categories go through lookup layers (one-hot, or embeddings for large vocabularies). All
    preprocessing is inside the exported model, so serving takes raw features by name.
    Runs on the default strategy (CPU, one GPU), MirroredStrategy (several GPUs) or
    MultiWorkerMirroredStrategy (TF_CONFIG with several workers); for GPUs run the task in
    the trainer-gpu image. Checkpoints every epoch, so a retried task resumes.

    Args:
        schema: TFDV schema (text proto from infer_schema): feature types and categories.
        model: Output SavedModel folder in the TF-Serving layout (<model>/1/saved_model.pb),
            signature serving_default (one [None] input per feature; output "predictions").
            Metadata: framework, task, label, features {name: float|int|string}, classes,
            serving_version, data_hash (the data's fingerprint), data_uri, mlflow_run_id;
            feature_refs when the data is a feature store's training set (its record is also
            in <model>/1/assets.extra/feature_store.json, what serving looks features up by).
        eval_data: Output held-out split as Parquet (raw columns, label included).
        metrics: Output final eval metrics (loss, auc/accuracy or mae/rmse), epochs,
            examples_per_second, row counts.
        tensorboard: Output TensorBoard logs folder (plus the per-epoch training_log.csv).
        label: Label column. Binary, multiclass (ints or strings) or regression.
        data: Training data (CSV or Parquet); give this or data_uri.
        data_uri: Training data as a local path or gs:// / s3:// URI; give this or data.
        data_fingerprint: fingerprint_data's fingerprint of data_uri: part of this step's
            cache key and recorded as the model's data_hash (empty: the data is hashed here).
        features: Feature columns; empty means every schema feature except the label,
            timestamp_column and exclude_features.
        exclude_features: Columns never used as features (e.g. a column leaking the label).
        categorical_columns: Numeric columns to treat as integer-coded categories (on top of
            int features the schema marks is_categorical).
        timestamp_column: When set, the latest eval_fraction rows by this column are the eval
            split (no training on the future); otherwise the split is random (seeded).
        eval_fraction: Share of rows held out for evaluation, between 0 and 1.
        task: "auto" (from the label: 2 values binary, few integer or string values
            multiclass, else regression), "binary", "multiclass" or "regression".
        epochs: Maximum number of epochs.
        batch_size: Examples per step and replica.
        learning_rate: Adam learning rate.
        hidden_units: Sizes of the hidden Dense layers.
        dropout: Dropout rate after each hidden layer (0 disables).
        model_fn: Optional "package.module:function" building the model body or the whole
            model: fn(inputs, encoded, info) -> tensor or keras.Model (see _model.py).
        mixed_precision: "auto" (mixed_float16 on GPUs with compute capability >= 7.0),
            "on" or "off".
        checkpoint_uri: Root for checkpoints (weights, optimizer state, epoch), the training
            log and the MLflow run id, through the URI layer (minio://, gs://, s3://, a mounted
            path): each task run writes to its own subfolder (named from its model artifact's
            URI, the same on every retry), mirrored after every epoch and restored by a retry
            on a fresh pod. Empty means "<model artifact URI>_checkpoints".
        early_stopping_patience: Epochs without val_loss improvement before stopping (best
            weights are restored); 0 disables early stopping.
        seed: Seed for the split, weight initialization, shuffling and dropout.
        mlflow_tracking_uri: MLflow server; empty uses MLFLOW_TRACKING_URI, and without either
            nothing is logged. The run gets params, per-epoch metrics, the data hash, the
            image version and the model folder.
        mlflow_experiment: MLflow experiment name.
    """
    import logging

    from components import interface
    from components.train_model import job, runtime

    logging.basicConfig(level=logging.INFO)
    eval_data.uri += ".parquet"
    result = interface.call(
        runtime.run,
        locals(),
        schema_path=schema.path,
        model_dir=model.path,
        eval_data_path=eval_data.path,
        tensorboard_dir=tensorboard.path,
        data_path=data.path if data else "",
        data_artifact_uri=data.uri if data else "",
        checkpoint_uri=job.checkpoint_folder(checkpoint_uri, model.uri),
    )
    job.apply(vars(result), model=model, eval_data=eval_data, metrics=metrics)
