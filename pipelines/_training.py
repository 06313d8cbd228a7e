"""The gated continuous-training pipeline, built for one platform at a time.

Kubeflow and Vertex AI get the same steps and gates; they differ in what the platform
understands: Kubernetes-only settings (node selector, tolerations, secrets as env) go in a
second YAML document that Vertex rejects, and accelerator names differ (``nvidia.com/gpu`` vs
``NVIDIA_TESLA_T4``). ``pipelines/training.py`` and ``pipelines/training_vertex.py`` each
build one variant.

The training data comes from a file (``data_uri``) or, in the feature-store variants
(``pipelines/training_feature_store.py``, ``..._vertex.py``), from ``build_training_set``: a
point-in-time correct training set from a Feast feature repository. Everything after that first
step is the same code (``gated_training``).
"""

import inspect
from types import SimpleNamespace

from kfp import dsl, kubernetes
from kfp.dsl.pipeline_channel import PipelineChannel

from components import (
    build_training_set,
    check_data,
    deploy_model,
    evaluate_model,
    images,
    record_verdict,
    register_model,
    resolve_inputs,
    summarize_run,
    train_model,
    train_model_on_kubeflow,
    train_model_on_vertex,
    upload_vertex_model,
    uris,
)
from components.registry import TRACKING_SECRET, TRACKING_SECRET_KEYS

KUBEFLOW, VERTEX = "kubeflow", "vertex"
FILE, FEATURE_STORE = "file", "feature_store"
"""Where a training pipeline's data comes from: a file, or a Feast feature store."""
DEFAULT_ACCELERATOR = {KUBEFLOW: "nvidia.com/gpu", VERTEX: "NVIDIA_TESLA_T4"}

RECORD_DIR = f"{dsl.PIPELINE_ROOT_PLACEHOLDER}/run-records/{dsl.PIPELINE_JOB_ID_PLACEHOLDER}"
"""One folder per run where each gate leaves its verdict for the exit handler's summary."""

# Steps that talk to storage, MLflow or Kubernetes retry transient failures; training retries
# too, and resumes from its checkpoint instead of starting over.
# MLflow's client already retries its own requests with backoff; these cover a lost pod or a
# storage blip, so the first retry comes soon (10 s, 20 s, 40 s).
NETWORK_RETRY = dict(num_retries=3, backoff_duration="10s", backoff_factor=2.0, backoff_max_duration="600s")
TRAIN_RETRY = dict(num_retries=2, backoff_duration="60s", backoff_factor=2.0, backoff_max_duration="600s")


def defaults(component) -> dict:
    """The default of every parameter of a component or compiled-in pipeline, by name.

    Pipeline parameters that feed a component take their defaults from here (the component is
    where a parameter is declared); a pipeline states the defaults it overrides on purpose.
    """
    return {
        name: spec.default
        for name, spec in component.component_spec.inputs.items()
        if spec.default is not None
    }


# The components' defaults, for the pipeline parameters that feed them.
INPUTS, CHECK = defaults(resolve_inputs), defaults(check_data)
TRAIN, EVALUATE = defaults(train_model), defaults(evaluate_model)
DEPLOY, SUMMARY = defaults(deploy_model), defaults(summarize_run)
TRAINING_SET = defaults(build_training_set)
TRAIN_ON_KUBEFLOW = defaults(train_model_on_kubeflow)


def kubernetes_settings(task, enabled: bool, *, mlflow_secret: bool = False, minio: bool = False):
    """Kubeflow-only pod settings; Vertex gets none (they would add a second YAML document)."""
    if not enabled:
        return task
    if mlflow_secret:
        # The one secret contract (components.registry, manifests/mlflow): keys are MLflow's
        # own variable names. Optional, so a run that passes mlflow_tracking_uri needs none;
        # a task that needs MLflow and gets no URI fails naming the secret and its key.
        kubernetes.use_secret_as_env(
            task,
            secret_name=TRACKING_SECRET,
            secret_key_to_env={key: key for key in TRACKING_SECRET_KEYS},
            optional=True,
        )
    if minio:
        # The run record lives under the pipeline root, KFP's MinIO store by default.
        kubernetes.use_secret_as_env(
            task,
            secret_name=uris.MINIO_SECRET,
            secret_key_to_env=uris.MINIO_SECRET_KEYS,
            optional=True,
        )
    return task


def live(task, pod_settings: bool, **settings):
    """A step that reads or changes live state (MLflow, storage, production): never cached,
    retried with backoff, with its Kubeflow pod settings (see kubernetes_settings)."""
    task.set_caching_options(False).set_retry(**NETWORK_RETRY)
    return kubernetes_settings(task, pod_settings, **settings)


def build(platform: str, source: str = FILE):
    """Returns the training pipeline for ``platform`` ("kubeflow" or "vertex"); Kubeflow's
    gets the kfp-kubernetes pod settings (secrets, node selector, tolerations). ``source`` is
    where the data comes from: FILE (``data_uri``) or FEATURE_STORE (``build_training_set``)."""
    if platform not in DEFAULT_ACCELERATOR:
        raise ValueError(f"platform must be 'kubeflow' or 'vertex', got {platform!r}")
    if source not in (FILE, FEATURE_STORE):
        raise ValueError(f"source must be {FILE!r} or {FEATURE_STORE!r}, got {source!r}")
    on_kubeflow = pod_settings = platform == KUBEFLOW

    def steps(p):
        summary = summarize_run(record_dir=RECORD_DIR, webhook_url=p.webhook_url)
        live(summary, pod_settings, minio=True)
        with dsl.ExitHandler(summary, name="run-summary"):
            if source == FEATURE_STORE:
                p.data_uri = feature_store_data(p, pod_settings)
            gated_training(p, pod_settings)

    # Defaults come from the components each parameter feeds. Set here on purpose: the demo's
    # label and model/service names, deploy_target (a cluster pipeline deploys to KServe, the
    # component defaults to local) and the training pod's resources (the pipeline's alone).
    def training(
        data_uri: str,
        label: str = "churned",
        features: list = TRAIN["features"],
        exclude_features: list = TRAIN["exclude_features"],
        categorical_columns: list = TRAIN["categorical_columns"],
        timestamp_column: str = TRAIN["timestamp_column"],
        snapshot_uri: str = INPUTS["snapshot_uri"],
        schema_uri: str = INPUTS["schema_uri"],
        previous_statistics_uri: str = INPUTS["statistics_uri"],
        serving_statistics_uri: str = CHECK["serving_statistics_uri"],
        first_run_policy: str = CHECK["first_run_policy"],
        numeric_drift_threshold: float = CHECK["numeric_drift_threshold"],
        categorical_drift_threshold: float = CHECK["categorical_drift_threshold"],
        epochs: int = TRAIN["epochs"],
        batch_size: int = TRAIN["batch_size"],
        learning_rate: float = TRAIN["learning_rate"],
        hidden_units: list = TRAIN["hidden_units"],
        checkpoint_uri: str = TRAIN["checkpoint_uri"],
        accelerator_type: str = DEFAULT_ACCELERATOR[platform],
        accelerator_count: int = 1,
        train_cpu: str = "4",
        train_memory: str = "16Gi",
        train_node_selector: dict = {},  # noqa: B006 - KFP pipeline defaults are compiled, never mutated
        train_tolerations: list = [],  # noqa: B006
        train_workers: int = 1,
        train_machine_type: str = "n1-standard-8",
        training_runtime: str = TRAIN_ON_KUBEFLOW["training_runtime"],
        thresholds: dict = EVALUATE["thresholds"],
        change_thresholds: dict = EVALUATE["change_thresholds"],
        max_latency_p95_ms: float = EVALUATE["max_latency_p95_ms"],
        baseline_source: str = EVALUATE["baseline_source"],
        mlflow_tracking_uri: str = TRAIN["mlflow_tracking_uri"],
        registered_model_name: str = "churn-classifier",
        deploy_target: str = "kserve",
        service_name: str = "churn-classifier",
        namespace: str = DEPLOY["namespace"],
        storage_uri: str = DEPLOY["storage_uri"],
        local_serving_dir: str = DEPLOY["local_serving_dir"],
        local_endpoint: str = DEPLOY["local_endpoint"],
        prediction_log_uri: str = DEPLOY["prediction_log_uri"],
        canary_soak_seconds: int = DEPLOY["canary_soak_seconds"],
        canary_min_requests: int = DEPLOY["canary_min_requests"],
        upload_to_vertex_model_registry: bool = False,
        webhook_url: str = SUMMARY["webhook_url"],
    ):
        """Validates data, trains, evaluates against production, registers and deploys.

        Two gates stop bad work: `data-is-valid` (TFDV schema, drift and skew checks) before
        training, and `model-is-blessed` (thresholds and comparison with the production model)
        before registration and deployment. An exit handler always writes a run summary.

        Args:
            data_uri: Training data, CSV or Parquet (local path, gs://, s3:// or minio://); a
                fixed URI whose content changes is fine: the data is fingerprinted each run.
            label: The label column.
            features: Feature columns; empty means every column but the label and timestamp.
            exclude_features: Columns never to use as features (e.g. ones that leak the label).
            categorical_columns: Integer-coded columns to treat as categories.
            timestamp_column: When set, the evaluation split is the most recent rows.
            snapshot_uri: When set, the data is copied once to an immutable, content-addressed
                place under it and the run reads that copy (reproducible lineage).
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
            checkpoint_uri: Root for training checkpoints (object store or mounted volume) that
                a retried pod resumes from, one subfolder per task run; empty means a folder
                beside the model artifact under the pipeline root.
            accelerator_type: GPU type for training (Kubeflow: nvidia.com/gpu; Vertex: e.g. NVIDIA_TESLA_T4).
            accelerator_count: GPUs for training; 0 trains on CPU.
            train_cpu: CPU request of the training task.
            train_memory: Memory request of the training task.
            train_node_selector: Kubeflow only: node labels for the training pod, e.g.
                {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"} (Vertex ignores it).
            train_tolerations: Kubeflow only: tolerations for the training pod, e.g.
                [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}].
            train_workers: 1 trains in the pipeline's task; N > 1 trains on N machines with
                MultiWorkerMirroredStrategy (batch_size is per replica), each with
                accelerator_count accelerator_type GPUs: on Vertex a custom job of N replicas
                (a chief and N - 1 workers), on Kubeflow a Kubeflow Trainer TrainJob of N nodes
                (each train_cpu and train_memory; placed by training_runtime, not by
                train_node_selector / train_tolerations).
            train_machine_type: Vertex only, with train_workers > 1: every replica's machine
                type, e.g. n1-standard-8, g2-standard-8.
            training_runtime: Kubeflow only, with train_workers > 1: the TrainingRuntime the
                TrainJob runs on (manifests/trainer's kfp-ct-tensorflow, or your platform's).
            thresholds: Absolute bounds the candidate must meet, e.g. {"auc": 0.7}.
            change_thresholds: Largest allowed degradation vs production, e.g. {"auc": 0.02};
                the task's primary metric (ROC AUC, accuracy, RMSE) is always limited to a
                0.01 drop (RMSE: 1 %) unless named here.
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
            prediction_log_uri: The prediction logs (the sink's folder); with a canary soak the
                KServe canary is judged by its live traffic before promotion.
            canary_soak_seconds: Hold a smoke-tested canary at least this long before judging
                it from the logs; 0 (and canary_min_requests 0): promote after the smoke test.
            canary_min_requests: Logged canary requests needed to judge it; fewer: rolled back.
            upload_to_vertex_model_registry: Vertex only: after a healthy deployment, also
                upload the model to the Vertex AI Model Registry with MLflow's aliases
                (upload_vertex_model); Kubeflow ignores it.
            webhook_url: When set, the run summary is POSTed there.
        """
        steps(SimpleNamespace(**locals()))  # first statement: exactly the parameters

    pipeline = training if source == FILE else from_feature_store(training, steps)
    name = {FILE: "training", FEATURE_STORE: "training_feature_store"}[source]
    pipeline.__name__ = name if on_kubeflow else f"{name}_vertex"
    return dsl.pipeline(name=pipeline.__name__.replace("_", "-"))(pipeline)


# The feature-store variant's own parameters, before the file variant's (minus data_uri); the
# entity table's event time column is timestamp_column, which also splits train from eval.
FEATURE_STORE_PARAMETERS = (
    ("feature_repository", str, inspect.Parameter.empty),
    ("entity_table_uri", str, inspect.Parameter.empty),
    ("feature_refs", list, TRAINING_SET["features"]),
    ("feature_service", str, TRAINING_SET["feature_service"]),
)
FEATURE_STORE_SUMMARY = (
    "Builds a point-in-time correct training set from a Feast feature store, then validates, "
    "trains, evaluates against production, registers and deploys."
)
FEATURE_STORE_ARGS = """\
    feature_repository: The Feast feature repository (the folder with feature_store.yaml):
        local path, gs://, /gcs/, s3:// or minio://.
    entity_table_uri: CSV or Parquet of entity keys, event times (timestamp_column) and
        labels; each row gets the feature values as of its event time.
    feature_refs: Feature references "<feature view>:<feature>"; give these or feature_service.
    feature_service: A Feast FeatureService naming the features; give this or feature_refs.
    label:"""
FEATURE_STORE_TIMESTAMP = (
    "timestamp_column: The entity table's event time column; the evaluation split is the most "
    "recent rows."
)


def from_feature_store(training, steps):
    """The feature-store variant of the pipeline function ``training``: the same parameters
    minus ``data_uri``, plus FEATURE_STORE_PARAMETERS, and timestamp_column defaulting to
    build_training_set's event_timestamp_column. kfp reads a pipeline's parameters from its
    signature (``inspect.signature`` honours ``__signature__``) and calls it positionally."""
    parameters = [
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=kind, default=default)
        for name, kind, default in FEATURE_STORE_PARAMETERS
    ]
    for parameter in inspect.signature(training).parameters.values():
        if parameter.name == "timestamp_column":
            parameter = parameter.replace(default=TRAINING_SET["event_timestamp_column"])
        if parameter.name != "data_uri":
            parameters.append(parameter)
    names = [parameter.name for parameter in parameters]

    def training_feature_store(*values):
        steps(SimpleNamespace(**dict(zip(names, values, strict=True))))

    training_feature_store.__signature__ = inspect.Signature(parameters)
    # The file variant's docstring with its summary line, data_uri's entry and timestamp_column's
    # entry replaced (kfp copies the Args into the spec and the UI).
    doc = inspect.getdoc(training)
    _, _, description = doc.partition("\n")
    description, _, args = description.partition("Args:\n")
    _, _, after_data_uri = args.partition("\n    label:")
    timestamp = next(line.strip() for line in doc.splitlines() if "timestamp_column:" in line)
    doc = f"{FEATURE_STORE_SUMMARY}\n{description}Args:\n{FEATURE_STORE_ARGS}{after_data_uri}"
    training_feature_store.__doc__ = doc.replace(timestamp, FEATURE_STORE_TIMESTAMP)
    return training_feature_store


def feature_store_data(p, pod_settings: bool):
    """Adds build_training_set and returns its training set's URI, for gated_training.

    Uncached: the offline store and the entity table change under fixed locations. The steps
    after it key their caches on the file's fingerprint (resolve_inputs), as for a file.
    """
    training_set = build_training_set(
        repository=p.feature_repository,
        entity_table_uri=p.entity_table_uri,
        features=p.feature_refs,
        feature_service=p.feature_service,
        event_timestamp_column=p.timestamp_column,
    )
    live(training_set, pod_settings, minio=True)
    return training_set.outputs["data_uri"]



def gated_training(p, pod_settings: bool) -> None:
    """Adds the gated training steps to the pipeline being defined.

    ``p`` holds the training pipeline's parameters (channels, or constants when another
    pipeline builds these steps). Every pipeline that trains builds its steps here.

    A good run is these six tasks plus the exit handler's summary: resolve-inputs, check-data,
    train-model, evaluate-model, register-model, deploy-model. The model and deployment gates
    record their own verdicts (record_dir): both steps are uncached, so they run, and record,
    on every run. The data gate cannot: a cache hit runs nothing, so a check-data that records
    would have to be uncached, and KFP keys a cached task on the identity of its input
    artifacts: train-model would get a new schema artifact every run and unchanged data would
    retrain. So check-data stays cached, and its verdict is recorded by the first uncached step
    on each side of the gate: evaluate-model when the data passed, a record-verdict task when
    it failed.
    """
    # What a run starts from, read live, in one uncached task: the data's version (the data
    # behind a fixed URI changes) and production's baseline (production moves between runs).
    # Both are light (no TensorFlow, no TFDV); two tasks would be two more pods on Kubeflow.
    # Cached steps below take the fingerprint and the baseline's immutable runs:/ URIs, so
    # unchanged data against an unchanged production is a cache hit and anything else a miss.
    inputs = resolve_inputs(
        data_uri=p.data_uri,
        snapshot_uri=p.snapshot_uri,
        mlflow_tracking_uri=p.mlflow_tracking_uri,
        registered_model_name=p.registered_model_name,
        schema_uri=p.schema_uri,
        statistics_uri=p.previous_statistics_uri,
    )
    live(inputs, pod_settings, mlflow_secret=True, minio=True)
    # Statistics, schema and validation in one task: one TFDV import instead of three.
    check = check_data(
        data_uri=inputs.outputs["data_uri"],
        data_fingerprint=inputs.outputs["fingerprint"],
        label=p.label,
        categorical_columns=p.categorical_columns,
        curated_schema_uri=inputs.outputs["schema_uri"],
        numeric_drift_threshold=p.numeric_drift_threshold,
        categorical_drift_threshold=p.categorical_drift_threshold,
        previous_statistics_uri=inputs.outputs["statistics_uri"],
        serving_statistics_uri=p.serving_statistics_uri,
        first_run_policy=p.first_run_policy,
        mlflow_tracking_uri=p.mlflow_tracking_uri,
    )
    check.set_retry(**NETWORK_RETRY)
    kubernetes_settings(check, pod_settings, mlflow_secret=True, minio=True)

    with dsl.If(check.outputs["Output"] == True, name="data-is-valid"):  # noqa: E712
        trained = training_step(p, inputs, check, pod_settings)

        evaluation = evaluate_model(
            model=trained["model"],
            eval_data=trained["eval_data"],
            thresholds=p.thresholds,
            change_thresholds=p.change_thresholds,
            max_latency_p95_ms=p.max_latency_p95_ms,
            baseline_source=p.baseline_source,
            mlflow_tracking_uri=p.mlflow_tracking_uri,
            registered_model_name=p.registered_model_name,
            kserve_service=p.service_name,
            kserve_namespace=p.namespace,
            record_dir=RECORD_DIR,  # uncached: it runs, and records, on every run
            data_verdict=check.outputs["verdict"],  # check-data is cached: recorded here
        )
        live(evaluation, pod_settings, mlflow_secret=True, minio=True)  # its baseline is what serves now

        with dsl.If(evaluation.outputs["Output"] == True, name="model-is-blessed"):  # noqa: E712
            registration = register_model(
                model=trained["model"],
                schema=check.outputs["schema"],
                statistics=check.outputs["statistics"],
                anomalies=check.outputs["anomalies"],
                blessing=evaluation.outputs["verdict"],
                eval_data=trained["eval_data"],
                predictions=evaluation.outputs["predictions"],
                mlflow_tracking_uri=p.mlflow_tracking_uri,
                registered_model_name=p.registered_model_name,
                pipeline_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            )
            live(registration, pod_settings, mlflow_secret=True)

            deployment = deploy_model(
                model=trained["model"],
                eval_data=trained["eval_data"],
                service_name=p.service_name,
                target=p.deploy_target,
                namespace=p.namespace,
                storage_uri=p.storage_uri,
                local_serving_dir=p.local_serving_dir,
                local_endpoint=p.local_endpoint,
                prediction_log_uri=p.prediction_log_uri,
                canary_soak_seconds=p.canary_soak_seconds,
                canary_min_requests=p.canary_min_requests,
                mlflow_tracking_uri=p.mlflow_tracking_uri,
                registered_model_name=p.registered_model_name,
                model_version=registration.outputs["Output"],
                blessing=evaluation.outputs["verdict"],
                record_dir=RECORD_DIR,
            )
            # Deploying is an action on live traffic: never cached. It rolls back by itself; a
            # retry would repeat a rollout, so it is not retried either.
            deployment.set_caching_options(False)
            kubernetes_settings(deployment, pod_settings, mlflow_secret=True, minio=True)

            # Vertex only, and only where it is a pipeline parameter (the monitoring pipelines
            # retrain with the training defaults: no upload).
            if not pod_settings and isinstance(p.upload_to_vertex_model_registry, PipelineChannel):
                with dsl.If(deployment.outputs["Output"] == True, name="deployment-is-healthy"):  # noqa: E712
                    with dsl.If(p.upload_to_vertex_model_registry == True, name="vertex-model-registry"):  # noqa: E712
                        upload = upload_vertex_model(
                            model=trained["model"], registered=registration.outputs["registered"]
                        )
                        upload.set_caching_options(False).set_retry(**NETWORK_RETRY)  # it finds its own retry

    with dsl.Else(name="data-is-invalid"):
        record_gate(check.outputs["verdict"], "data-is-valid", pod_settings)


def training_step(p, inputs, check, pod_settings: bool) -> dict:
    """Adds the training step; returns its model and eval_data outputs, for the steps after it.

    With ``train_workers`` a pipeline parameter, the step is a choice made at run time: 1
    trains in the pipeline's own task (train-model, as without the parameter), more hands the
    training to the platform's distributed job of that many workers (train-model-on-vertex, a
    Vertex AI custom job; train-model-on-kubeflow, a Kubeflow Trainer TrainJob; same inputs and
    outputs); the steps after it take the model of whichever branch ran (``dsl.OneOf``).
    Without the parameter (the monitoring pipelines) it is the in-task step alone.
    """
    arguments = dict(
        schema=check.outputs["schema"],
        data_uri=inputs.outputs["data_uri"],
        data_fingerprint=inputs.outputs["fingerprint"],
        label=p.label,
        features=p.features,
        exclude_features=p.exclude_features,
        categorical_columns=p.categorical_columns,
        timestamp_column=p.timestamp_column,
        epochs=p.epochs,
        batch_size=p.batch_size,
        learning_rate=p.learning_rate,
        hidden_units=p.hidden_units,
        checkpoint_uri=p.checkpoint_uri,
        mlflow_tracking_uri=p.mlflow_tracking_uri,
    )
    workers = getattr(p, "train_workers", 1)
    if not isinstance(workers, PipelineChannel):
        return in_task_training(p, arguments, pod_settings).outputs
    with dsl.If(workers == 1, name="one-worker"):
        one = in_task_training(p, arguments, pod_settings)
    with dsl.Else(name="several-workers"):
        if pod_settings:
            several = train_model_on_kubeflow(
                **arguments,
                num_nodes=workers,
                cpu_per_node=p.train_cpu,
                memory_per_node=p.train_memory,
                gpus_per_node=p.accelerator_count,
                gpu_resource=p.accelerator_type,  # Kubeflow's is the resource name, nvidia.com/gpu
                training_runtime=p.training_runtime,
                trainer_image=images.TRAINER_GPU,  # the registry images.use points at, compiled in
                pipeline_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                pipeline_task_name=dsl.PIPELINE_TASK_NAME_PLACEHOLDER,
            )
            # The launcher stages the job's spec and outputs beside its model artifact (MinIO);
            # the nodes get the MLflow and MinIO secrets as references from it.
            kubernetes_settings(several, pod_settings, minio=True)
        else:
            several = train_model_on_vertex(
                **arguments,
                replica_count=workers,
                machine_type=p.train_machine_type,
                accelerator_type=p.accelerator_type,
                accelerator_count=p.accelerator_count,
                trainer_image=images.TRAINER_GPU,  # the registry images.use points at, compiled in
                pipeline_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            )
        several.set_retry(**TRAIN_RETRY)  # a retry waits for its job, or resumes in a new one
    return {name: dsl.OneOf(one.outputs[name], several.outputs[name]) for name in ("model", "eval_data")}


def in_task_training(p, arguments: dict, pod_settings: bool):
    """train_model in the pipeline's own task, on the trainer image and the requested GPUs."""
    train = train_model(**arguments)
    train.set_container_image(images.TRAINER_GPU)
    train.set_accelerator_type(p.accelerator_type).set_accelerator_limit(p.accelerator_count)
    train.set_cpu_request(p.train_cpu).set_memory_request(p.train_memory)
    # kfp 2.17 does not pass parameters used only in resource settings into the enclosing
    # dsl.If, so the spec would reference undefined inputs: register them.
    resources = [p.accelerator_type, p.accelerator_count, p.train_cpu, p.train_memory]
    train.register_pipeline_channels([r for r in resources if isinstance(r, PipelineChannel)])
    train.set_retry(**TRAIN_RETRY)
    kubernetes_settings(train, pod_settings, mlflow_secret=True, minio=True)
    if pod_settings:
        kubernetes.add_node_selector_json(train, p.train_node_selector)
        kubernetes.add_toleration_json(train, p.train_tolerations)
    return train


def record_gate(verdict, gate: str, pod_settings: bool):
    """Leaves a gate's verdict in the run record, for the exit handler's summary."""
    return live(record_verdict(verdict=verdict, record_dir=RECORD_DIR, gate=gate), pod_settings, minio=True)
