"""The monitoring pipeline for Vertex AI Pipelines (golden: monitoring_vertex.yaml): a single
YAML document, Vertex accelerator names, no Kubernetes-only settings."""

from pipelines._monitoring import build
from pipelines._training import VERTEX

monitoring_vertex = build(VERTEX)
