"""Kubeflow Pipelines components for continuous training of TensorFlow models.

Each component lives in ``components/<name>/``: ``component.py`` is the KFP interface (what the
compiled spec and the Kubeflow UI show), ``runtime.py`` is the plain-Python work, run inside the
runtime image. The function, its folder and the compiled task share one name.

``from components import make_demo_data`` gives the KFP component. The interfaces load on first
access: inside a running component, kfp's executor exposes only the runtime part of ``kfp.dsl``,
so importing a runtime module must not import every ``component.py``.
"""

import importlib

__all__ = [
    "compute_statistics",
    "deploy_model",
    "evaluate_model",
    "infer_schema",
    "make_demo_data",
    "record_verdict",
    "register_model",
    "resolve_baseline",
    "summarize_run",
    "train_model",
    "validate_data",
]


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module 'components' has no attribute {name!r}")
    component = getattr(importlib.import_module(f"components.{name}.component"), name)
    # Importing the subpackage bound its module to this name; the component takes it back.
    globals()[name] = component
    return component
