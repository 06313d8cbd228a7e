"""evaluate_model's compiled interface: the gate output and the artifacts the Kubeflow UI shows.

The metric values themselves are checked in the image (tests/runtime/test_evaluate_model.py,
which also feeds the runtime's ROC curve and confusion matrix through kfp's real
ClassificationMetrics); here, on the host, the compiled spec and the kfp methods the component
body calls.
"""

import inspect

import yaml
from kfp import compiler, dsl

from components.evaluate_model.component import evaluate_model


def compiled(tmp_path) -> dict:
    path = tmp_path / "evaluate_model.yaml"
    compiler.Compiler().compile(evaluate_model, str(path))
    return yaml.safe_load(path.read_text())["components"]["comp-evaluate-model"]


def test_outputs_are_the_gate_and_typed_artifacts(tmp_path):
    spec = compiled(tmp_path)
    outputs = spec["outputDefinitions"]
    assert outputs["parameters"]["Output"]["parameterType"] == "BOOLEAN"
    titles = {name: a["artifactType"]["schemaTitle"] for name, a in outputs["artifacts"].items()}
    assert titles == {
        "verdict": "system.Artifact",
        "metrics": "system.Metrics",
        "classification_metrics": "system.ClassificationMetrics",
        "report": "system.Markdown",
        "predictions": "system.Dataset",
        "html": "system.HTML",
    }


def test_inputs_match_the_contract(tmp_path):
    inputs = compiled(tmp_path)["inputDefinitions"]
    artifacts = inputs["artifacts"]
    assert artifacts["model"]["artifactType"]["schemaTitle"] == "system.Model"
    assert "isOptional" not in artifacts["model"]
    assert artifacts["eval_data"]["isOptional"] is True  # or eval_data_uri
    params = inputs["parameters"]
    defaults = {name: p.get("defaultValue") for name, p in params.items()}
    assert defaults["baseline_source"] == "mlflow"
    assert defaults["baseline_alias"] == "production"
    assert defaults["on_baseline_error"] == "fail"
    assert defaults["task"] == "auto"
    assert defaults["thresholds"] == {} and defaults["change_thresholds"] == {}
    assert defaults["slice_columns"] == []
    assert params["thresholds"]["parameterType"] == "STRUCT"
    assert params["slice_columns"]["parameterType"] == "LIST"
    assert params["max_latency_p95_ms"]["parameterType"] == "NUMBER_DOUBLE"


def test_body_calls_classification_metrics_as_kfp_defines_it():
    """The body passes the runtime's plain lists to these methods, by position."""
    roc = inspect.signature(dsl.ClassificationMetrics.log_roc_curve).parameters
    assert list(roc) == ["self", "fpr", "tpr", "threshold"]
    matrix = inspect.signature(dsl.ClassificationMetrics.log_confusion_matrix).parameters
    assert list(matrix) == ["self", "categories", "matrix"]
    body = inspect.getsource(evaluate_model.python_func)
    assert 'log_roc_curve(roc["fpr"], roc["tpr"], roc["thresholds"])' in body
    assert 'log_confusion_matrix(matrix["categories"], matrix["matrix"])' in body


def test_kfp_writes_the_structure_the_ui_reads_from_such_lists():
    """Sample lists in the runtime's format give confidenceMetrics and confusionMatrix."""
    artifact = dsl.ClassificationMetrics(name="classification_metrics", uri="", metadata={})
    artifact.log_roc_curve([0.0, 0.2, 1.0], [0.0, 0.7, 1.0], [1.0, 0.5, 0.0])
    artifact.log_confusion_matrix(["0", "1"], [[50, 5], [10, 35]])
    assert artifact.metadata["confidenceMetrics"][1] == {
        "confidenceThreshold": 0.5, "falsePositiveRate": 0.2, "recall": 0.7,
    }
    assert artifact.metadata["confusionMatrix"] == {
        "annotationSpecs": [{"displayName": "0"}, {"displayName": "1"}],
        "rows": [{"row": [50, 5]}, {"row": [10, 35]}],
    }
