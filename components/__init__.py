"""Kubeflow Pipelines components for continuous training of TensorFlow models.

Each component lives in ``components/<name>/``: ``component.py`` is the KFP interface (what the
compiled spec and the Kubeflow UI show), ``runtime.py`` is the plain-Python work, run inside the
runtime image. The function, its folder and the compiled task share one name.
"""

from components.make_demo_data.component import make_demo_data

__all__ = [
    "make_demo_data",
]
