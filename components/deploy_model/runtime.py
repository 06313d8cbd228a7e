"""deploy_model: serve a model, prove it with real inference requests, promote or roll back.

Targets:
- ``kserve``: a KServe InferenceService (serving.kserve.io/v1beta1) rendered from
  manifests/kserve/base/inferenceservice.yaml. First deployment: create, wait Ready, smoke test
  (delete on failure). Later: a canary (Knative: canaryTrafficPercent; Standard: spec.canary),
  wait Ready, smoke test the canary's own URL, promote to 100% or roll back (the stable model
  keeps 100% and the previous spec is restored). See ``components.kserve.Rollout``.
- ``local``: a KServe model server on localhost (see ``server.py``), smoke-tested over HTTP,
  then a pointer file swap in ``local_serving_dir`` and an optional reload of a persistent
  server at ``local_endpoint``.

The verdict (gate ``deployment-is-healthy``) lists every step as a check. Model failures return
False; broken inputs raise ValueError; an API refusal (403, 409) raises ``KubernetesApiError``
after rolling back what was changed. MLflow's ``production`` alias moves only on success.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from components import interface, run_records
from components.verdict import FAIL, PASS, WARN, Verdict

logger = logging.getLogger(__name__)

GATE = "deployment-is-healthy"
TARGETS = ("local", "kserve")
PRODUCTION_ALIAS = "production"
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _validate(
    *,
    service_name,
    target,
    canary_traffic_percent,
    ready_timeout_seconds,
    smoke_rows,
    tolerance,
    registered_model_name,
    model_version,
    poll_interval_seconds,
):
    if not service_name or len(service_name) > 63 or not _NAME.match(service_name):
        raise ValueError(
            f"service_name {service_name!r} must be a DNS-1035 label (lowercase letters, digits, '-', "
            "starting with a letter, at most 63 characters)"
        )
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if not 1 <= canary_traffic_percent <= 99:
        raise ValueError(f"canary_traffic_percent must be between 1 and 99, got {canary_traffic_percent}")
    if ready_timeout_seconds <= 0 or poll_interval_seconds <= 0:
        raise ValueError("ready_timeout_seconds and poll_interval_seconds must be positive")
    if smoke_rows < 1:
        raise ValueError(f"smoke_rows must be at least 1, got {smoke_rows}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if registered_model_name and not model_version:
        raise ValueError(
            f"registered_model_name {registered_model_name!r} needs model_version (the version the "
            "production alias moves to)"
        )


def smoke_frame(eval_data_path: str, loaded, rows: int):
    """The first ``rows`` evaluation rows, only the model's input features (label dropped)."""
    from components import model_io

    frame = model_io.read_frame(eval_data_path)
    if frame.empty:
        raise ValueError(f"evaluation data {eval_data_path!r} has no rows to send as smoke requests")
    inputs = model_io.serving_inputs(loaded)
    missing = sorted(set(inputs) - set(frame.columns))
    if missing:
        raise model_io.FeatureMismatchError(
            f"evaluation data {eval_data_path!r} lacks the model's features {missing}"
        )
    dtypes = {name: dtype.name for name, dtype in inputs.items()}
    return frame[list(inputs)].head(rows).reset_index(drop=True), dtypes


@interface.defaults_from(__file__)
def run(
    *,
    model_dir: str,
    model_uri: str,
    eval_data_path: str,
    deployment_dir: str,
    report_path: str,
    verdict_path: str = "",
    verdict_uri: str = "",
    manifest_template: str = "",
    blessing_path: str = "",
    # KFP has no optional int: the component's -1 ("keep the template's") is None here.
    min_replicas: int | None = None,
    max_replicas: int | None = None,
    service_name,
    target,
    namespace,
    storage_uri,
    deployment_mode,
    canary_traffic_percent,
    ready_timeout_seconds,
    poll_interval_seconds,
    smoke_rows,
    tolerance,
    runtime_version,
    serving_runtime,
    prediction_logger_url,
    prediction_log_uri,
    canary_soak_seconds,
    canary_min_requests,
    canary_limits,
    canary_labels_uri,
    resources,
    service_account,
    kubeconfig,
    local_serving_dir,
    local_endpoint,
    mlflow_tracking_uri,
    registered_model_name,
    model_version,
    record_dir,
) -> tuple[bool, dict[str, Any]]:
    """Deploys and smoke-tests; writes ``deployment_dir`` (deployment.json, inferenceservice.yaml),
    the Markdown report and, when ``verdict_path`` is given, the JSON verdict. Returns (healthy,
    deployment metadata). Parameters are documented on the component (component.py);
    ``manifest_template`` replaces manifests/kserve/base/inferenceservice.yaml.

    ``blessing_path`` (evaluate_model's verdict) names the production version the candidate
    was compared against; production then changes hands only by compare-and-set (see
    ``production_check``)."""
    from components import kserve, model_io, registry, uris
    from components.deploy_model import _canary, _local, _smoke

    _validate(
        service_name=service_name,
        target=target,
        canary_traffic_percent=canary_traffic_percent,
        ready_timeout_seconds=ready_timeout_seconds,
        smoke_rows=smoke_rows,
        tolerance=tolerance,
        registered_model_name=registered_model_name,
        model_version=model_version,
        poll_interval_seconds=poll_interval_seconds,
    )
    soak = _canary.Soak(
        log_uri=prediction_log_uri,
        seconds=canary_soak_seconds,
        min_requests=canary_min_requests,
        limits=canary_limits or {},
        labels_uri=canary_labels_uri,
    )
    if soak.enabled and not model_version:
        raise ValueError("a canary soak needs model_version: the logs tell the canary's requests by it")
    mode = kserve.normalize_mode(deployment_mode)
    uri = storage_uri or model_uri
    if target == "kserve":
        if not storage_uri and registered_model_name:
            # The registered copy in MLflow's artifact store outlives the run's pipeline root.
            uri = registry.version_source(mlflow_tracking_uri, registered_model_name, str(model_version))
        uri = uris.for_kserve(uri)
    desired = kserve.render(
        name=service_name,
        namespace=namespace,
        storage_uri=uri,
        deployment_mode=mode,
        runtime_version=runtime_version,
        serving_runtime=serving_runtime,
        prediction_logger_url=prediction_logger_url,
        resources=resources,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        service_account=service_account,
        template=manifest_template,
        labels={kserve.VERSION_LABEL: str(model_version)} if model_version else None,
    )
    out_dir = Path(deployment_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_manifest(out_dir / "inferenceservice.yaml", desired)

    # target=local: the candidate's server starts first, so its start-up (TensorFlow, KServe, the
    # model) overlaps this task's own (the model, the offline predictions, MLflow) instead of
    # following it; the smoke test waits for it to be ready, as before.
    server = None
    if target == "local":
        server = _local.LocalServer(model_dir, service_name, ready_timeout_seconds).start()
    try:
        loaded = model_io.load(model_dir)
        frame, dtypes = smoke_frame(eval_data_path, loaded, smoke_rows)
        offline = model_io.predict(loaded, frame)
        verdict = Verdict(gate=GATE)
        verdict.notes.append(
            f"target {target}; model {uri}; {len(frame)} smoke rows; tolerance {tolerance:g}"
        )

        error: Exception | None = None
        evaluated_against = _evaluated_against(blessing_path)
        if registered_model_name:
            reconcile_production(
                mlflow_tracking_uri,
                registered_model_name,
                _serving_version(target, service_name, namespace, kubeconfig, local_serving_dir),
                verdict,
            )
        if registered_model_name and not production_check(
            mlflow_tracking_uri, registered_model_name, str(model_version), evaluated_against, verdict
        ):
            outcome = {"name": service_name, "healthy": False, "action": "refused"}
        elif target == "local":
            if soak.enabled:
                verdict.add(
                    "canary-soak",
                    service_name,
                    WARN,
                    "the local target has no traffic split to soak a canary in: the pointer swaps after the "
                    "smoke test (canary_soak_seconds and canary_min_requests apply to target=kserve)",
                )
            outcome = _local.deploy(
                model_dir=model_dir,
                name=service_name,
                frame=frame,
                offline=offline,
                dtypes=dtypes,
                tolerance=tolerance,
                start_timeout=ready_timeout_seconds,
                serving_dir=local_serving_dir,
                endpoint=local_endpoint,
                model_version=str(model_version),
                model_uri=uri,
                verdict=verdict,
                server=server,
            )
        else:

            def smoke(url: str):
                if not url:
                    return _smoke.SmokeResult(
                        False, url, len(frame), None, "the InferenceService reports no URL"
                    )
                return _smoke.smoke(
                    url, service_name, frame, offline, tolerance, protocol="v1", dtypes=dtypes
                )

            rollout = kserve.Rollout(
                kserve.connect(kubeconfig),
                desired,
                smoke=smoke,
                verdict=verdict,
                ready_timeout=ready_timeout_seconds,
                poll_interval=poll_interval_seconds,
                canary_percent=canary_traffic_percent,
            )
            if soak.enabled:
                rollout.judge = _canary.Judge(
                    soak,
                    model=service_name,
                    candidate=str(model_version),
                    patience=ready_timeout_seconds,
                    poll=poll_interval_seconds,
                    check=rollout._check,
                    blessing=_blessing_details(blessing_path),
                )
            try:
                outcome = rollout.run()
            except kserve.KubernetesApiError as exc:
                verdict.add(
                    "kubernetes-api",
                    f"InferenceService {namespace}/{service_name}",
                    FAIL,
                    str(exc),
                    value=exc.status,
                )
                outcome, error = rollout.outcome, exc
    finally:
        if server is not None:
            server.stop()

    healthy = verdict.passed and bool(outcome.get("healthy")) and error is None
    if healthy and registered_model_name:
        _hand_over_production(
            mlflow_tracking_uri,
            registered_model_name,
            str(model_version),
            evaluated_against,
            verdict,
            outcome,
        )
    healthy = verdict.passed and healthy
    outcome.update(target=target, healthy=healthy)
    verdict.details = {"deployment": outcome}
    metadata = _metadata(outcome)
    (out_dir / "deployment.json").write_text(json.dumps(metadata, indent=2, sort_keys=True, default=str))
    Path(report_path).parent.mkdir(parents=True, exist_ok=True)
    Path(report_path).write_text(verdict.to_markdown(title=f"Deployment of {service_name} ({target})"))
    if verdict_path:
        Path(verdict_path).write_text(verdict.to_json())
        if record_dir:  # before a failure is raised: the summary shows why it failed
            run_records.record_verdict(record_dir, GATE, verdict_path, verdict_uri)
    logger.info("%s", verdict.summary())
    if error is not None:
        raise error
    return healthy, metadata


def _blessing_details(blessing_path: str) -> dict:
    """The model gate's details (task, label, classes, baseline), {} without a blessing."""
    if not blessing_path:
        return {}
    return json.loads(Path(blessing_path).read_text()).get("details") or {}


def _evaluated_against(blessing_path: str) -> str | None:
    """The registry version the model gate compared the candidate with ("" when there was no
    production yet); None when unknown (no blessing, or a baseline not from the registry)."""
    if not blessing_path:
        return None
    baseline = _blessing_details(blessing_path).get("baseline") or {}
    if baseline.get("source") != "mlflow":
        return None
    return str(baseline.get("version") or "")


def production_check(
    tracking_uri: str,
    name: str,
    version: str,
    evaluated_against: str | None,
    verdict: Verdict,
    *,
    serving: bool = False,
) -> bool:
    """Compare-and-set on the production alias, as one check of the verdict.

    Production may change hands when it is still the version the candidate was evaluated
    against (or already is the candidate: a redeploy). When another run moved it meanwhile, the
    newer registered version wins: an older candidate is refused (traffic untouched), a newer
    one goes ahead over the older one that got there first. Unknown ``evaluated_against``
    (None) skips the comparison but still never replaces a newer version.
    """
    from components import registry

    uri = registry.resolve_tracking_uri(tracking_uri, required_for=f"the production alias of {name}")
    current = registry.version_by_alias(uri, name, PRODUCTION_ALIAS)
    now = str(current.version) if current else ""
    subject = f"{name}@{PRODUCTION_ALIAS}"
    against = f"version {evaluated_against}" if evaluated_against else "no production"
    if now == version:
        status, reason = PASS, f"version {version} is already production"
    elif now and int(now) > int(version):
        consequence = (
            "the alias is not moved: serving and the registry disagree until the next run deploys "
            "production again"
            if serving
            else "this candidate is not deployed and traffic is untouched"
        )
        status = FAIL
        reason = f"production is version {now}, newer than this candidate (version {version}, evaluated "
        reason += f"against {against}): {consequence}"
    elif evaluated_against is None or now == evaluated_against:
        status = PASS
        reason = f"production is {'version ' + now if now else 'not set yet'}" + (
            ", as when this candidate was evaluated" if evaluated_against is not None else ""
        )
    else:
        status = WARN
        reason = f"production moved from {against} to version {now or '(none)'} since this candidate was "
        reason += f"evaluated; version {version} is newer, so it goes ahead"
    verdict.add(
        "production-unchanged", subject, status, reason, value=now or None, threshold=evaluated_against
    )
    return status != FAIL


def _serving_version(target, name, namespace, kubeconfig, serving_dir) -> str:
    """The registered version serving now, as the serving side records it (the
    InferenceService's version label, set when a rollout is promoted; the local pointer)."""
    from components import kserve, model_server

    if target == "kserve":
        live = kserve.get(kserve.connect(kubeconfig), name, namespace)
        return str(((live or {}).get("metadata") or {}).get("labels", {}).get(kserve.VERSION_LABEL) or "")
    if not serving_dir:
        return ""
    try:
        return str(model_server.read_pointer(serving_dir, name).get("model_version") or "")
    except FileNotFoundError:
        return ""


def reconcile_production(tracking_uri: str, name: str, serving: str, verdict: Verdict) -> None:
    """When serving runs a newer registered version than the production alias names (an earlier
    run rolled out but could not move the alias), the alias catches up before anything else."""
    from components import registry

    if not serving.isdigit():
        return
    uri = registry.resolve_tracking_uri(tracking_uri, required_for=f"the production alias of {name}")
    current = registry.version_by_alias(uri, name, PRODUCTION_ALIAS)
    now = str(current.version) if current else ""
    if now == serving or (now and int(now) > int(serving)):
        return
    client = registry.client(uri)
    client.set_registered_model_alias(name, PRODUCTION_ALIAS, serving)
    client.set_model_version_tag(name, serving, "reconciled_from", now or "(none)")
    verdict.add(
        "production-reconciled",
        f"{name}@{PRODUCTION_ALIAS}",
        WARN,
        f"serving ran version {serving} while {PRODUCTION_ALIAS} named {'version ' + now if now else 'none'} "
        f"(an earlier deployment could not move the alias); {PRODUCTION_ALIAS} now names version {serving}",
        value=serving,
        threshold=now or None,
    )


def _hand_over_production(
    tracking_uri: str, name: str, version: str, evaluated_against: str | None, verdict: Verdict, outcome: dict
) -> None:
    """After a healthy rollout: compare-and-set once more (another run may have finished
    meanwhile), then move the production alias. A registry failure here leaves serving and the
    registry disagreeing: a failed check says so and how it is reconciled."""
    from components import registry

    subject = f"{name}@{PRODUCTION_ALIAS}"
    try:
        if not production_check(tracking_uri, name, version, evaluated_against, verdict, serving=True):
            return
        uri = registry.resolve_tracking_uri(tracking_uri)
        client = registry.client(uri)
        previous = registry.version_by_alias(uri, name, PRODUCTION_ALIAS)
        client.set_registered_model_alias(name, PRODUCTION_ALIAS, version)
        if previous and str(previous.version) != str(version):
            client.set_model_version_tag(name, version, "replaced_version", str(previous.version))
    except Exception as exc:  # noqa: BLE001 - any registry failure leaves the same disagreement
        verdict.add(
            "production-alias",
            subject,
            FAIL,
            f"version {version} serves, but the alias {PRODUCTION_ALIAS} could not be moved "
            f"({type(exc).__name__}: {exc}): serving and the registry disagree. The next deployment "
            f"of {name} reconciles them (the alias follows what serves), or now: "
            f"MlflowClient().set_registered_model_alias({name!r}, {PRODUCTION_ALIAS!r}, {version!r})",
            value=version,
        )
        return
    outcome["previous_production_version"] = previous.version if previous else None
    verdict.add(
        "production-alias",
        subject,
        PASS,
        f"alias {PRODUCTION_ALIAS} moved to version {version}"
        + (f" (was {previous.version})" if previous else " (first production version)"),
        value=version,
    )


def _metadata(outcome: dict) -> dict[str, Any]:
    keys = (
        "name",
        "namespace",
        "url",
        "revision",
        "traffic",
        "model_uri",
        "mode",
        "target",
        "healthy",
        "action",
        "rolled_back",
        "previous_model_uri",
        "previous_production_version",
        "pointer",
    )
    return {k: outcome.get(k) for k in keys if outcome.get(k) is not None}


def _write_manifest(path: Path, manifest: dict) -> None:
    import yaml

    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
