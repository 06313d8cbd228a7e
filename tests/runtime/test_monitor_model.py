"""monitor_model on real prediction logs, a real MLflow server and real TFDV.

Production is registered as a training run would leave it: the demo churn scorer
(saved_models) with its training statistics, schema, the blessing and the evaluation-time
predictions (evaluate_model's) stored with the version. Traffic is served by the same model
offline and written with prediction_log.Writer, one row per request, inside the window.
"""

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import saved_models
from report_pages import chart_titles
from sklearn import metrics as skm

from components import model_io, prediction_log, tfdv_io
from components.compute_statistics import runtime as statistics
from components.evaluate_model import runtime as evaluate
from components.infer_schema import runtime as schemas
from components.make_demo_data import runtime as demo
from components.monitor_model import runtime
from components.register_model import runtime as register
from components.resolve_baseline import runtime as resolve
from components.validate_data import runtime as validate

MODEL = "monitor-churn"
END = datetime(2026, 12, 1, 6, 0, tzinfo=timezone.utc)
FEATURES = list(saved_models.FEATURES)


@pytest.fixture(scope="module")
def production(tmp_path_factory, mlflow_server):
    """Registers production (version 1, alias production) and returns its loaded model."""
    work = tmp_path_factory.mktemp("production")
    train_csv = demo.write(demo.generate(3000, seed=0), work / "train.csv")
    stats, schema = work / "statistics.pb", work / "schema.pbtxt"
    statistics.run(output_path=str(stats), data_uri=str(train_csv))
    schemas.run(statistics_path=str(stats), schema_path=str(schema), label=demo.LABEL)
    model_dir = work / "model"
    metadata = saved_models.build(model_dir)
    eval_csv = demo.write(demo.generate(1000, seed=1), work / "eval.csv")
    evaluate.run(
        model_dir=str(model_dir),
        model_metadata=metadata,
        eval_data_uri=str(eval_csv),
        verdict_path=str(work / "blessing.json"),
        report_path=str(work / "evaluation.md"),
        predictions_path=str(work / "predictions.parquet"),
        baseline_source="none",
        max_latency_p95_ms=0,
        robustness_noise=0,
    )
    register.run(
        model_dir=str(model_dir),
        model_metadata=metadata,
        model_uri=str(model_dir),
        registered_model_name=MODEL,
        mlflow_tracking_uri=mlflow_server,
        alias="production",
        lineage_paths={
            "statistics": str(stats),
            "schema": str(schema),
            "blessing": str(work / "blessing.json"),
            "predictions": str(work / "predictions.parquet"),
        },
    )
    blessing = json.loads((work / "blessing.json").read_text())
    return {"model": model_io.load(str(model_dir)), "metrics": blessing["details"]["candidate"]["metrics"]}


def serve(
    log_dir,
    production,
    frame,
    *,
    prefix,
    start=END - timedelta(hours=20),
    status=200,
    latency_ms=6.0,
    flags=None,
    model=MODEL,
    version="1",
):
    """Writes one record per row, as the model server does (missing strings sent as "")."""
    writer = prediction_log.Writer(str(log_dir))
    predictions = model_io.predict(production["model"], frame[FEATURES])
    rows = frame[FEATURES].astype(object).where(frame[FEATURES].notna(), None).to_dict(orient="records")
    for i, row in enumerate(rows):
        row = {k: ("" if v is None and saved_models.FEATURES[k] == "string" else v) for k, v in row.items()}
        row = {k: (float("nan") if v is None else v) for k, v in row.items()}
        failed = status != 200 if not callable(status) else status(i) != 200
        writer.write(
            prediction_log.record(
                request_id=f"{prefix}-{i}",
                model=model,
                version=version,
                inputs=[row],
                outputs=[] if failed else [float(predictions[i])],
                flags=[flags(i, row)] if flags and not failed else None,
                status=status(i) if callable(status) else status,
                latency_ms=latency_ms(i) if callable(latency_ms) else latency_ms,
                error="model crashed" if failed else None,
                time=start + timedelta(seconds=30 * i),
            )
        )
    writer.close()


def monitor(tmp_path, log_dir, mlflow_server, **kwargs):
    out = tmp_path / "out"
    measured = {}
    result = runtime.run(
        log_uri=str(log_dir),
        model_name=MODEL,
        window_end=END.isoformat(),
        mlflow_tracking_uri=mlflow_server,
        verdict_path=str(out / "verdict.json"),
        report_path=str(out / "report.md"),
        statistics_path=str(out / "serving_statistics.pb"),
        log_metric=measured.__setitem__,
        **kwargs,
    )
    result.json = json.loads((out / "verdict.json").read_text())
    result.report = (out / "report.md").read_text()
    result.metrics = measured
    result.statistics = out / "serving_statistics.pb"
    return result


def checks(result, name, status=None) -> dict:
    return {
        c["subject"]: c
        for c in result.json["checks"]
        if c["name"] == name and (status is None or c["status"] == status)
    }


def test_healthy_traffic_is_healthy_and_its_statistics_feed_the_data_gate(
    tmp_path, production, mlflow_server
):
    logs = tmp_path / "logs"
    serve(logs, production, demo.generate(600, seed=2), prefix="ok")
    # Drifted traffic from before the window must not count.
    serve(
        logs,
        production,
        demo.corrupt(demo.generate(300, seed=9), "drift"),
        prefix="old",
        start=END - timedelta(hours=30),
    )
    result = monitor(tmp_path, logs, mlflow_server)

    assert result.healthy and result.action == "none", result.summary
    assert result.metrics["rows"] == 600 and result.metrics["model_is_healthy"] == 1.0
    skew = checks(result, "skew")
    assert {"monthly_charges", "region", "plan", "contract_type"} <= set(skew)
    assert all(c["status"] == "pass" for c in skew.values())
    assert result.metrics["prediction_psi"] < 0.1
    # No labels: performance is an estimate, close to what was registered.
    estimate = checks(result, "performance_estimate")
    assert set(estimate) == {"roc_auc", "accuracy"}
    assert all(c["kind"] == "estimate" and c["status"] == "pass" for c in estimate.values())
    assert abs(estimate["roc_auc"]["value"] - production["metrics"]["roc_auc"]) < 0.05

    # The window's statistics are serving statistics for the data gate: no skew there either.
    stats = tfdv_io.load_statistics(str(result.statistics))
    assert stats.datasets[0].num_examples == 600
    gate = tmp_path / "gate"
    gate.mkdir()
    assert result.json["details"]["production"]["version"] == "1"
    schema_uri, statistics_uri, _ = resolve.run(
        registered_model_name=MODEL, mlflow_tracking_uri=mlflow_server
    )
    validate.run(
        statistics_path=statistics_uri,
        schema_path=schema_uri,
        anomalies_path=str(gate / "a.pbtxt"),
        verdict_path=str(gate / "v.json"),
        report_path=str(gate / "r.md"),
        html_path=str(gate / "r.html"),
        serving_statistics_path=str(result.statistics),
        mlflow_tracking_uri=mlflow_server,
        first_run_policy="pass",
    )
    data_gate = json.loads((gate / "v.json").read_text())
    gate_skew = [c for c in data_gate["checks"] if c["name"] == "skew"]
    assert len(gate_skew) >= 8 and all(c["status"] == "pass" for c in gate_skew), gate_skew


def test_rows_another_version_served_in_the_window_are_left_out(tmp_path, production, mlflow_server):
    logs = tmp_path / "logs"
    serve(logs, production, demo.generate(600, seed=2), prefix="ok")
    # A canary of version 2 that took drifted traffic in the same window, then was rolled back.
    serve(logs, production, demo.corrupt(demo.generate(300, seed=9), "drift"), prefix="canary", version="2")
    result = monitor(tmp_path, logs, mlflow_server)

    assert result.healthy, result.summary
    assert result.metrics["rows"] == 600
    assert result.json["details"]["other_versions"] == {"2": 300}
    assert any("300 rows of version 2" in note for note in result.json["notes"])


def test_shifted_inputs_name_the_skewed_features_and_the_prediction_drift(
    tmp_path, production, mlflow_server
):
    logs = tmp_path / "logs"
    serve(logs, production, demo.corrupt(demo.generate(600, seed=3), "drift"), prefix="drift")
    result = monitor(tmp_path, logs, mlflow_server)

    assert not result.healthy and result.action == "retrain"
    failed = checks(result, "skew", "fail")
    assert set(failed) == {"monthly_charges", "region"}, failed
    assert failed["region"]["kind"] == "linf" and failed["monthly_charges"]["kind"] == "jsd"
    drift = checks(result, "prediction_drift")["prediction"]
    assert drift["status"] == "fail" and drift["value"] > 0.2 and drift["kind"] == "psi"
    assert result.metrics["skew_jsd__monthly_charges"] > 0.1
    assert "## Worst skew" in result.report and "monthly_charges" in result.report.split("## Serving")[0]
    assert any("skew monthly_charges" in r for r in result.json["details"]["action_reasons"])


def test_late_labels_measure_the_accuracy_drop_on_the_labelled_rows(tmp_path, production, mlflow_server):
    logs = tmp_path / "logs"
    traffic = demo.generate(600, seed=4)
    serve(logs, production, traffic, prefix="lab")
    # Ground truth arrives later, for 500 of the 600 requests; the label no longer follows the
    # features (what the inputs alone cannot show).
    truth = demo.corrupt(traffic, "label_shift").assign(request_id=[f"lab-{i}" for i in range(600)])
    labels = tmp_path / "labels.csv"
    truth[["request_id", demo.LABEL]].head(500).to_csv(labels, index=False)
    result = monitor(tmp_path, logs, mlflow_server, labels_uri=str(labels))

    assert not result.healthy and result.action == "retrain"
    assert all(c["status"] == "pass" for c in checks(result, "skew").values())
    performance = checks(result, "performance")
    assert performance["roc_auc"]["status"] == "fail" and performance["roc_auc"]["kind"] == "measured"
    assert "500 labelled rows" in performance["roc_auc"]["reason"]
    assert performance["roc_auc"]["value"] < production["metrics"]["roc_auc"] - 0.1
    assert result.metrics["labelled_rows"] == 500
    assert checks(result, "performance_estimate") == {}  # measured, so not estimated
    assert "Measured on **500 labelled rows**" in result.report


def test_without_labels_a_covariate_shift_gets_a_performance_estimate(tmp_path, production, mlflow_server):
    logs = tmp_path / "logs"
    pool = demo.generate(6000, seed=5)
    # More frequent callers: inputs shift, the way labels follow them does not (covariate shift).
    traffic = pool[pool["support_calls"] >= 3].head(600).reset_index(drop=True)
    serve(logs, production, traffic, prefix="cov")
    result = monitor(tmp_path, logs, mlflow_server)

    assert "support_calls" in checks(result, "skew", "fail")
    estimate = checks(result, "performance_estimate")
    assert checks(result, "performance") == {}
    for metric in ("roc_auc", "accuracy"):
        assert estimate[metric]["kind"] == "estimate" and "ESTIMATE (CBPE" in estimate[metric]["reason"]
        assert f"estimated_{metric}_low" in result.metrics
    assert "**ESTIMATE**" in result.report
    # The estimate tracks the truth the monitor never saw.
    p = model_io.predict(production["model"], traffic[FEATURES])
    truth = {
        "roc_auc": skm.roc_auc_score(traffic[demo.LABEL], p),
        "accuracy": float(np.mean((p >= 0.5) == traffic[demo.LABEL])),
    }
    for metric, value in truth.items():
        assert abs(estimate[metric]["value"] - value) < 0.06, (metric, estimate[metric], value)


def test_errors_latency_and_flags_alert_without_retraining(tmp_path, production, mlflow_server):
    logs = tmp_path / "logs"

    def flags(i, row):
        unseen = {"feature": "plan", "flag": "unseen_category", "value": "student", "expected": "3 values"}
        return [unseen] if i % 5 == 0 else []

    serve(
        logs,
        production,
        demo.generate(600, seed=6),
        prefix="ops",
        flags=flags,
        status=lambda i: 500 if i % 10 == 0 else 200,
        latency_ms=lambda i: 900.0 if i % 4 == 0 else 8.0,
    )
    result = monitor(tmp_path, logs, mlflow_server)

    assert not result.healthy and result.action == "alert"
    assert checks(result, "window")["served_rows"]["status"] == "pass"  # 540 served rows
    for name, subject in (("error_rate", "requests"), ("latency_p95", "requests"), ("flagged_share", "rows")):
        assert checks(result, name)[subject]["status"] == "fail", name
    assert result.metrics["error_rate"] == pytest.approx(0.1)
    assert result.metrics["latency_p95_ms"] == pytest.approx(900.0)
    assert "plan unseen_category" in checks(result, "flagged_share")["rows"]["reason"]
    assert "plan: unseen_category" in result.report
    assert not any(c["status"] == "fail" for c in result.json["checks"] if c["name"] in runtime.MODEL_CHECKS)


def test_a_tiny_or_empty_window_is_too_small_to_judge_never_healthy(tmp_path, production, mlflow_server):
    logs = tmp_path / "logs"
    serve(logs, production, demo.generate(20, seed=7), prefix="few")
    result = monitor(tmp_path, logs, mlflow_server)
    window = checks(result, "window")["served_rows"]
    assert window["status"] == "fail" and window["kind"] == "too_small_to_judge"
    assert "too small to judge" in window["reason"] and window["value"] == 20
    assert not result.healthy and result.action != "none"
    assert checks(result, "skew") == {} and checks(result, "performance_estimate") == {}

    # A model nobody logged for: no rows, the same verdict, and the models that do have logs.
    empty = runtime.run(
        log_uri=str(logs),
        model_name="churn-typo",
        registered_model_name=MODEL,
        window_end=END.isoformat(),
        mlflow_tracking_uri=mlflow_server,
        verdict_path=str(tmp_path / "e.json"),
        report_path=str(tmp_path / "e.md"),
        statistics_path=str(tmp_path / "e.pb"),
    )
    assert not empty.healthy and "too small to judge" in empty.summary and MODEL in empty.summary
    assert tfdv_io.load_statistics(str(tmp_path / "e.pb")).datasets[0].num_examples == 0

    with pytest.raises(runtime.LogsNotFoundError, match="does not exist"):
        runtime.run(
            log_uri=str(tmp_path / "nowhere"),
            model_name=MODEL,
            mlflow_tracking_uri=mlflow_server,
            verdict_path=str(tmp_path / "n.json"),
            report_path=str(tmp_path / "n.md"),
            statistics_path=str(tmp_path / "n.pb"),
        )


def test_html_report_draws_the_skewed_features_and_the_predictions(tmp_path, production, mlflow_server):
    """A page tests/host/test_reports_in_browser.py opens in Chromium (report_pages)."""
    logs = tmp_path / "logs"
    serve(logs, production, demo.corrupt(demo.generate(600, seed=3), "drift"), prefix="drift")
    result = monitor(tmp_path, logs, mlflow_server, html_path=str(tmp_path / "out" / "report.html"))
    page = (tmp_path / "out" / "report.html").read_text()
    assert result.action == "retrain"
    assert "Content-Security-Policy" in page and "<script" not in page.lower()
    assert "<b>Action: retrain</b>" in page and page.index("Action: retrain") < page.index("<svg")
    titles = chart_titles(page)
    assert titles[:2] == ["Predictions", "Performance"]
    assert sorted(titles[2:]) == ["monthly_charges: distribution", "region: top values"]
    charges = page[page.index("<title>monthly_charges: distribution"):]
    charges = charges[:charges.index("</figure>")]
    assert ">serving</text>" in charges and ">training</text>" in charges
    assert "no longer looks like training" in charges  # the skew check's sentence as caption
    assert ">ESTIMATE (CBPE)</text>" in page  # no labels: the performance shown is an estimate

    every = monitor(tmp_path, logs, mlflow_server, html_path=str(tmp_path / "all.html"),
                    plot_all_features=True)
    titles = chart_titles((tmp_path / "all.html").read_text())
    assert {t.split(":")[0] for t in titles[2:]} == set(checks(every, "skew"))
