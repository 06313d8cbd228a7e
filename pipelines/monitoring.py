"""The monitoring pipeline for Kubeflow Pipelines (golden: monitoring.yaml): judges production
from its prediction logs and retrains when serving says so. Built in pipelines/_monitoring.py."""

from pipelines._monitoring import build
from pipelines._training import KUBEFLOW

monitoring = build(KUBEFLOW)
