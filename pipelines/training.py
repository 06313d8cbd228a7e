"""The gated continuous-training pipeline for Kubeflow Pipelines (golden: training.yaml)."""

from pipelines._training import KUBEFLOW, build

training = build(KUBEFLOW)
