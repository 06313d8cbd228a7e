"""The gated continuous-training pipeline, built for one platform at a time.

Kubeflow and Vertex AI get the same steps and gates; they differ in what the platform
understands: Kubernetes-only settings (node selector, tolerations, secrets as env) go in a
second YAML document that Vertex rejects, and accelerator names differ (``nvidia.com/gpu`` vs
``NVIDIA_TESLA_T4``). ``pipelines/training.py`` and ``pipelines/training_vertex.py`` each
build one variant.
"""


from kfp import dsl, kubernetes

from components import (
    compute_statistics,
    deploy_model,
    evaluate_model,
    images,
    infer_schema,
    record_verdict,
    register_model,
    resolve_baseline,
    summarize_run,
    train_model,
    validate_data,
)

KUBEFLOW, VERTEX = "kubeflow", "vertex"
DEFAULT_ACCELERATOR = {KUBEFLOW: "nvidia.com/gpu", VERTEX: "NVIDIA_TESLA_T4"}

RECORD_DIR = f"{dsl.PIPELINE_ROOT_PLACEHOLDER}/run-records/{dsl.PIPELINE_JOB_ID_PLACEHOLDER}"
"""One folder per run where each gate leaves its verdict for the exit handler's summary."""

# Steps that talk to storage, MLflow or Kubernetes retry transient failures; training retries
# too, and resumes from its checkpoint instead of starting over.
NETWORK_RETRY = dict(num_retries=3, backoff_duration="30s", backoff_factor=2.0, backoff_max_duration="600s")
TRAIN_RETRY = dict(num_retries=2, backoff_duration="60s", backoff_factor=2.0, backoff_max_duration="600s")


def kubernetes_settings(task, enabled: bool, *, mlflow_secret: bool = False, minio: bool = False):
    """Kubeflow-only pod settings; Vertex gets none (they would add a second YAML document)."""
    if not enabled:
        return task
    if mlflow_secret:
        # Optional: a cluster can provide the tracking URI (and credentials) as a secret.
        kubernetes.use_secret_as_env(
            task,
            secret_name="mlflow-tracking",
            secret_key_to_env={
                "uri": "MLFLOW_TRACKING_URI",
                "username": "MLFLOW_TRACKING_USERNAME",
                "password": "MLFLOW_TRACKING_PASSWORD",
            },
            optional=True,
        )
    if minio:
        # The run record lives under the pipeline root, KFP's MinIO store by default.
        kubernetes.use_secret_as_env(
            task,
            secret_name="mlpipeline-minio-artifact",
            secret_key_to_env={"accesskey": "AWS_ACCESS_KEY_ID", "secretkey": "AWS_SECRET_ACCESS_KEY"},
            optional=True,
        )
    return task


def live(task, pod_settings: bool, **settings):
    """A step that reads or changes live state (MLflow, storage, production): never cached,
    retried with backoff, with its Kubeflow pod settings (see kubernetes_settings)."""
    task.set_caching_options(False).set_retry(**NETWORK_RETRY)
    return kubernetes_settings(task, pod_settings, **settings)


def build(platform: str, *, pod_settings: bool | None = None):
    """Returns the training pipeline for ``platform`` ("kubeflow" or "vertex").

    ``pod_settings`` (default: on Kubeflow) adds the kfp-kubernetes pod settings. A pipeline
    that nests this one turns them off: kfp 2.17 merges a nested pipeline's platform settings
    in protobuf-map order, which lands them on the wrong tasks when executor names collide.
    """
    if platform not in DEFAULT_ACCELERATOR:
        raise ValueError(f"platform must be 'kubeflow' or 'vertex', got {platform!r}")
    on_kubeflow = platform == KUBEFLOW
    pod_settings = on_kubeflow if pod_settings is None else pod_settings

    def training(
        data_uri: str,
        label: str = "churned",
        features: list = [],  # noqa: B006 - KFP pipeline defaults are compiled, never mutated
        exclude_features: list = [],  # noqa: B006
        categorical_columns: list = [],  # noqa: B006
        timestamp_column: str = "",
        schema_uri: str = "",
        previous_statistics_uri: str = "",
        serving_statistics_uri: str = "",
        first_run_policy: str = "warn",
        numeric_drift_threshold: float = 0.1,
        categorical_drift_threshold: float = 0.1,
        epochs: int = 20,
        batch_size: int = 128,
        learning_rate: float = 0.003,
        hidden_units: list = [64, 32],  # noqa: B006
        accelerator_type: str = DEFAULT_ACCELERATOR[platform],
        accelerator_count: int = 1,
        train_cpu: str = "4",
        train_memory: str = "16Gi",
        train_node_selector: dict = {},  # noqa: B006
        train_tolerations: list = [],  # noqa: B006
        thresholds: dict = {"auc": 0.7},  # noqa: B006
        change_thresholds: dict = {"auc": 0.01},  # noqa: B006
        max_latency_p95_ms: float = 100.0,
        baseline_source: str = "mlflow",
        mlflow_tracking_uri: str = "",
        registered_model_name: str = "churn-classifier",
        deploy_target: str = "kserve",
        service_name: str = "churn-classifier",
        namespace: str = "default",
        storage_uri: str = "",
        local_serving_dir: str = "",
        local_endpoint: str = "",
        webhook_url: str = "",
    ):
        """Validates data, trains, evaluates against production, registers and deploys.

        Two gates stop bad work: `data-is-valid` (TFDV schema, drift and skew checks) before
        training, and `model-is-blessed` (thresholds and comparison with the production model)
        before registration and deployment. An exit handler always writes a run summary.

        Args:
            data_uri: Training data, CSV or Parquet (local path, gs:// or s3://).
            label: The label column.
            features: Feature columns; empty means every column but the label and timestamp.
            exclude_features: Columns never to use as features (e.g. ones that leak the label).
            categorical_columns: Integer-coded columns to treat as categories.
            timestamp_column: When set, the evaluation split is the most recent rows.
            schema_uri: A curated schema (text proto); empty uses production's, or infers one.
            previous_statistics_uri: Statistics to measure drift against; empty uses production's.
            serving_statistics_uri: Statistics of serving data, to measure training/serving skew.
            first_run_policy: pass, warn or fail when there is nothing to measure drift against.
            numeric_drift_threshold: Jensen-Shannon divergence allowed for numeric features.
            categorical_drift_threshold: L-infinity distance allowed for categorical features.
            epochs: Maximum training epochs (early stopping may end sooner).
            batch_size: Training batch size.
            learning_rate: Adam learning rate.
            hidden_units: Sizes of the hidden layers.
            accelerator_type: GPU type for training (Kubeflow: nvidia.com/gpu; Vertex: e.g. NVIDIA_TESLA_T4).
            accelerator_count: GPUs for training; 0 trains on CPU.
            train_cpu: CPU request of the training task.
            train_memory: Memory request of the training task.
            train_node_selector: Kubeflow only: node labels for the training pod, e.g.
                {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"} (Vertex ignores it).
            train_tolerations: Kubeflow only: tolerations for the training pod, e.g.
                [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}].
            thresholds: Absolute bounds the candidate must meet, e.g. {"auc": 0.7}.
            change_thresholds: Largest allowed degradation vs production, e.g. {"auc": 0.01}.
            max_latency_p95_ms: Largest allowed p95 single-example prediction latency.
            baseline_source: Where the production model comes from: mlflow, kserve or none.
            mlflow_tracking_uri: MLflow tracking URI; empty uses MLFLOW_TRACKING_URI.
            registered_model_name: The MLflow registered model.
            deploy_target: kserve (an InferenceService) or local (a local KServe model server).
            service_name: The InferenceService (or local model) name.
            namespace: Kubernetes namespace of the InferenceService.
            storage_uri: Where the cluster reads the model from; empty uses the model artifact's URI.
            local_serving_dir: For deploy_target=local: the folder the local model server serves.
            local_endpoint: For deploy_target=local: the running local model server to reload.
            webhook_url: When set, the run summary is POSTed there.
        """
        summary = summarize_run(record_dir=RECORD_DIR, webhook_url=webhook_url)
        live(summary, pod_settings, minio=True)

        with dsl.ExitHandler(summary, name="run-summary"):
            baseline = resolve_baseline(
                mlflow_tracking_uri=mlflow_tracking_uri,
                registered_model_name=registered_model_name,
                schema_uri=schema_uri,
                statistics_uri=previous_statistics_uri,
            )
            live(baseline, pod_settings, mlflow_secret=True)  # production moves between runs

            statistics = compute_statistics(data_uri=data_uri, categorical_columns=categorical_columns)
            statistics.set_retry(**NETWORK_RETRY)
            schema = infer_schema(
                statistics=statistics.outputs["statistics"],
                label=label,
                curated_schema_uri=baseline.outputs["schema_uri"],
                categorical_columns=categorical_columns,
                numeric_drift_threshold=numeric_drift_threshold,
                categorical_drift_threshold=categorical_drift_threshold,
            )
            validation = validate_data(
                statistics=statistics.outputs["statistics"],
                schema=schema.outputs["schema"],
                previous_statistics_uri=baseline.outputs["statistics_uri"],
                serving_statistics_uri=serving_statistics_uri,
                first_run_policy=first_run_policy,
            )
            _record(validation.outputs["report"], "data-is-valid", pod_settings)

            with dsl.If(validation.outputs["Output"] == True, name="data-is-valid"):  # noqa: E712
                train = train_model(
                    schema=schema.outputs["schema"],
                    data_uri=data_uri,
                    label=label,
                    features=features,
                    exclude_features=exclude_features,
                    categorical_columns=categorical_columns,
                    timestamp_column=timestamp_column,
                    epochs=epochs,
                    batch_size=batch_size,
                    learning_rate=learning_rate,
                    hidden_units=hidden_units,
                    mlflow_tracking_uri=mlflow_tracking_uri,
                )
                train.set_container_image(images.TRAINER_GPU)
                train.set_accelerator_type(accelerator_type).set_accelerator_limit(accelerator_count)
                train.set_cpu_request(train_cpu).set_memory_request(train_memory)
                # kfp 2.17 does not pass parameters used only in resource settings into the
                # enclosing dsl.If, so the spec would reference undefined inputs: register them.
                resource_parameters = [accelerator_type, accelerator_count, train_cpu, train_memory]
                train.register_pipeline_channels(resource_parameters)
                train.set_retry(**TRAIN_RETRY)
                kubernetes_settings(train, pod_settings, mlflow_secret=True)
                if pod_settings:
                    kubernetes.add_node_selector_json(train, train_node_selector)
                    kubernetes.add_toleration_json(train, train_tolerations)

                evaluation = evaluate_model(
                    model=train.outputs["model"],
                    eval_data=train.outputs["eval_data"],
                    thresholds=thresholds,
                    change_thresholds=change_thresholds,
                    max_latency_p95_ms=max_latency_p95_ms,
                    baseline_source=baseline_source,
                    mlflow_tracking_uri=mlflow_tracking_uri,
                    registered_model_name=registered_model_name,
                    kserve_service=service_name,
                    kserve_namespace=namespace,
                )
                live(evaluation, pod_settings, mlflow_secret=True)  # its baseline is what serves now
                _record(evaluation.outputs["blessing"], "model-is-blessed", pod_settings)

                with dsl.If(evaluation.outputs["Output"] == True, name="model-is-blessed"):  # noqa: E712
                    registration = register_model(
                        model=train.outputs["model"],
                        schema=schema.outputs["schema"],
                        statistics=statistics.outputs["statistics"],
                        anomalies=validation.outputs["anomalies"],
                        blessing=evaluation.outputs["blessing"],
                        mlflow_tracking_uri=mlflow_tracking_uri,
                        registered_model_name=registered_model_name,
                        pipeline_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                    )
                    live(registration, pod_settings, mlflow_secret=True)

                    deployment = deploy_model(
                        model=train.outputs["model"],
                        eval_data=train.outputs["eval_data"],
                        service_name=service_name,
                        target=deploy_target,
                        namespace=namespace,
                        storage_uri=storage_uri,
                        local_serving_dir=local_serving_dir,
                        local_endpoint=local_endpoint,
                        mlflow_tracking_uri=mlflow_tracking_uri,
                        registered_model_name=registered_model_name,
                        model_version=registration.outputs["Output"],
                    )
                    # Deploying is an action on live traffic: never cached. It rolls back by
                    # itself; a retry would repeat a rollout, so it is not retried either.
                    deployment.set_caching_options(False)
                    kubernetes_settings(deployment, pod_settings, mlflow_secret=True)
                    _record(deployment.outputs["verdict"], "deployment-is-healthy", pod_settings)

    training.__name__ = "training" if on_kubeflow else "training_vertex"
    name = "training" if on_kubeflow else "training-vertex"
    return dsl.pipeline(name=name)(training)


def _record(report, gate: str, pod_settings: bool):
    return live(record_verdict(report=report, record_dir=RECORD_DIR, gate=gate), pod_settings, minio=True)
