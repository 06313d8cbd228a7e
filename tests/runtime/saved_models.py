"""Small SavedModels that follow the train_model contract, for serving and deployment tests.

A logistic scorer over the demo churn features, written as a ``tf.Module`` with a
``serving_default`` signature (one ``[None]`` tensor per feature by name -> ``{"predictions":
P(churn)}``), saved to ``<dir>/1``. ``weight`` changes the predictions (a "new" model);
``noisy=True`` adds random noise at serving time, so served and offline predictions disagree
(a model that is not deterministic, e.g. dropout left on).
"""

from __future__ import annotations

from pathlib import Path

FEATURES = {
    "age": "float",
    "tenure_months": "float",
    "monthly_charges": "float",
    "total_charges": "float",
    "support_calls": "float",
    "plan": "string",
    "region": "string",
    "payment_method": "string",
    "contract_type": "int",
}


def build(model_dir: str | Path, *, weight: float = 1.0, noisy: bool = False) -> dict:
    """Writes the model to ``<model_dir>/1`` and returns its ``model.metadata``."""
    import tensorflow as tf

    dtypes = {"float": tf.float32, "int": tf.int64, "string": tf.string}
    specs = {name: tf.TensorSpec([None], dtypes[kind], name=name) for name, kind in FEATURES.items()}

    class Scorer(tf.Module):
        def __init__(self):
            super().__init__()
            self.weight = tf.Variable(weight, dtype=tf.float32)

        @tf.function(input_signature=[specs])
        def serve(self, features):
            def num(name, center, scale):
                x = features[name]
                return tf.where(tf.math.is_nan(x), tf.zeros_like(x), (x - center) / scale)

            logit = (
                -1.0
                + 0.8 * num("support_calls", 1.5, 1.0)
                - 0.6 * num("tenure_months", 30.0, 20.0)
                + 0.3 * num("monthly_charges", 60.0, 25.0)
                - 0.2 * num("age", 45.0, 14.0)
                + 0.1 * num("total_charges", 2000.0, 2000.0)
                - 0.9 * tf.cast(tf.maximum(features["contract_type"], 0), tf.float32)
                + 0.7 * tf.cast(tf.equal(features["payment_method"], "voucher"), tf.float32)
                + 0.2 * tf.cast(tf.equal(features["plan"], "basic"), tf.float32)
                + 0.05 * tf.cast(tf.equal(features["region"], "north"), tf.float32)
            )
            if noisy:
                logit += tf.random.uniform(tf.shape(logit), -0.5, 0.5)
            return {"predictions": tf.sigmoid(self.weight * logit)}

    module = Scorer()
    export = Path(model_dir) / "1"
    export.parent.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(module, str(export), signatures={"serving_default": module.serve})
    return {
        "framework": "tensorflow",
        "task": "binary",
        "label": "churned",
        "features": dict(FEATURES),
        "classes": [0, 1],
        "serving_version": 1,
        "data_hash": "0" * 64,
        "data_uri": "memory://demo",
    }
