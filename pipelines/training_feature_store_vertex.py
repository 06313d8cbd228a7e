"""The gated training pipeline for Vertex AI Pipelines, its data from a Feast feature store
(golden: training_feature_store_vertex.yaml): one YAML document, Vertex accelerator names."""

from pipelines._training import FEATURE_STORE, VERTEX, build

training_feature_store_vertex = build(VERTEX, FEATURE_STORE)
