"""The data-validation components' compiled interfaces, as pipelines see them (host SDK only)."""

import yaml
from kfp import compiler, dsl

from components import images
from components.compute_statistics.component import compute_statistics
from components.infer_schema.component import infer_schema
from components.validate_data.component import validate_data


def io(component):
    spec = component.component_spec
    return spec.inputs or {}, spec.outputs or {}


def test_compute_statistics_interface():
    inputs, outputs = io(compute_statistics)
    assert outputs["statistics"].type == "system.Artifact@0.0.1"
    assert inputs["data"].type == "system.Dataset@0.0.1" and inputs["data"].optional
    assert inputs["data_uri"].default == "" and inputs["engine"].default == "auto"
    assert inputs["beam_pipeline_options"].type == "List" and inputs["beam_pipeline_options"].default == []
    assert inputs["in_memory_max_mb"].type == "Integer"
    assert compute_statistics.component_spec.implementation.container.image == images.RUNTIME


def test_infer_schema_interface():
    inputs, outputs = io(infer_schema)
    assert outputs["schema"].type == "system.Artifact@0.0.1"
    assert inputs["statistics"].type == "system.Artifact@0.0.1" and not inputs["statistics"].optional
    assert inputs["label"].type == "String" and inputs["label"].default is None  # required
    assert inputs["curated_schema"].optional and inputs["curated_schema_uri"].default == ""
    for name in ("categorical_drift_threshold", "numeric_drift_threshold", "categorical_skew_threshold",
                 "numeric_skew_threshold"):
        assert inputs[name].type == "Float", name


def test_validate_data_returns_the_gate_and_every_report():
    inputs, outputs = io(validate_data)
    assert outputs["Output"].type == "Boolean"
    assert {name: spec.type for name, spec in outputs.items() if name != "Output"} == {
        "anomalies": "system.Artifact@0.0.1",
        "verdict": "system.Artifact@0.0.1",
        "drift_metrics": "system.Metrics@0.0.1",
        "report": "system.Markdown@0.0.1",
        "html": "system.HTML@0.0.1",
    }
    for name in ("previous_statistics", "serving_statistics"):
        assert inputs[name].optional and inputs[f"{name}_uri"].default == ""
    assert inputs["first_run_policy"].default == "warn"
    assert inputs["fail_on_anomalies"].type == "Boolean" and inputs["fail_on_anomalies"].default is False


def test_components_chain_into_a_data_gate(tmp_path):
    @dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
    def train(statistics: dsl.Input[dsl.Artifact]):
        """Stands in for training.

        Args:
            statistics: Statistics of the validated data.
        """

    @dsl.pipeline(name="data-gate")
    def data_gate(data_uri: str, previous_statistics_uri: str = ""):
        stats = compute_statistics(data_uri=data_uri, beam_pipeline_options=["--runner=DirectRunner"])
        schema = infer_schema(statistics=stats.outputs["statistics"], label="churned")
        valid = validate_data(
            statistics=stats.outputs["statistics"],
            schema=schema.outputs["schema"],
            previous_statistics_uri=previous_statistics_uri,
            first_run_policy="pass",
        )
        with dsl.If(valid.outputs["Output"] == True, name="data-is-valid"):  # noqa: E712 - kfp condition
            train(statistics=stats.outputs["statistics"])

    path = tmp_path / "gate.yaml"
    compiler.Compiler().compile(data_gate, str(path))
    spec = yaml.safe_load(path.read_text())
    tasks = spec["root"]["dag"]["tasks"]
    assert {"compute-statistics", "infer-schema", "validate-data"} <= set(tasks)
    gate = next(t for t in tasks.values() if t["taskInfo"]["name"] == "data-is-valid")
    assert gate["triggerPolicy"]["condition"] == (
        "inputs.parameter_values['pipelinechannel--validate-data-Output'] == true"
    )
    schema_inputs = tasks["infer-schema"]["inputs"]["artifacts"]["statistics"]["taskOutputArtifact"]
    assert schema_inputs == {"outputArtifactKey": "statistics", "producerTask": "compute-statistics"}
