"""The gated continuous-training pipeline for Vertex AI Pipelines (golden: training_vertex.yaml):
a single YAML document, Vertex accelerator names, no Kubernetes-only settings."""

from pipelines._training import VERTEX, build

training_vertex = build(VERTEX)
