"""evaluate_model: the model gate on real models and small demo data.

Candidates and baselines are real models trained by train_model on the demo churn data;
special models (a constant one, a deliberately slowed one, an unstable one) come from
``evaluate_models``. Every test judges the real SavedModels through their serving
signature, the way the component does in a pipeline.
"""

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import saved_models
from mlflow import MlflowClient
from relay import reply
from report_pages import chart_titles

from components import run_records
from components.evaluate_model import runtime
from components.make_demo_data import runtime as demo
from components.train_model import runtime as train_model
from components.verdict import Verdict
from tests.runtime import evaluate_models


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("evaluate")


@pytest.fixture(scope="module")
def eval_path(work) -> str:
    return str(demo.write(demo.generate(600, seed=101), work / "eval.parquet"))


def train(folder: Path, data, label: str, **kwargs) -> tuple[str, dict]:
    """A real model from train_model (small data, few epochs); returns (model dir, metadata)."""
    folder.mkdir(parents=True, exist_ok=True)
    data_path = demo.write(data, folder / "train.csv")
    kwargs.setdefault("exclude_features", [demo.TIMESTAMP])
    result = train_model.run(
        label=label, model_dir=str(folder / "model"), eval_data_path=str(folder / "split.parquet"),
        data_path=str(data_path), epochs=8, verbose=0, **kwargs,
    )
    return str(folder / "model"), result.model_metadata


@pytest.fixture(scope="module")
def models(work) -> dict:
    """The churn model trained on clean data, and on data whose label no longer follows the
    features (``label_shift``): a model clearly worse than the first."""
    train_df = demo.generate(1500, seed=7)
    return {
        "clean": train(work / "clean", train_df, demo.LABEL),
        "shifted": train(work / "shifted", demo.corrupt(train_df, "label_shift"), demo.LABEL),
    }


def evaluate(tmp_path, model, eval_data, **kwargs) -> dict:
    model_dir, metadata = model
    kwargs.setdefault("baseline_source", "none")
    kwargs.setdefault("latency_calls", 20)
    result = runtime.run(
        model_dir=model_dir, model_metadata=metadata, model_uri=model_dir,
        eval_data_path=eval_data, verdict_path=str(tmp_path / "blessing.json"),
        report_path=str(tmp_path / "report.md"), **kwargs,
    )
    result["blessing"] = json.loads((tmp_path / "blessing.json").read_text())
    result["report"] = (tmp_path / "report.md").read_text()
    return result


def checks(result, name=None, status=None) -> list[dict]:
    return [
        c for c in result["blessing"]["checks"]
        if (name is None or c["name"] == name) and (status is None or c["status"] == status)
    ]


def test_better_candidate_than_baseline_is_blessed(tmp_path, models, eval_path):
    result = evaluate(
        tmp_path, models["clean"], eval_path,
        baseline_source="uri", baseline_model_uri=models["shifted"][0],
        thresholds={"auc": 0.7, "log_loss": 0.6}, change_thresholds={"auc": 0.01, "f1": 0.02},
        slice_columns=["plan", "age"], fairness_max_gap=0.3,
        predictions_path=str(tmp_path / "predictions.parquet"),
    )
    assert result["blessed"], result["summary"]
    predictions = pd.read_parquet(tmp_path / "predictions.parquet")
    assert set(predictions["prediction"]) <= {0, 1} and predictions["score"].between(0.5, 1).all()
    correct = (predictions["prediction"] == predictions[demo.LABEL]).mean()
    assert correct == pytest.approx(result["metrics"]["accuracy"])
    blessing = result["blessing"]
    assert blessing["gate"] == "model-is-blessed" and blessing["passed"] is True
    names = {(c["name"], c["subject"]) for c in blessing["checks"]}
    assert {("absolute", "roc_auc"), ("absolute", "log_loss"), ("change", "roc_auc"),
            ("change", "f1"), ("degenerate", "predictions"), ("latency", "serving_default"),
            ("robustness", "gaussian_noise"), ("fairness", "plan"), ("fairness", "age")} <= names
    for check in blessing["checks"]:
        assert check["reason"] and check["status"] == "pass"
    # Candidate and baseline side by side, evaluated on the same rows.
    comparison = blessing["details"]["comparison"]["roc_auc"]
    assert comparison["candidate"] > comparison["baseline"] + 0.1
    assert blessing["details"]["baseline"]["metrics"]["roc_auc"] == comparison["baseline"]
    assert result["metrics"]["baseline_roc_auc"] == pytest.approx(comparison["baseline"])
    assert set(runtime._metrics.METRICS["binary"]) <= set(result["metrics"])
    # Sliced metrics: every plan, and age by quartile.
    slices = blessing["details"]["slices"]
    assert {s["value"] for s in slices["plan"]} == set(demo.PLANS)
    assert len(slices["age"]) == 4 and sum(s["rows"] for s in slices["age"]) == 600
    report = result["report"]
    assert "| metric | candidate | baseline | delta | better |" in report
    assert f"| roc_auc | {comparison['candidate']:.4f} | {comparison['baseline']:.4f} |" in report
    assert "## Slices by `plan`" in report and "| status | check |" in report


def test_worse_candidate_is_not_blessed_and_the_metric_is_named(tmp_path, models, eval_path):
    result = evaluate(
        tmp_path, models["shifted"], eval_path,
        baseline_source="uri", baseline_model_uri=models["clean"][0],
        change_thresholds={"roc_auc": 0.02},
    )
    assert not result["blessed"]
    [failed] = checks(result, "change", "fail")
    assert failed["subject"] == "roc_auc" and failed["value"] > 0.02
    base = result["blessing"]["details"]["comparison"]["roc_auc"]
    assert f"candidate {base['candidate']:.4g} vs baseline {base['baseline']:.4g}" in failed["reason"]
    assert "roc_auc" in result["summary"] and "degraded" in result["summary"]


def test_constant_model_is_degenerate(tmp_path, eval_path):
    model_dir = tmp_path / "constant"
    metadata = evaluate_models.constant(model_dir)
    result = evaluate(tmp_path, (str(model_dir), metadata), eval_path)
    assert not result["blessed"]
    [failed] = checks(result, status="fail")
    assert failed["name"] == "degenerate" and failed["value"] == pytest.approx(0.0)
    assert "near-constant" in failed["reason"]


def test_too_slow_model_is_not_blessed(tmp_path, models, eval_path):
    # The trained model plus real work per request: 300 chained 256x256 matrix products.
    slow_dir = tmp_path / "slow"
    evaluate_models.slowed(slow_dir, models["clean"][0], matmuls=300)
    limit = dict(max_latency_p95_ms=50.0, latency_calls=10)
    slow = evaluate(tmp_path, (str(slow_dir), models["clean"][1]), eval_path, **limit)
    fast = evaluate(tmp_path, models["clean"], eval_path, **limit)
    assert not slow["blessed"]
    [failed] = checks(slow, status="fail")
    assert failed["name"] == "latency" and failed["value"] > 50.0
    assert "above the limit of 50 ms" in failed["reason"]
    # The same predictions without the extra work: within the limit.
    assert fast["blessed"] and checks(fast, "latency")[0]["value"] < 50.0
    assert slow["metrics"]["roc_auc"] == pytest.approx(fast["metrics"]["roc_auc"], abs=1e-6)


def test_model_unstable_under_noise_is_not_blessed(tmp_path, eval_path):
    model_dir = tmp_path / "fragile"
    metadata = evaluate_models.fragile(model_dir)
    result = evaluate(tmp_path, (str(model_dir), metadata), eval_path, robustness_min_agreement=0.9)
    [failed] = checks(result, status="fail")
    assert failed["name"] == "robustness" and failed["value"] < 0.9
    assert not result["blessed"]


def test_fairness_gap_between_slices_is_checked(tmp_path, models, eval_path):
    result = evaluate(
        tmp_path, models["clean"], eval_path, slice_columns=["region"], fairness_max_gap=0.001,
    )
    [failed] = checks(result, "fairness", "fail")
    assert failed["subject"] == "region" and failed["value"] > 0.001
    assert "region=" in failed["reason"] and "roc_auc ranges from" in failed["reason"]
    assert not result["blessed"]


def test_first_run_without_alias_is_blessed_on_absolute_checks_only(
    tmp_path, models, eval_path, mlflow_server
):
    result = evaluate(
        tmp_path, models["clean"], eval_path,
        baseline_source="mlflow", mlflow_tracking_uri=mlflow_server,
        registered_model_name="churn-never-registered", baseline_alias="production",
        thresholds={"roc_auc": 0.7}, change_thresholds={"roc_auc": 0.01},
        mlflow_experiment="evaluate-first-run",
    )
    assert result["blessed"], result["summary"]
    blessing = result["blessing"]
    assert not checks(result, "change")
    assert checks(result, "absolute")[0]["status"] == "pass"
    [note] = blessing["notes"]
    assert "first run" in note and "absolute checks only" in note
    assert blessing["details"]["baseline"]["alias"] == "production"
    assert "absolute checks only" in result["report"]
    # Logged to MLflow: one run in the experiment, tagged with the candidate.
    run_id = blessing["details"]["mlflow_run_id"]
    run = MlflowClient(mlflow_server).get_run(run_id)
    assert run.data.tags["candidate.uri"] == models["clean"][0]
    assert run.data.tags["model_is_blessed"] == "true"
    assert run.data.metrics["roc_auc"] == pytest.approx(result["metrics"]["roc_auc"])
    assert "baseline_roc_auc" not in run.data.metrics


def register(tracking_uri: str, name: str, model_dir: str, alias: str = "production") -> str:
    """Registers a model folder the way register_model does: run artifact "model" + version."""
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    mlflow.set_experiment("evaluate-test-registrations")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(model_dir, artifact_path="model")
        source = mlflow.get_artifact_uri("model")
    client.create_registered_model(name)
    version = client.create_model_version(name, source, run_id=run.info.run_id)
    client.set_registered_model_alias(name, alias, version.version)
    return version.version


def test_baseline_from_the_mlflow_production_alias(tmp_path, models, eval_path, mlflow_server):
    version = register(mlflow_server, "churn-eval", models["clean"][0])
    result = evaluate(
        tmp_path, models["shifted"], eval_path,
        baseline_source="mlflow", mlflow_tracking_uri=mlflow_server,
        registered_model_name="churn-eval", change_thresholds={"roc_auc": 0.02},
    )
    assert not result["blessed"]
    baseline = result["blessing"]["details"]["baseline"]
    assert baseline["version"] == version and baseline["alias"] == "production"
    assert baseline["metrics"]["roc_auc"] > 0.7
    [failed] = checks(result, "change", "fail")
    assert failed["subject"] == "roc_auc"
    run = MlflowClient(mlflow_server).get_run(result["blessing"]["details"]["mlflow_run_id"])
    assert run.data.metrics["baseline_roc_auc"] == pytest.approx(baseline["metrics"]["roc_auc"])
    assert run.data.tags["model_is_blessed"] == "false"
    assert run.data.tags["baseline.version"] == version


def test_a_worse_candidate_is_refused_by_default_unless_explicitly_allowed(tmp_path, models, eval_path):
    against_clean = dict(baseline_source="uri", baseline_model_uri=models["clean"][0])
    default = evaluate(tmp_path, models["shifted"], eval_path, **against_clean)
    assert not default["blessed"]
    [failed] = checks(default, "change", "fail")
    assert failed["subject"] == "roc_auc" and failed["threshold"] == pytest.approx(0.01)
    allowed = evaluate(
        tmp_path, models["shifted"], eval_path, change_thresholds={"auc": 1.0}, **against_clean
    )
    assert checks(allowed, "change", "fail") == []
    assert checks(allowed, "change", "pass")[0]["threshold"] == 1.0


def test_multiclass_model(tmp_path, eval_path):
    model = train(tmp_path / "plan", demo.generate(1500, seed=7), "plan")
    assert model[1]["task"] == "multiclass"
    result = evaluate(
        tmp_path, model, eval_path,
        thresholds={"accuracy": 0.8, "macro_f1": 0.7}, slice_columns=["region"],
        predictions_path=str(tmp_path / "predictions.parquet"),
    )
    predictions = pd.read_parquet(tmp_path / "predictions.parquet")
    assert list(predictions.columns) == ["plan", "prediction", "score"] and len(predictions) == 600
    assert set(predictions["prediction"]) <= set(demo.PLANS)
    correct = (predictions["prediction"] == predictions["plan"]).mean()
    assert correct == pytest.approx(result["metrics"]["accuracy"])
    assert result["blessed"], result["summary"]
    assert set(result["metrics"]) >= {"accuracy", "macro_f1", "log_loss"}
    assert "roc_auc" not in result["metrics"] and result["roc_curve"] is None
    matrix = result["confusion_matrix"]
    assert matrix["categories"] == [str(c) for c in model[1]["classes"]]
    assert sorted(matrix["categories"]) == sorted(demo.PLANS)
    assert len(matrix["matrix"]) == 3 and all(len(row) == 3 for row in matrix["matrix"])
    assert sum(map(sum, matrix["matrix"])) == 600
    correct = sum(matrix["matrix"][i][i] for i in range(3))
    assert correct / 600 == pytest.approx(result["metrics"]["accuracy"])
    assert checks(result, "fairness")[0]["subject"] == "region"


def test_regression_model_against_a_baseline_with_fewer_features(tmp_path, eval_path):
    train_df = demo.generate(1500, seed=7)
    exclude = [demo.TIMESTAMP, "total_charges"]  # total_charges gives the answer away
    candidate = train(tmp_path / "charges", train_df, "monthly_charges", exclude_features=exclude)
    baseline = train(tmp_path / "charges-baseline", train_df, "monthly_charges",
                     features=["age", "support_calls"], exclude_features=[])
    assert candidate[1]["task"] == "regression" and set(baseline[1]["features"]) == {
        "age", "support_calls"}
    result = evaluate(
        tmp_path, candidate, eval_path, baseline_source="uri", baseline_model_uri=baseline[0],
        thresholds={"r2": 0.8, "rmse": 15.0}, change_thresholds={"rmse": 0.5, "r2": 0.01},
    )
    assert result["blessed"], result["summary"]
    metrics = result["metrics"]
    assert set(metrics) >= {"rmse", "mae", "r2", "baseline_rmse", "baseline_r2"}
    assert metrics["r2"] > 0.8 and metrics["rmse"] < metrics["baseline_rmse"]
    assert result["roc_curve"] is None and result["confusion_matrix"] is None
    assert checks(result, "robustness")[0]["status"] == "pass"
    # The same models swapped: the candidate is worse in both directions of "better".
    swapped = evaluate(
        tmp_path, baseline, eval_path, baseline_source="uri", baseline_model_uri=candidate[0],
        change_thresholds={"rmse": 0.5, "r2": 0.01},
    )
    assert {c["subject"] for c in checks(swapped, "change", "fail")} == {"rmse", "r2"}
    # With no change thresholds, RMSE (the primary metric) may rise by 1 % of production's.
    default = evaluate(tmp_path, baseline, eval_path, baseline_source="uri", baseline_model_uri=candidate[0])
    [failed] = checks(default, "change", "fail")
    assert failed["subject"] == "rmse"
    assert failed["threshold"] == pytest.approx(0.01 * metrics["rmse"], rel=1e-6)


def test_task_and_classes_come_from_the_label_without_metadata(tmp_path, models, eval_path):
    with_metadata = evaluate(tmp_path, models["clean"], eval_path)
    model_dir, _ = models["clean"]
    inferred = evaluate(tmp_path, (model_dir, None), eval_path, label=demo.LABEL)
    assert inferred["blessing"]["details"]["task"] == "binary"
    assert inferred["blessing"]["details"]["classes"] == ["0", "1"]
    assert inferred["metrics"]["roc_auc"] == with_metadata["metrics"]["roc_auc"]
    with pytest.raises(ValueError, match="pass label="):
        evaluate(tmp_path, (model_dir, None), eval_path)


def test_data_missing_a_model_feature_names_the_column(tmp_path, models, work):
    broken = demo.corrupt(demo.generate(300, seed=5), "missing_column")
    path = str(demo.write(broken, work / "missing.parquet"))
    with pytest.raises(runtime.SchemaMismatchError, match=r"needs columns \['tenure_months'\]"):
        evaluate(tmp_path, models["clean"], path)
    no_label = str(demo.write(demo.generate(50, 5).drop(columns=[demo.LABEL]), work / "nl.csv"))
    with pytest.raises(runtime.SchemaMismatchError, match="no label column 'churned'"):
        evaluate(tmp_path, models["clean"], no_label)


def test_the_data_gates_verdict_is_recorded_beside_its_own_even_when_evaluation_fails(
    tmp_path, models, eval_path, work
):
    """check-data is cached, so evaluate-model records the data gate's verdict for it, first,
    so a failed evaluation keeps the data verdict in the run record."""
    data_verdict = Verdict("data-is-valid")
    data_verdict.add("schema", "age", "pass", "ok")
    (tmp_path / "data.json").write_text(data_verdict.to_json())
    records = tmp_path / "records"
    recording = dict(record_dir=str(records), data_verdict_path=str(tmp_path / "data.json"),
                     data_verdict_uri="gs://b/check-data/verdict")
    evaluate(tmp_path, models["clean"], eval_path, **recording)
    recorded = run_records.read_all(str(records))
    assert set(recorded) == {"data-is-valid", "model-is-blessed"}
    assert recorded["data-is-valid"]["passed"] is True
    assert recorded["data-is-valid"]["verdict_uri"] == "gs://b/check-data/verdict"

    failed = tmp_path / "failed-records"
    recording["record_dir"] = str(failed)
    broken = str(demo.write(demo.corrupt(demo.generate(300, seed=5), "missing_column"), work / "m2.parquet"))
    with pytest.raises(runtime.SchemaMismatchError):
        evaluate(tmp_path, models["clean"], broken, **recording)
    assert set(run_records.read_all(str(failed))) == {"data-is-valid"}


def test_empty_evaluation_data_is_an_error(tmp_path, models, work):
    empty = str(demo.write(demo.generate(10, 5).iloc[:0], work / "empty.parquet"))
    with pytest.raises(runtime.EmptyEvaluationDataError, match="has no rows"):
        evaluate(tmp_path, models["clean"], empty)
    unlabelled = demo.generate(10, 5)
    unlabelled[demo.LABEL] = None
    path = str(demo.write(unlabelled, work / "unlabelled.csv"))
    with pytest.raises(runtime.EmptyEvaluationDataError, match="none has a value in 'churned'"):
        evaluate(tmp_path, models["clean"], path)


@pytest.fixture(scope="module", params=["corrupt_file", "missing_feature", "absent_folder"])
def broken_baseline(request, tmp_path_factory) -> tuple[str, str]:
    """A baseline model folder that cannot be used, and the words its error must contain."""
    tmp_path = tmp_path_factory.mktemp("broken")
    folder = tmp_path / "broken-baseline"
    if request.param == "corrupt_file":
        (folder / "1").mkdir(parents=True)
        (folder / "1" / "saved_model.pb").write_bytes(b"not a protobuf" * 10)
        return str(folder), "cannot be evaluated"
    if request.param == "missing_feature":
        data = demo.generate(400, seed=3)
        data["household_income"] = data["monthly_charges"] * 50
        model_dir, _ = train(folder, data, demo.LABEL, features=["age", "household_income"],
                             exclude_features=[])
        return model_dir, "household_income"
    return str(tmp_path / "no-such-model"), "no-such-model"


def test_unusable_baseline_fails_by_default(tmp_path, models, eval_path, broken_baseline):
    uri, words = broken_baseline
    with pytest.raises(runtime.BaselineUnavailableError, match=words):
        evaluate(tmp_path, models["clean"], eval_path, baseline_source="uri",
                 baseline_model_uri=uri, change_thresholds={"roc_auc": 0.01})


def test_unusable_baseline_first_run_fallback_is_recorded(tmp_path, models, eval_path, broken_baseline):
    uri, words = broken_baseline
    result = evaluate(
        tmp_path, models["clean"], eval_path, baseline_source="uri", baseline_model_uri=uri,
        on_baseline_error="first_run", thresholds={"roc_auc": 0.7},
        change_thresholds={"roc_auc": 0.01},
    )
    [warn] = checks(result, "baseline", "warn")
    assert words in warn["reason"] and "change checks were skipped" in warn["reason"]
    assert not checks(result, "change")
    assert any("Baseline unavailable" in note for note in result["blessing"]["notes"])
    assert result["blessed"] and "1 warnings" in result["summary"]


@pytest.fixture
def kubernetes_api(tmp_path, monkeypatch):
    """A local HTTP server answering the Kubernetes API's InferenceService GET, as a cluster
    would; ``KUBECONFIG`` points the real kserve/kubernetes clients at it."""
    services = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            prefix = "/apis/serving.kserve.io/v1beta1/namespaces/"
            namespace, _, name = self.path.removeprefix(prefix).partition("/inferenceservices/")
            body = services.get((namespace, name))
            status = 200 if body else 404
            if body is None:
                body = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "reason": "NotFound", "code": 404,
                        "message": f'inferenceservices.serving.kserve.io "{name}" not found'}
            reply(self, status, json.dumps(body).encode())

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
        "users": [{"name": "test", "user": {"token": "test"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
    }))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    yield services
    server.shutdown()


def test_baseline_from_the_live_inference_service(tmp_path, models, eval_path, kubernetes_api):
    kubernetes_api[("models", "churn")] = {
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": "churn", "namespace": "models"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "tensorflow"},
                                         "storageUri": models["clean"][0]}}},
    }
    result = evaluate(
        tmp_path, models["shifted"], eval_path, baseline_source="kserve",
        kserve_service="churn", kserve_namespace="models", change_thresholds={"roc_auc": 0.02},
    )
    baseline = result["blessing"]["details"]["baseline"]
    assert baseline["storage_uri"] == models["clean"][0]
    assert not result["blessed"] and checks(result, "change", "fail")[0]["subject"] == "roc_auc"
    # No InferenceService yet: a first run, recorded.
    first = evaluate(tmp_path, models["clean"], eval_path, baseline_source="kserve",
                     kserve_service="new-service", kserve_namespace="models")
    assert first["blessed"] and "first run" in first["blessing"]["notes"][0]


def test_kserve_baseline_without_a_cluster_is_a_clear_error(tmp_path, models, eval_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    kwargs = dict(baseline_source="kserve", kserve_service="churn", kserve_namespace="models")
    with pytest.raises(runtime.BaselineUnavailableError, match="InferenceService models/churn"):
        evaluate(tmp_path, models["clean"], eval_path, **kwargs)
    result = evaluate(tmp_path, models["clean"], eval_path, on_baseline_error="first_run", **kwargs)
    assert checks(result, "baseline", "warn") and result["blessed"]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"baseline_source": "mlmd"}, "baseline_source must be one of"),
        ({"on_baseline_error": "ignore"}, "on_baseline_error must be"),
        ({"thresholds": {"rmse": 1.0}}, "'rmse' is not computed for a binary model"),
        ({"thresholds": {"roc_auc": "high"}}, r"thresholds\['roc_auc'\] must be a number"),
        ({"change_thresholds": {"auc": -0.1}}, "non-negative degradation"),
        ({"baseline_source": "uri"}, "needs baseline_model_uri"),
        ({"baseline_source": "mlflow", "registered_model_name": "m"}, "needs mlflow_tracking_uri"),
        ({"slice_columns": ["postcode"]}, r"slice_columns \['postcode'\]"),
        ({"task": "ranking"}, "task must be one of"),
    ],
)
def test_invalid_arguments_are_named(tmp_path, models, eval_path, kwargs, words, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ValueError, match=words):
        evaluate(tmp_path, models["clean"], eval_path, **kwargs)


def test_component_writes_the_artifacts_the_kubeflow_ui_reads(tmp_path, models, eval_path):
    """The KFP function itself, with kfp's real artifact classes (kfp is in the image)."""
    from kfp import dsl

    from components.evaluate_model.component import evaluate_model

    model_dir, metadata = models["clean"]

    def out(cls, name):
        return cls(name=name, uri=str(tmp_path / name), metadata={})

    metrics = out(dsl.Metrics, "metrics")
    classification = out(dsl.ClassificationMetrics, "classification_metrics")
    verdict, report = out(dsl.Artifact, "verdict"), out(dsl.Markdown, "report")
    predictions, page = out(dsl.Dataset, "predictions"), out(dsl.HTML, "html")
    blessed = evaluate_model.python_func(
        model=dsl.Model(name="model", uri=model_dir, metadata=metadata),
        eval_data=dsl.Dataset(name="eval_data", uri=eval_path, metadata={}),
        verdict=verdict, metrics=metrics, classification_metrics=classification, report=report,
        predictions=predictions, html=page,
        thresholds={"roc_auc": 0.7}, baseline_source="uri",
        baseline_model_uri=models["shifted"][0], change_thresholds={"roc_auc": 0.01},
        latency_calls=10,
    )
    assert blessed is True and verdict.metadata["blessed"] is True
    assert json.loads(Path(verdict.path).read_text())["passed"] is True
    assert "| roc_auc |" in Path(report.path).read_text()
    assert "<title>ROC curve</title>" in Path(page.path).read_text()
    assert predictions.uri.endswith(".parquet") and len(pd.read_parquet(predictions.path)) == 600
    assert metrics.metadata["roc_auc"] > 0.7 and "baseline_roc_auc" in metrics.metadata

    # ROC curve: what the Kubeflow UI plots (confidenceMetrics entries), finite, <= 200 points.
    points = classification.metadata["confidenceMetrics"]
    assert 2 < len(points) <= 200
    for point in points:
        assert set(point) == {"confidenceThreshold", "falsePositiveRate", "recall"}
        assert all(isinstance(v, float) and math.isfinite(v) for v in point.values())
    fpr = [p["falsePositiveRate"] for p in points]
    assert fpr == sorted(fpr) and fpr[0] == 0.0 and fpr[-1] == 1.0
    # Confusion matrix: annotationSpecs + rows of counts, square, all rows counted.
    matrix = classification.metadata["confusionMatrix"]
    assert matrix["annotationSpecs"] == [{"displayName": "0"}, {"displayName": "1"}]
    assert [len(r["row"]) for r in matrix["rows"]] == [2, 2]
    assert sum(sum(r["row"]) for r in matrix["rows"]) == 600
    json.dumps(classification.metadata, allow_nan=False)  # what the executor writes



def test_html_report_draws_the_candidate_over_the_baseline(tmp_path, eval_path):
    """A page tests/host/test_reports_in_browser.py opens in Chromium (report_pages)."""
    candidate = str(tmp_path / "candidate"), saved_models.build(tmp_path / "candidate")
    saved_models.build(tmp_path / "baseline", noisy=True)  # a worse production model
    result = evaluate(tmp_path, candidate, eval_path, baseline_source="uri",
                      baseline_model_uri=str(tmp_path / "baseline"), html_path=str(tmp_path / "report.html"),
                      change_thresholds={"roc_auc": 1.0})
    page = (tmp_path / "report.html").read_text()
    assert "Content-Security-Policy" in page and "<script" not in page.lower()
    assert chart_titles(page) == ["ROC curve", "Precision-recall curve", "Calibration",
                                  "Confusion matrix: candidate", "Confusion matrix: baseline"]
    roc = page[page.index("<title>ROC curve"):page.index("<title>Precision-recall")]
    assert roc.count("<polyline") == 2  # candidate and baseline
    assert f"candidate (AUC {result['metrics']['roc_auc']:.3f})" in roc
    assert f"baseline (AUC {result['metrics']['baseline_roc_auc']:.3f})" in roc
    matrix = result["confusion_matrix"]
    candidate_matrix = page[page.index("<title>Confusion matrix: candidate"):]
    for i, true in enumerate(matrix["categories"]):
        for j, predicted in enumerate(matrix["categories"]):
            assert f"true {true}, predicted {predicted}: {matrix['matrix'][i][j]} (" in candidate_matrix
    assert "<h2>Candidate vs baseline</h2>" in page and "<td>roc_auc</td>" in page

    # Regression: residuals (the scorer's output taken as a predicted monthly charge).
    regression = evaluate(tmp_path, candidate, eval_path, task="regression", label="monthly_charges",
                          html_path=str(tmp_path / "regression.html"))
    page = (tmp_path / "regression.html").read_text()
    assert chart_titles(page) == ["Residuals against predictions", "Residuals"]
    assert page.count("<circle") == regression["metrics"]["eval_rows"] == 600
