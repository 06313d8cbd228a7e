"""Command line for host-side operations: ``python -m launch <command> ...``.

    python -m launch submit kfp SPEC --host URL [--param k=v ...] [--experiment NAME]
    python -m launch submit vertex SPEC --project P --region R --pipeline-root gs://... [--dry-run]
    python -m launch schedules apply --target kfp --host URL [--prune] [--dry-run]
    python -m launch schedules apply --target vertex --project P --region R --pipeline-root gs://...
    python -m launch schedules validate
    python -m launch serve (--model-dir DIR | --registered-model NAME [--alias production]) [--port 8080]
    python -m launch lineage --model NAME@ALIAS [--tracking-uri URL] [--json]
    python -m launch reproduce --model NAME@ALIAS [--tracking-uri URL] [--json]

SPEC is a compiled spec: a path, a golden's file name in pipelines/ (``demo_data.yaml`` or
``demo_data``) or its pipeline name (``demo-data``).

Each command is a ``register_<command>(subparsers)`` function that adds its parser and sets
``handler``; add a command by writing one and listing it in COMMANDS.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from launch import schedules, submit

EXIT_ERROR = 1


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def _labels(pairs: Sequence[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--label expects KEY=VALUE, got {pair!r}")
        labels[key] = value
    return labels


def _caching(args) -> bool | None:
    return {None: None, "on": True, "off": False}[args.caching]


# --------------------------------------------------------------------------- shared options


def _add_parameter_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--param", "-p", action="append", default=[], metavar="NAME=VALUE",
        help="pipeline argument, typed from the spec (int, float, bool, JSON for list/dict); repeatable",
    )
    parser.add_argument(
        "--params-json", metavar="JSON|@FILE", help="pipeline arguments as a JSON object (or @file.json)"
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--enable-caching", dest="caching", action="store_const", const="on",
                       help="turn caching on for every task (overrides the compiled setting)")
    group.add_argument("--disable-caching", dest="caching", action="store_const", const="off",
                       help="turn caching off for every task")


def _add_kfp_connection(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Kubeflow Pipelines connection")
    group.add_argument("--host", default=None,
                       help="KFP API endpoint, e.g. http://localhost:8080 (default: $KF_PIPELINES_ENDPOINT)")
    group.add_argument("--namespace", help="user namespace (multi-user Kubeflow)")
    group.add_argument("--token", help="bearer token (e.g. from `gcloud auth print-access-token`)")
    group.add_argument("--token-file", help="file holding a service-account token, re-read on refresh "
                       "(default when set: $KF_PIPELINES_SA_TOKEN_PATH)")
    group.add_argument("--ssl-ca-cert", help="CA bundle for the endpoint's TLS certificate")
    group.add_argument("--insecure-skip-verify", action="store_true", help="do not verify TLS certificates")
    group.add_argument("--ui-host", help="UI base URL for printed links (default: --host)")


def _kfp_client_from(args):
    host = args.host or os.environ.get("KF_PIPELINES_ENDPOINT")
    if not host:
        raise ValueError("no KFP endpoint: pass --host URL or set KF_PIPELINES_ENDPOINT")
    client = submit.kfp_client(
        host,
        namespace=args.namespace,
        token=args.token,
        token_file=args.token_file,
        ssl_ca_cert=args.ssl_ca_cert,
        verify_ssl=False if args.insecure_skip_verify else None,
        ui_host=args.ui_host,
    )
    return client, (args.ui_host or host)


def _add_vertex_connection(parser: argparse.ArgumentParser, *, root_required: bool) -> None:
    group = parser.add_argument_group("Vertex AI")
    group.add_argument("--project", required=True, help="Google Cloud project id")
    group.add_argument("--region", required=True, help="Vertex AI region, e.g. europe-west4")
    group.add_argument("--pipeline-root", required=root_required,
                       help="gs://bucket/path for pipeline outputs" +
                       ("" if root_required else " (default: the spec's defaultPipelineRoot)"))
    group.add_argument("--service-account", help="service account the runs execute as")
    group.add_argument("--network", help="VPC peering: projects/<project-number>/global/networks/<vpc>")
    group.add_argument("--api-endpoint", help="Vertex API endpoint override (e.g. a Private Service Connect "
                       "endpoint)")
    group.add_argument("--api-transport", choices=("grpc", "rest"), help="transport for the Vertex API")


def _init_vertex(args) -> None:
    if args.api_endpoint or args.api_transport:
        from google.cloud import aiplatform

        aiplatform.init(project=args.project, location=args.region,
                        api_endpoint=args.api_endpoint, api_transport=args.api_transport)


# --------------------------------------------------------------------------- submit


def register_submit(subparsers) -> None:
    parser = subparsers.add_parser("submit", help="submit a compiled pipeline to KFP or Vertex AI")
    targets = parser.add_subparsers(dest="target", required=True, metavar="{kfp,vertex}")

    kfp = targets.add_parser(
        "kfp", help="upload to Kubeflow Pipelines and start a run",
        description="Uploads SPEC as a pipeline (or a new version; a version with the same content "
        "is reused), then starts a run of that version and prints its URL. With a caching override "
        "the run carries the spec inline, the only place kfp applies it.",
    )
    kfp.add_argument("spec", help="compiled spec: path, golden file name or pipeline name")
    _add_parameter_options(kfp)
    kfp.add_argument("--experiment", default="Default", help="experiment name (created when missing)")
    kfp.add_argument("--run-name", help="run display name (default: pipeline name + time)")
    kfp.add_argument("--pipeline-name", help="pipeline name in KFP (default: the spec's pipeline name)")
    kfp.add_argument("--version-name",
                     help="name for a newly uploaded version (default: <pipeline>-<sha12>-<UTC time>)")
    kfp.add_argument("--pipeline-root", help="override the pipeline root for this run")
    kfp.add_argument("--service-account", help="Kubernetes service account for the run's pods")
    _add_kfp_connection(kfp)
    kfp.set_defaults(handler=_submit_kfp)

    vertex = targets.add_parser(
        "vertex", help="submit a PipelineJob to Vertex AI Pipelines",
        description="Builds an aiplatform.PipelineJob from SPEC (a single-document spec with Vertex "
        "accelerator names) and submits it; --dry-run prints the CreatePipelineJobRequest instead. "
        "Credentials: Application Default Credentials.",
    )
    vertex.add_argument("spec", help="single-document spec: path, golden file name or pipeline name")
    _add_parameter_options(vertex)
    _add_vertex_connection(vertex, root_required=False)
    vertex.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="job label")
    vertex.add_argument("--display-name", help="job display name (default: the pipeline name)")
    vertex.add_argument("--job-id", help="job id (default: <pipeline>-<timestamp>)")
    vertex.add_argument("--encryption-key", help="Cloud KMS key name for CMEK")
    vertex.add_argument("--experiment", help="Vertex AI Experiment to associate the run with "
                        "(created when missing; its parameters and metrics are compared there)")
    vertex.add_argument("--dry-run", action="store_true",
                        help="print the CreatePipelineJobRequest as JSON and send nothing")
    vertex.set_defaults(handler=_submit_vertex)


def _submit_kfp(args) -> int:
    parameters = submit.parse_cli_parameters(args.param, args.params_json)
    client, ui_url = _kfp_client_from(args)
    run = submit.submit_kfp(
        args.spec,
        client=client,
        ui_url=ui_url,
        parameters=parameters,
        experiment=args.experiment,
        run_name=args.run_name,
        pipeline_name=args.pipeline_name,
        version_name=args.version_name,
        namespace=args.namespace,
        pipeline_root=args.pipeline_root,
        service_account=args.service_account,
        enable_caching=_caching(args),
    )
    version = run.version
    print(f"pipeline: {version.action} version {version.version_name!r} "
          f"(pipeline {version.pipeline_id}, version {version.version_id})")
    if run.inline_spec:
        print("caching override: the run carries the spec inline (kfp applies overrides only there)")
    print(f"run: {run.run_id} in experiment {run.experiment_id}")
    print(f"run URL: {run.url}")
    return 0


def _submit_vertex(args) -> int:
    parameters = submit.parse_cli_parameters(args.param, args.params_json)
    _init_vertex(args)
    result = submit.submit_vertex(
        args.spec,
        project=args.project,
        region=args.region,
        pipeline_root=args.pipeline_root,
        parameters=parameters,
        service_account=args.service_account,
        network=args.network,
        labels=_labels(args.label),
        enable_caching=_caching(args),
        display_name=args.display_name,
        job_id=args.job_id,
        encryption_key=args.encryption_key,
        experiment=args.experiment,
        dry_run=args.dry_run,
    )
    if args.dry_run:
        _note("dry run: CreatePipelineJobRequest (not sent):")
        _print_json(result.request)
        if result.experiment:
            _note(f"then associated with Vertex AI Experiment {result.experiment!r} (metadata calls)")
        return 0
    print(f"pipeline job: {result.resource_name}")
    if result.experiment:
        print(f"experiment: {result.experiment}")
    print(f"console: {result.dashboard_url}")
    return 0


# --------------------------------------------------------------------------- schedules


def register_schedules(subparsers) -> None:
    parser = subparsers.add_parser("schedules", help="apply pipelines/schedules.yaml to KFP or Vertex AI")
    actions = parser.add_subparsers(dest="action", required=True, metavar="{apply,validate}")

    apply = actions.add_parser("apply", help="create/replace/prune recurring runs to match the file",
                               description=schedules.__doc__)
    apply.add_argument("--file", type=Path, default=schedules.DEFAULT_FILE, help="schedules file")
    apply.add_argument("--target", choices=schedules.TARGETS, required=True)
    apply.add_argument("--prune", action="store_true",
                       help="delete schedules this tool created that the file no longer lists")
    apply.add_argument("--dry-run", action="store_true", help="print the plan and requests, change nothing")
    apply.add_argument("--kfp-timezone", default="UTC",
                       help="time zone of the KFP scheduledworkflow controller (CRON_SCHEDULE_TIMEZONE)")
    apply.add_argument("--service-account",
                       help="runs execute as this account (KFP: Kubernetes SA; Vertex: GCP SA)")
    _add_kfp_connection(apply)
    group = apply.add_argument_group("Vertex AI (with --target vertex)")
    group.add_argument("--project")
    group.add_argument("--region")
    group.add_argument("--pipeline-root", help="gs://... on Vertex (required); optional override on KFP")
    group.add_argument("--network", help="projects/<project-number>/global/networks/<vpc>")
    group.add_argument("--api-endpoint", help="Vertex API endpoint override")
    group.add_argument("--api-transport", choices=("grpc", "rest"))
    apply.set_defaults(handler=_schedules_apply)

    validate = actions.add_parser("validate", help="check the file against the goldens, offline")
    validate.add_argument("--file", type=Path, default=schedules.DEFAULT_FILE)
    validate.set_defaults(handler=_schedules_validate)


def _schedules_apply(args) -> int:
    entries = schedules.load_schedules(args.file)
    if args.target == "kfp":
        client, _ = _kfp_client_from(args)
        plan = schedules.plan_kfp(
            client, entries, namespace=args.namespace, prune=args.prune,
            pipeline_root=args.pipeline_root, service_account=args.service_account,
            kfp_timezone=args.kfp_timezone,
        )
    else:
        missing = [f"--{n.replace('_', '-')}" for n in ("project", "region", "pipeline_root")
                   if not getattr(args, n)]
        if missing:
            raise ValueError(f"--target vertex needs {', '.join(missing)}")
        _init_vertex(args)
        plan = schedules.plan_vertex(
            entries, project=args.project, region=args.region, pipeline_root=args.pipeline_root,
            service_account=args.service_account, network=args.network, prune=args.prune,
        )
    for note in plan.notes:
        print(note)
    if not plan.actions:
        print(f"{plan.target}: no schedules target {plan.target} in {args.file}")
    if args.dry_run:
        for action in plan.actions:
            print(action.describe(dry_run=True))
            if action.changes and action.request is not None:
                _print_json(action.payload())
    schedules.apply(plan, dry_run=args.dry_run, report=lambda action: print(action.describe(), flush=True))
    counts = {}
    for action in plan.actions:
        counts[action.kind] = counts.get(action.kind, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing to do"
    print(f"{plan.target}: {'dry run, nothing changed: ' if args.dry_run else ''}{summary}")
    return 0


def _schedules_validate(args) -> int:
    for line in schedules.validate(schedules.load_schedules(args.file)):
        print(line)
    return 0


def register_lineage(subparsers) -> None:
    """`lineage` (what produced a model) and `reproduce` (re-run it): both read MLflow only."""
    commands = {
        "lineage": ("what produced a registered model: data, fingerprint, gates, run, image", _lineage),
        "reproduce": ("re-run training and evaluation of a registered model from its lineage in "
                      "the runtime image; compare each metric with the recorded one", _reproduce),
    }
    for name, (help_text, handler) in commands.items():
        parser = subparsers.add_parser(name, help=help_text)
        parser.add_argument("--model", required=True, help="NAME@ALIAS or NAME/VERSION")
        parser.add_argument("--tracking-uri", default="http://127.0.0.1:5000", help="MLflow tracking URI")
        parser.add_argument("--json", action="store_true", help="print the record as JSON")
        parser.set_defaults(handler=handler)


def _lineage(args) -> int:
    from launch import lineage

    record = lineage.lineage(args.tracking_uri, args.model)
    print(json.dumps(record, indent=2, sort_keys=True) if args.json else lineage.render(record))
    return 0


def _reproduce(args) -> int:
    from launch import lineage

    record = lineage.reproduce(args.tracking_uri, args.model)
    print(json.dumps(record, indent=2, sort_keys=True) if args.json else lineage.render_reproduction(record))
    return 0


# --------------------------------------------------------------------------- main

def register_serve(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a model folder or an MLflow registered version locally (KServe v1 and v2)",
        description="Runs the KServe model server in the runtime image on the host network.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-dir", type=Path, help="model folder in the TF-Serving layout (<dir>/1/...)")
    source.add_argument("--registered-model", help="MLflow registered model name")
    parser.add_argument("--alias", default="production", help="alias or version number (registered model)")
    parser.add_argument("--tracking-uri", default="http://127.0.0.1:5000", help="MLflow tracking URI")
    parser.add_argument("--name", help="served model name (default: the registered model or folder name)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--log-dir", type=Path, help="log every request and prediction here (what monitor_model reads)"
    )
    parser.add_argument(
        "--feature-repo",
        type=Path,
        help="Feast repository a model trained from a feature store reads its online features from "
        "(default: the one recorded in the model)",
    )
    parser.set_defaults(handler=_serve)


def _serve(args) -> int:
    from launch import local

    name = args.name or args.registered_model or args.model_dir.resolve().name
    url = local.serve_model(
        name=name, model_dir=args.model_dir, registered_model=args.registered_model or "",
        alias=args.alias, tracking_uri=args.tracking_uri, port=args.port, log_dir=args.log_dir,
        feature_repo=args.feature_repo,
    )
    print(f"serving {name!r} at {url} (container kfp-ct-serve-{name}; stop with docker rm -f)")
    print(f"  curl {url}/v1/models/{name}")
    print(f"  curl -X POST {url}/v1/models/{name}:predict -H 'content-type: application/json' "
          "-d '{\"instances\": [{...feature: value...}]}'")
    print(f"  curl -X POST {url}/v2/models/{name}/infer -H 'content-type: application/json' "
          "-d '{\"inputs\": [{\"name\": FEATURE, \"shape\": [1], \"datatype\": \"FP32\", \"data\": [1.0]}]}'")
    return 0


COMMANDS: list[Callable] = [register_submit, register_schedules, register_serve, register_lineage]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m launch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="{submit,schedules,serve,lineage,reproduce}"
    )
    for register in COMMANDS:
        register(subparsers)
    return parser


def _expected_errors() -> tuple[type[BaseException], ...]:
    import urllib3

    # TimeoutError (kfp's healthz retries) is an OSError; urllib3's MaxRetryError is not.
    errors: list[type[BaseException]] = [ValueError, OSError, urllib3.exceptions.HTTPError]
    try:
        import kfp_server_api

        errors.append(kfp_server_api.ApiException)
    except ImportError:  # pragma: no cover - the host venv has it
        pass
    try:
        from google.api_core import exceptions as api_exceptions
        from google.auth import exceptions as auth_exceptions

        errors += [api_exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except _expected_errors() as exc:
        message = str(exc)
        status = getattr(exc, "status", None)
        if status is not None and getattr(exc, "body", None) is not None:  # kfp_server_api.ApiException
            message = f"KFP API {status} {exc.reason}: {str(exc.body)[:500]}"
        elif type(exc).__module__.startswith("urllib3"):
            message = f"cannot reach the server: {exc}"
        print(f"error: {message}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
