"""Re-runs training and evaluation of a registered model version from its lineage in MLflow,
on this machine, and puts each evaluation metric next to the recorded one.

    python -m components.reproduce --tracking-uri URI --model NAME@ALIAS

Runs in the runtime image (``python -m launch reproduce`` starts it there). The data is read
at the recorded URI (the immutable snapshot when the run took one) and must still have the
recorded fingerprint; the schema and evaluation data come from MLflow, the hyperparameters
from the training run's parameters, so the same seed gives the same split, initialisation and
shuffle order.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import sys
import tempfile
from pathlib import Path

from components import registry, uris

logger = logging.getLogger(__name__)

_INTS = ("epochs", "batch_size", "early_stopping_patience", "seed")
_FLOATS = ("learning_rate", "dropout", "eval_fraction")


class NotReproducible(RuntimeError):
    """The lineage lacks what a re-run needs, or the data changed since."""


def _version(client, model: str):
    name, alias, number = registry.parse_model_ref(model)
    if alias:
        return name, client.get_model_version_by_alias(name, alias)
    return name, client.get_model_version(name, number)


def _arguments(params: dict) -> dict:
    """train_model arguments from the training run's logged parameters."""
    args = {k: int(params[k]) for k in _INTS if k in params}
    args.update({k: float(params[k]) for k in _FLOATS if k in params})
    args.update(
        label=params["label"],
        task=params.get("task", "auto"),
        features=[f for f in params.get("features", "").split(",") if f],
        hidden_units=[int(u) for u in ast.literal_eval(params.get("hidden_units", "[64, 32]"))],
        categorical_columns=ast.literal_eval(params.get("categorical_columns", "[]")),
        timestamp_column=params.get("timestamp_column", ""),
    )
    if params.get("model_fn", "default") != "default":
        args["model_fn"] = params["model_fn"]
    return args


def reproduce(tracking_uri: str, model: str) -> dict:
    """Returns {"model", "version", "data_uri", "metrics": {name: {"recorded", "reproduced",
    "difference"}}}: final evaluation metrics of training and the model gate's metrics."""
    from components.evaluate_model import runtime as evaluate
    from components.train_model import runtime as train

    client = registry.client(registry.resolve_tracking_uri(tracking_uri, required_for="reproduce"))
    registry.use(tracking_uri)
    name, version = _version(client, model)
    tags = version.tags or {}
    if not tags.get("training_run_id"):
        raise NotReproducible(f"{name} version {version.version} records no training run (training_run_id)")
    run = client.get_run(tags["training_run_id"])
    data_uri, recorded = tags.get("data_uri", ""), tags.get("data_hash", "")
    found = uris.fingerprint(data_uri).value
    if found != recorded:
        raise NotReproducible(
            f"the data at {data_uri} changed since version {version.version} was trained "
            f"(fingerprint {found}, recorded {recorded}); train with snapshot_uri to keep an "
            "immutable copy"
        )
    work = Path(tempfile.mkdtemp(prefix="reproduce-"))
    schema = uris.filesystem_for(tags[registry.lineage_tag("schema")])[1]
    logger.info("re-training %s version %s on %s", name, version.version, data_uri)
    result = train.run(
        data_uri=data_uri, schema_path=schema, model_dir=str(work / "model"),
        eval_data_path=str(work / "eval.parquet"), verbose=0, **_arguments(run.data.params),
    )
    blessing = json.loads(uris.read_bytes(tags[registry.lineage_tag("blessing")]))
    evaluation = evaluate.run(
        model_dir=str(work / "model"), verdict_path=str(work / "verdict.json"),
        report_path=str(work / "report.md"), eval_data_path=str(work / "eval.parquet"),
        model_metadata=result.model_metadata, baseline_source="none", max_latency_p95_ms=0,
        robustness_noise=0,
    )
    recorded_metrics = {
        **{k[len("final_"):]: v for k, v in run.data.metrics.items() if k.startswith("final_eval_")},
        **blessing["details"]["candidate"]["metrics"],
    }
    reproduced = {**result.metrics, **evaluation["metrics"]}
    metrics = {
        key: {"recorded": value, "reproduced": reproduced[key], "difference": abs(reproduced[key] - value)}
        for key, value in sorted(recorded_metrics.items())
        if isinstance(value, (int, float)) and key in reproduced
    }
    return {"model": name, "version": str(version.version), "data_uri": data_uri, "metrics": metrics}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--model", required=True, help="NAME@ALIAS or NAME/VERSION")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    try:
        print(json.dumps(reproduce(args.tracking_uri, args.model), sort_keys=True))  # one line
    except (NotReproducible, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
