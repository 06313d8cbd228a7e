"""KFP interface of deploy_model."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Model, Output

from components import images


@dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
def deploy_model(
    model: Input[Model],
    eval_data: Input[Dataset],
    deployment: Output[Artifact],
    report: Output[Markdown],
    verdict: Output[Artifact],
    service_name: str,
    target: str = "local",
    namespace: str = "default",
    storage_uri: str = "",
    deployment_mode: str = "Knative",
    canary_traffic_percent: int = 10,
    ready_timeout_seconds: int = 600,
    poll_interval_seconds: float = 5.0,
    smoke_rows: int = 20,
    tolerance: float = 1e-4,
    runtime_version: str = "",
    serving_runtime: str = "",
    prediction_logger_url: str = "",
    prediction_log_uri: str = "",
    canary_soak_seconds: int = 0,
    canary_min_requests: int = 0,
    canary_limits: dict = None,
    canary_labels_uri: str = "",
    resources: dict = None,
    min_replicas: int = -1,
    max_replicas: int = -1,
    service_account: str = "",
    kubeconfig: str = "",
    local_serving_dir: str = "",
    local_endpoint: str = "",
    mlflow_tracking_uri: str = "",
    registered_model_name: str = "",
    model_version: str = "",
    blessing: Input[Artifact] = None,
    record_dir: str = "",
) -> bool:
    """Deploys a model, proves it with real inference requests, then promotes or rolls back.

    target="kserve": renders the InferenceService (serving.kserve.io/v1beta1, model format
    tensorflow) from manifests/kserve/base/inferenceservice.yaml and applies it with the KServe
    client. First deployment: create, wait Ready, smoke test. Later ones: a canary (Knative:
    canaryTrafficPercent; Standard: an entry of spec.canary, KServe >= 0.20), wait Ready, smoke
    test the canary, promote to 100% or roll back (the stable model keeps 100%). Every patch
    carries the resourceVersion it was decided on; a canary left by a killed pod is rolled
    back first. target="local": a KServe model server on localhost, smoke
    tested over HTTP (v1 and v2), then promoted by swapping the pointer file in
    local_serving_dir. Smoke test: evaluation rows (label dropped) sent to the v1 :predict
    endpoint, compared with offline predictions. A failed model never keeps traffic.

    Args:
        model: The model to deploy (folder with ``1/saved_model.pb``), for offline predictions.
        eval_data: Held-out rows (Parquet/CSV); the first smoke_rows are the smoke requests.
        deployment: Output folder: deployment.json and inferenceservice.yaml (the manifest
            applied, or that would be applied for target=local); metadata: name, namespace,
            url, revision, traffic split, model_uri, mode, target, action, healthy.
        report: Output Markdown: the deployment-is-healthy verdict, one check per step.
        verdict: Output JSON verdict (gate deployment-is-healthy), one check per step.
        service_name: InferenceService (or local model) name, a DNS-1035 label.
        target: "local" or "kserve".
        namespace: Kubernetes namespace of the InferenceService.
        storage_uri: Model URI the cluster reads (gs://, s3://, pvc://); default: the model
            artifact's URI (KFP's minio:// becomes s3://).
        deployment_mode: "Knative" (canary rollouts) or "Standard" (RawDeployment), for a new
            service; a live service keeps its mode.
        canary_traffic_percent: Share of traffic the candidate gets during the canary (1-99).
        ready_timeout_seconds: How long to wait for Ready (and for the local server to start).
        poll_interval_seconds: Interval between status reads.
        smoke_rows: Number of evaluation rows sent as smoke requests.
        tolerance: Maximum absolute difference between served and offline predictions.
        runtime_version: TF Serving version (runtimeVersion); empty uses the runtime's default.
        serving_runtime: A named KServe ServingRuntime: "kfp-ct-tensorflow" serves with this
            project's model server (manifests/kserve/base/servingruntime.yaml), which checks
            every request against the model's contract (400 for a wrong type, flags for
            out-of-range values and unseen categories); empty: KServe's TF Serving.
        prediction_logger_url: When set, KServe's inference logger sends every request and
            response there (the prediction-log sink of manifests/prediction-log-sink), for
            monitor_model. Each event carries the model version (the predictor's
            app.kubernetes.io/version annotation, through the logger's metadataAnnotations).
        prediction_log_uri: The prediction logs (the sink's or the model server's log folder,
            any URI scheme): with canary_soak_seconds or canary_min_requests, a smoke-tested
            canary is judged by its live traffic before promotion.
        canary_soak_seconds: Keep the canary (after its smoke test) at least this long before
            judging it; 0 with canary_min_requests 0: promote right after the smoke test.
        canary_min_requests: Logged requests the canary must have served before it is judged;
            fewer after canary_soak_seconds plus ready_timeout_seconds: rolled back (too little
            traffic to judge).
        canary_limits: Canary vs stable in the soak window, each optional:
            max_error_rate_increase (0.01), max_latency_p95_ratio (1.5), max_prediction_psi
            (0.2) and, with canary_labels_uri, max_metric_drop (0.02; the primary metric).
        canary_labels_uri: Labels of served requests (columns request_id, optional row, and the
            label), for comparing canary and stable performance where labels exist.
        resources: Predictor resources ({"requests": {...}, "limits": {...}}); empty keeps the
            template's.
        min_replicas: Predictor minReplicas; -1 keeps the template's.
        max_replicas: Predictor maxReplicas; -1 keeps the template's.
        service_account: Predictor serviceAccountName (storage credentials); empty keeps the
            template's.
        kubeconfig: Kubeconfig path; empty uses the in-cluster service account (or $KUBECONFIG).
        local_serving_dir: target=local: folder of pointer files <service_name>.json that a
            persistent server (python -m components.model_server --serving-dir) serves.
        local_endpoint: target=local: URL of that persistent server; it is told to reload and
            smoke tested, and the previous pointer comes back if that fails.
        mlflow_tracking_uri: MLflow tracking URI for the production alias (default: the
            MLFLOW_TRACKING_URI env var).
        registered_model_name: Registered model whose alias "production" moves to
            model_version on success (never on failure).
        model_version: The registered version deployed (register_model's output).
        blessing: The model-is-blessed verdict (evaluate_model's ``verdict``): the production
            version the candidate was compared with. Production changes hands by
            compare-and-set: a newer version that took production meanwhile is never replaced
            by this older one (refused, traffic untouched, with the reason).
        record_dir: When set, the verdict is also recorded there as gate deployment-is-healthy
            (the run record folder the run summary reads), failed rollouts included, so no
            record_verdict task is needed.

    Returns:
        True when the new model serves and passed its smoke test (deployment-is-healthy).
    """
    import logging
    import os

    from components import interface
    from components.deploy_model import runtime

    logging.basicConfig(level=logging.INFO)
    os.makedirs(deployment.path, exist_ok=True)
    healthy, metadata = interface.call(
        runtime.run,
        locals(),
        model_dir=model.path,
        model_uri=model.uri,
        eval_data_path=eval_data.path,
        deployment_dir=deployment.path,
        report_path=report.path,
        verdict_path=verdict.path,
        verdict_uri=verdict.uri,
        blessing_path=blessing.path if blessing is not None else "",
        # KFP has no optional int or dict: -1 and {} mean "keep the template's", None in Python.
        resources=resources or None,
        canary_limits=canary_limits or {},
        min_replicas=None if min_replicas < 0 else min_replicas,
        max_replicas=None if max_replicas < 0 else max_replicas,
    )
    deployment.metadata.update(metadata)
    return healthy
