"""Typed artifacts beyond kfp's ``system.*`` ones, named as Google Cloud Pipeline Components
names them, so a GCPC component that takes one (``ModelDeployOp(model=...)``,
``ModelBatchPredictOp``) accepts ours.

A component that outputs one of these imports it from here: kfp then writes the import into the
compiled component, and its executor (in the runtime image) finds the class there.
"""

from kfp import dsl


class VertexModel(dsl.Artifact):
    """A Vertex AI Model Registry version, as GCPC's ``google.VertexModel``.

    ``uri`` is ``https://<location>-aiplatform.googleapis.com/v1/<resourceName>``;
    ``metadata["resourceName"]`` is ``projects/<p>/locations/<l>/models/<id>@<version id>``.
    """

    schema_title = "google.VertexModel"
    schema_version = "0.0.1"
