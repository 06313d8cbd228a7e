"""The gated training pipeline for Kubeflow Pipelines, its data from a Feast feature store:
build_training_set, then the training pipeline's steps (golden: training_feature_store.yaml)."""

from pipelines._training import FEATURE_STORE, KUBEFLOW, build

training_feature_store = build(KUBEFLOW, FEATURE_STORE)
