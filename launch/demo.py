"""The main job: the compiled training pipeline end to end on this machine, good data and bad.

    make demo                                  # demo data: a good run, then a corrupted one
    make demo ARGS="--data my.csv --label y"   # your own CSV/Parquet
    make demo ARGS=--feature-store             # the training set from a Feast feature store

Starts (or reuses) a real MLflow server, generates data, runs pipelines/training.yaml under
kfp.local in the runtime image (validate -> train -> evaluate -> register -> deploy to a local
KServe model server -> smoke test), then runs it again on corrupted data and shows the data gate
stopping it. Ends with a summary table.

With --feature-store: writes the demo Feast feature repository (customers with daily-changing
features, churn labels at moments in time) under the pipeline root, registers it, loads its
online store (materialize_features) and runs pipelines/training_feature_store.yaml, whose first
step assembles the training set point-in-time correct (build_training_set).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
import urllib.request
from pathlib import Path

from launch import local

logger = logging.getLogger("demo")

DEMO_LABEL = "churned"
DEMO_MODEL = "churn-classifier"
FEATURE_SERVICE = "churn_model"  # components.make_demo_data.feature_repo (which needs pandas)
FEATURE_REPOSITORY = "feature_repo"  # under the pipeline root
FEATURE_STORE_MODEL = "churn-feast"
ENTITY_KEY, DEMO_CUSTOMER = "customer_id", 1001  # the demo repository's key and its first customer


def _key_value(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected METRIC=VALUE, got {text!r}")
    return key, float(value)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="make demo ARGS=...", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, help="your CSV or Parquet file (default: generated demo data)")
    p.add_argument("--label", help=f"label column (default for demo data: {DEMO_LABEL})")
    p.add_argument("--features", nargs="*", default=[], help="feature columns (default: all but the label)")
    p.add_argument("--drop", nargs="*", default=[], help="columns to leave out of the features")
    p.add_argument("--categorical", nargs="*", default=[], help="integer-coded categorical columns")
    p.add_argument("--timestamp", default="", help="timestamp column: evaluate on the most recent rows")
    p.add_argument("--model-name", default=None, help="MLflow registered model and served model name")
    p.add_argument("--rows", type=int, default=5000, help="rows of demo data")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--bad-scenario", default="type_change",
                   help="corruption for the second run (demo data only); 'skip' skips it")
    p.add_argument("--threshold", type=_key_value, action="append", default=None,
                   help="absolute bound METRIC=VALUE (default for demo data: auc=0.7)")
    p.add_argument("--max-drop", type=_key_value, action="append", default=None,
                   help="largest drop vs production METRIC=VALUE (default: the primary metric, ROC AUC / "
                        "accuracy / RMSE, drops at most 0.01, RMSE 1%%)")
    p.add_argument("--feature-store", action="store_true",
                   help="train from the demo Feast feature repository (training_feature_store pipeline)")
    p.add_argument("--customers", type=int, default=1000, help="customers in the demo feature repository")
    p.add_argument("--output-dir", type=Path, default=Path("local_outputs"))
    p.add_argument("--mlflow-port", type=int, default=5000)
    p.add_argument("--serving-port", type=int, default=8080)
    return p.parse_args(argv)


def _stage_data(source: Path, root: Path) -> Path:
    """Copies the user's file under the pipeline root: kfp.local mounts only that folder."""
    if not source.is_file():
        raise SystemExit(f"--data {source}: no such file")
    if source.suffix not in (".csv", ".parquet"):
        raise SystemExit(f"--data {source}: expected a .csv or .parquet file")
    target = root / "data" / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.stat().st_mtime < source.stat().st_mtime:
        shutil.copy2(source, target)
    return target


def _demo_data(rows: int, scenario: str) -> Path:
    from components import make_demo_data

    task = make_demo_data(rows=rows, seed=0, scenario=scenario, file_format="csv")
    return Path(task.outputs["data"].path)


def _feature_repository(root: Path, customers: int) -> Path:
    """Writes and registers the demo feature repository under the pipeline root (kfp.local
    mounts only that folder), loads its online store with materialize_features, and returns
    its entity table (churn labels with their event times)."""
    from components import materialize_features

    repository = root / FEATURE_REPOSITORY
    logger.info("writing the demo feature repository %s (%d customers) ...", repository, customers)
    written = local.run_once(
        ["python", "-m", "components.make_demo_data.feature_repo", str(repository),
         "--customers", str(customers), "--apply"],
        [root],
    )
    repo = json.loads(written.strip().splitlines()[-1])
    logger.info("materializing its online store (materialize_features) ...")
    report = Path(materialize_features(repository=str(repository)).outputs["report"].path)
    for view in json.loads(report.read_text())["views"]:
        logger.info("  %s: %d entities, newest event %s",
                    view["name"], view["entities"], view["newest_event_time"])
    return Path(repo["entity_table"])


def _curl_example(url: str, model: str) -> str:
    return (f"curl -s {url}/v1/models/{model}:predict -H 'Content-Type: application/json' "
            "-d @local_outputs/request.json")


def _smoke_from_host(url: str, model: str, data: Path, root: Path, label: str) -> str:
    """One real request from the host to the served model; returns the answer."""
    import csv

    with open(data, newline="") as f:
        row = next(csv.DictReader(f))
    row.pop(label, None)
    instance = {k: (_number(v) if v != "" else None) for k, v in row.items()}
    body = {"instances": [instance]}
    (root / "request.json").write_text(json.dumps(body))
    return _post(f"{url}/v1/models/{model}:predict", body)


def _post(url: str, body: dict) -> str:
    """The served model's answer to one JSON request from the host."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read().decode()


def _number(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _key_metrics(result: local.RunResult) -> str:
    """The candidate's headline metrics from its blessing report (a local file here)."""
    record = result.gate("model-is-blessed")
    if not record or not Path(record.get("verdict_uri", "")).is_file():
        return "-"
    details = json.loads(Path(record["verdict_uri"]).read_text()).get("details", {})
    metrics = details.get("candidate", {}).get("metrics", {})
    shown = [m for m in ("roc_auc", "accuracy", "macro_f1", "rmse", "r2") if m in metrics][:2]
    return ", ".join(f"{m} {metrics[m]:.3f}" for m in shown) or "-"


def _gate_cell(result: local.RunResult, gate: str) -> str:
    """The gate's verdict as the run summary states it ("not reached", "not recorded")."""
    record = result.gate(gate)
    if record is None:
        gates = {g["gate"]: g["verdict"] for g in result.summary.get("gates", [])}
        return gates.get(gate, "not recorded")
    return "PASSED" if record["passed"] else "FAILED"


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    args = parse_args(argv)
    demo_data = args.data is None
    label = args.label or (DEMO_LABEL if demo_data else None)
    if not label:
        raise SystemExit("--label is required with --data")
    model_name = args.model_name or (DEMO_MODEL if demo_data else f"{args.data.stem}-model".replace("_", "-"))
    if args.feature_store and not args.model_name:
        # Its own registered model: production of the file demo (other features) is no baseline.
        model_name = FEATURE_STORE_MODEL
    thresholds = dict(args.threshold or ([("auc", 0.7)] if demo_data else []))
    max_drop = dict(args.max_drop or [])  # evaluate_model's own primary-metric limit applies

    started = time.monotonic()
    root = local.init(args.output_dir)
    serving_dir = root / "serving"
    serving_dir.mkdir(exist_ok=True)
    logger.info("pipeline root: %s", root)
    mlflow_uri = local.ensure_mlflow(root / "mlflow", port=args.mlflow_port)
    logger.info("MLflow tracking server: %s", mlflow_uri)

    runs = []
    if args.feature_store:
        if args.data is not None:
            raise SystemExit("--feature-store trains from the demo feature repository: leave out --data")
        runs.append(("feature store", _feature_repository(root, args.customers)))
    elif demo_data:
        logger.info("generating %d rows of demo data ...", args.rows)
        runs.append(("good data", _demo_data(args.rows, "none")))
        if args.bad_scenario != "skip":
            runs.append((f"corrupted ({args.bad_scenario})", _demo_data(args.rows, args.bad_scenario)))
    else:
        runs.append((args.data.name, _stage_data(args.data, root)))

    serving_url = f"http://127.0.0.1:{args.serving_port}"
    # With the feature store, the server reads the model's online features from the repository.
    feature_repo = root / FEATURE_REPOSITORY if args.feature_store else None
    if feature_repo is not None or local.runs_an_older_image(local.SERVING_CONTAINER):
        logger.info("(re)starting the local model server (feature repository: %s)", feature_repo or "none")
        local.ensure_model_server(serving_dir, port=args.serving_port, name=local.SERVING_CONTAINER,
                                  feature_repo=feature_repo)
    results = []
    for title, data in runs:
        endpoint = serving_url if local.answers(f"{serving_url}/v2/health/ready") else ""
        logger.info("running the training pipeline on %s (%s) ...", title, data)
        if args.feature_store:
            source = dict(feature_repository=str(root / FEATURE_REPOSITORY), entity_table_uri=str(data),
                          feature_service=FEATURE_SERVICE,
                          timestamp_column=args.timestamp or "event_timestamp")
        else:
            source = dict(data_uri=str(data), timestamp_column=args.timestamp)
        result = local.run_pipeline(
            "training_feature_store" if args.feature_store else "training", root, **source,
            label=label, features=args.features, exclude_features=args.drop,
            categorical_columns=args.categorical, epochs=args.epochs, thresholds=thresholds,
            change_thresholds=max_drop, mlflow_tracking_uri=mlflow_uri, registered_model_name=model_name,
            service_name=model_name, deploy_target="local", local_serving_dir=str(serving_dir),
            local_endpoint=endpoint, accelerator_count=0,
        )
        state = result.summary.get("state", result.error or "?")
        logger.info("%s: %s in %.0f s", title, state, result.seconds)
        if (result.gate("deployment-is-healthy") or {}).get("passed") and not endpoint:
            # A running server was already told to reload by deploy_model; else start one.
            local.ensure_model_server(serving_dir, port=args.serving_port, name=local.SERVING_CONTAINER,
                                      feature_repo=feature_repo)
        results.append((title, data, result))

    elapsed = time.monotonic() - started
    print(_summary_table(results, root, mlflow_uri, model_name, serving_url, label, elapsed))
    if args.feature_store:  # its one run is a good one: every gate must pass
        return 0 if all(r.summary.get("state") == "SUCCEEDED" and not r.error for _, _, r in results) else 1
    return 0 if all(not r.error for _, _, r in results) else 1


def _summary_table(results, root: Path, mlflow_uri: str, model: str, serving_url: str, label: str,
                   seconds: float) -> str:
    lines = ["", "=" * 100, "SUMMARY", "=" * 100,
             "| run | data-is-valid | model-is-blessed | deployment-is-healthy | key metrics | time "
             "| record |",
             "|---|---|---|---|---|---|---|"]
    for title, _, result in results:
        record = root / "run-records" / result.job_id
        lines.append(
            f"| {title} | {_gate_cell(result, 'data-is-valid')} | {_gate_cell(result, 'model-is-blessed')} | "
            f"{_gate_cell(result, 'deployment-is-healthy')} | {_key_metrics(result)} | "
            f"{result.seconds:.0f} s | {record} |"
        )
    for title, _, result in results:
        steps = ", ".join(f"{step} {seconds:.0f} s" for step, seconds in result.steps.items())
        lines.append(f"{title}: steps: {steps}")
    for title, _, result in results:
        for gate in ("data-is-valid", "model-is-blessed", "deployment-is-healthy"):
            record = result.gate(gate) or {}
            if record.get("failures"):
                lines.append(f"\n{title}: {gate} FAILED because:")
                lines += [f"  - {f.get('subject') or ''}: {f['reason']}" for f in record["failures"][:10]]
            if record.get("verdict_uri"):
                lines.append(f"{title}: {gate} verdict: {record['verdict_uri']}")
        if result.error:
            lines.append(f"\n{title}: pipeline error: {result.error}")
    production = local.mlflow_alias_version(mlflow_uri, model, "production")
    candidate = local.mlflow_alias_version(mlflow_uri, model, "candidate")
    lines += ["", f"MLflow UI:            {mlflow_uri}  (model '{model}': production -> version "
              f"{production or '-'}, candidate -> version {candidate or '-'})"]
    served = local.answers(f"{serving_url}/v2/health/ready")
    if served:
        good = next((d for t, d, r in results if (r.gate("deployment-is-healthy") or {}).get("passed")), None)
        if good is not None and good.is_relative_to(root / FEATURE_REPOSITORY):
            # The entity table holds no features: the request carries the customer alone.
            instance = {ENTITY_KEY: DEMO_CUSTOMER}
            answer = _post(f"{serving_url}/v1/models/{model}:predict", {"instances": [instance]})
            lines.append(f"Served model:         {serving_url}/v1/models/{model}  (online features; "
                         f"{json.dumps(instance)} -> {answer[:160]})")
            lines.append(f"Call it:              curl -s {serving_url}/v1/models/{model}:predict "
                         f"-H 'Content-Type: application/json' -d '{json.dumps({'instances': [instance]})}'")
        elif good is not None and good.suffix == ".csv":
            answer = _smoke_from_host(serving_url, model, good, root, label)
            lines.append(f"Served model:         {serving_url}/v1/models/{model}  (answer: {answer[:100]})")
            lines.append(f"Call it:              {_curl_example(serving_url, model)}")
    else:
        lines.append("Served model:         none (no deployment passed)")
    repository = root / FEATURE_REPOSITORY
    for _, data, _ in results:
        if data.is_relative_to(repository):
            sets = sorted(root.glob("training-feature-store-*/build-training-set/training_set*.parquet"))
            lines += [
                f"Feature repository:   {repository}  (feature_store.yaml, features.py; online store "
                "data/online_store.db)",
                f"Entity table:         {data}",
                f"Training set:         {sets[-1] if sets else '-'}  (its lineage: Parquet metadata 'feast')",
            ]
    lines.append(f"Total wall time:      {seconds:.0f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
