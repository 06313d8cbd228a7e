"""Host-side operations on pipelines: run locally, submit to Kubeflow or Vertex AI, schedule.

Runs in the host SDK environment (kfp, google-cloud-aiplatform, docker-py); never imports the
runtime stack.
"""
