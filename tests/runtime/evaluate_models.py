"""Special SavedModels for the evaluate_model tests, which train_model cannot produce.

Every model follows the serving contract exactly: a ``tf.Module`` whose ``serving_default``
takes one ``[None]`` tensor per feature by name and returns ``{"predictions": ...}``, saved to
``<dir>/1``, plus the ``model.metadata`` dict train_model would write.

- ``constant``: ignores its inputs (a degenerate model).
- ``fragile``: flips its answer with tiny input changes (unstable under noise).
- ``slowed``: a trained model re-exported with real extra computation per request (N chained
  256x256 matrix products on its output): the same predictions, too slow to serve.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NUMERIC = ("age", "tenure_months", "monthly_charges", "total_charges", "support_calls")
CATEGORICAL = ("plan", "region", "payment_method")
INT_CODED = ("contract_type",)


def _kind(name: str) -> str:
    return "int" if name in INT_CODED else "string" if name in CATEGORICAL else "float"


def _metadata(task, label, features, classes) -> dict:
    meta = {
        "framework": "tensorflow",
        "task": task,
        "label": label,
        "features": {name: _kind(name) for name in features},
        "serving_version": 1,
        "data_hash": "test",
        "data_uri": "memory://test",
    }
    if classes is not None:
        meta["classes"] = list(classes)
    return meta


def _save(module, model_dir) -> None:
    import tensorflow as tf

    export = Path(model_dir) / "1"
    export.parent.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(module, str(export), signatures={"serving_default": module.serve})


def _specs(features):
    import tensorflow as tf

    dtypes = {"float": tf.float32, "int": tf.int64, "string": tf.string}
    return {name: tf.TensorSpec([None], dtypes[_kind(name)], name=name) for name in features}


def slowed(model_dir, trained_dir, *, matmuls: int) -> None:
    """Re-exports the trained model at ``trained_dir`` with extra work per request: after the
    original signature, ``matmuls`` chained 256x256 matrix products that depend on its output
    (so nothing can be folded away). Predictions are unchanged; only serving gets slower."""
    import tensorflow as tf

    from components import model_io

    loaded = tf.saved_model.load(model_io.version_dir(str(trained_dir)))
    specs = dict(loaded.signatures[model_io.SIGNATURE].structured_input_signature[1])

    class Slow(tf.Module):
        def __init__(self):
            super().__init__()
            self.trained = loaded
            self.chain = tf.Variable(np.eye(256, dtype=np.float32) * 0.5)

        @tf.function(input_signature=[specs])
        def serve(self, inputs):
            out = self.trained.signatures[model_io.SIGNATURE](**inputs)[model_io.OUTPUT_KEY]
            m = self.chain + tf.reduce_mean(out) * 1e-6

            def body(i, a):
                return i + 1, tf.tanh(tf.matmul(a, m))

            _, a = tf.while_loop(lambda i, a: i < matmuls, body, [tf.constant(0), m])
            return {"predictions": out + 1e-12 * tf.reduce_sum(a)}

    _save(Slow(), model_dir)


def constant(model_dir, *, value: float = 0.3, label: str = "churned") -> dict:
    """A binary model that answers ``value`` whatever the input."""
    import tensorflow as tf

    features = NUMERIC + CATEGORICAL + INT_CODED

    class Constant(tf.Module):
        @tf.function(input_signature=[_specs(features)])
        def serve(self, inputs):
            return {"predictions": tf.fill(tf.shape(inputs["age"]), np.float32(value))}

    _save(Constant(), model_dir)
    return _metadata("binary", label, features, [0, 1])


def fragile(model_dir, *, label: str = "churned") -> dict:
    """A binary model whose answer flips with tiny changes of ``monthly_charges`` (it keyed
    on the exact amount, as an overfitted model does): unstable under input noise."""
    import tensorflow as tf

    features = NUMERIC + CATEGORICAL + INT_CODED

    class Fragile(tf.Module):
        @tf.function(input_signature=[_specs(features)])
        def serve(self, inputs):
            charges = tf.where(
                tf.math.is_nan(inputs["monthly_charges"]), 0.0, inputs["monthly_charges"]
            )
            return {"predictions": tf.sigmoid(20.0 * tf.sin(3.0 * charges))}

    _save(Fragile(), model_dir)
    return _metadata("binary", label, features, [0, 1])
