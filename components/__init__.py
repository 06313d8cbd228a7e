"""Kubeflow Pipelines components for continuous training of TensorFlow models.

Each component lives in ``components/<name>/``: ``component.py`` is the KFP interface (what the
compiled spec and the Kubeflow UI show), ``runtime.py`` is the plain-Python work, run inside the
runtime image. The function, its folder and the compiled task share one name; each is also
compiled to ``components/<name>/component.yaml`` (``python compile.py``), which
``kfp.components.load_component_from_file`` loads without this package.

``from components import make_demo_data`` gives the KFP component; ``images.use(registry,
tag=...)`` points them all at your registry in one call. Inside a running component,
kfp's executor exposes only the runtime part of ``kfp.dsl``; there the interfaces are not
loaded, and runtime modules import as plain Python.
"""

try:
    from kfp import dsl as _dsl
except ImportError:  # runtime modules used without kfp
    _dsl = None

__all__ = [
    "build_training_set",
    "check_data",
    "compute_statistics",
    "deploy_model",
    "evaluate_model",
    "fingerprint_data",
    "infer_schema",
    "make_demo_data",
    "materialize_features",
    "monitor_model",
    "record_verdict",
    "register_model",
    "resolve_baseline",
    "resolve_inputs",
    "summarize_run",
    "train_model",
    "train_model_on_kubeflow",
    "train_model_on_vertex",
    "upload_vertex_model",
    "validate_data",
]

if _dsl is not None and hasattr(_dsl, "component"):
    from components.build_training_set.component import build_training_set
    from components.check_data.component import check_data
    from components.compute_statistics.component import compute_statistics
    from components.deploy_model.component import deploy_model
    from components.evaluate_model.component import evaluate_model
    from components.fingerprint_data.component import fingerprint_data
    from components.infer_schema.component import infer_schema
    from components.make_demo_data.component import make_demo_data
    from components.materialize_features.component import materialize_features
    from components.monitor_model.component import monitor_model
    from components.record_verdict.component import record_verdict
    from components.register_model.component import register_model
    from components.resolve_baseline.component import resolve_baseline
    from components.resolve_inputs.component import resolve_inputs
    from components.summarize_run.component import summarize_run
    from components.train_model.component import train_model
    from components.train_model_on_kubeflow.component import train_model_on_kubeflow
    from components.train_model_on_vertex.component import train_model_on_vertex
    from components.upload_vertex_model.component import upload_vertex_model
    from components.validate_data.component import validate_data
