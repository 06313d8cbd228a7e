"""SavedModels for the evaluate_model tests that train_model cannot produce on purpose.

Every model follows the serving contract exactly: a ``tf.Module`` whose ``serving_default``
takes one ``[None]`` tensor per feature by name and returns ``{"predictions": ...}``, saved to
``<dir>/1``, plus the ``model.metadata`` dict train_model would write.

- ``linear``: a linear / logistic / softmax model fitted with scikit-learn on demo data
  (standardised numeric features, one-hot string features), for any task and feature set.
- ``constant``: ignores its inputs (a degenerate model).
- ``fragile``: flips its answer with tiny input changes (unstable under noise).
- ``linear(..., slow_matmuls=N)``: the same model whose signature also runs N chained 256x256
  matrix products that depend on the input, i.e. real extra computation per request (a model
  too slow to serve).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

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


def _design(df: pd.DataFrame, features, stats=None):
    """Numeric columns standardised (NaN -> mean), categories one-hot on the training vocab."""
    stats = stats or {}
    columns = []
    for name in features:
        if _kind(name) == "string":
            vocab = stats.get(name) or sorted(df[name].dropna().astype(str).unique())
            stats[name] = vocab
            values = df[name].astype(str)
            columns += [(values == v).to_numpy(np.float64) for v in vocab]
        else:
            values = pd.to_numeric(df[name], errors="coerce").to_numpy(np.float64)
            if name not in stats:
                stats[name] = (float(np.nanmean(values)), float(np.nanstd(values)) or 1.0)
            mean, std = stats[name]
            columns.append((np.where(np.isnan(values), mean, values) - mean) / std)
    return np.stack(columns, axis=1), stats


def _save(module, model_dir) -> None:
    import tensorflow as tf

    export = Path(model_dir) / "1"
    export.parent.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(module, str(export), signatures={"serving_default": module.serve})


def _specs(features):
    import tensorflow as tf

    dtypes = {"float": tf.float32, "int": tf.int64, "string": tf.string}
    return {name: tf.TensorSpec([None], dtypes[_kind(name)], name=name) for name in features}


def _tf_design(inputs, features, stats):
    import tensorflow as tf

    columns = []
    for name in features:
        x = inputs[name]
        if _kind(name) == "string":
            columns += [tf.cast(tf.equal(x, v), tf.float32) for v in stats[name]]
        else:
            mean, std = stats[name]
            x = tf.cast(x, tf.float32)
            x = tf.where(tf.math.is_nan(x), tf.fill(tf.shape(x), np.float32(mean)), x)
            columns.append((x - mean) / std)
    return tf.stack(columns, axis=1)


def linear(
    model_dir, df: pd.DataFrame, *, label: str, task: str, features=NUMERIC + CATEGORICAL + INT_CODED,
    slow_matmuls: int = 0,
) -> dict:
    """Fits a linear model with scikit-learn and exports it; returns the model metadata."""
    import tensorflow as tf
    from sklearn.linear_model import LinearRegression, LogisticRegression

    features = tuple(features)
    x, stats = _design(df, features)
    y = df[label]
    classes = None
    if task == "regression":
        fitted = LinearRegression().fit(x, y.to_numpy(np.float64))
        weights, bias = fitted.coef_[:, None], np.atleast_1d(fitted.intercept_)
    else:
        fitted = LogisticRegression(max_iter=2000).fit(x, y)
        classes = [c.item() if hasattr(c, "item") else c for c in fitted.classes_]
        weights, bias = fitted.coef_.T, fitted.intercept_
    weights = weights.astype(np.float32)
    bias = bias.astype(np.float32)

    class Linear(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(weights)
            self.b = tf.Variable(bias)
            self.chain = tf.Variable(np.eye(256, dtype=np.float32) * 0.5)

        @tf.function(input_signature=[_specs(features)])
        def serve(self, inputs):
            logits = tf.matmul(_tf_design(inputs, features, stats), self.w) + self.b
            if slow_matmuls:
                # Real work that depends on the request, so nothing can be folded away.
                seed = tf.reduce_mean(logits) * 1e-6
                m = self.chain + seed

                def body(i, a):
                    return i + 1, tf.tanh(tf.matmul(a, m))

                _, a = tf.while_loop(lambda i, a: i < slow_matmuls, body, [tf.constant(0), m])
                logits = logits + 1e-12 * tf.reduce_sum(a)
            if task == "regression":
                return {"predictions": logits[:, 0]}
            if task == "binary":
                return {"predictions": tf.sigmoid(logits[:, 0])}
            return {"predictions": tf.nn.softmax(logits, axis=1)}

    _save(Linear(), model_dir)
    return _metadata(task, label, features, classes)


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
