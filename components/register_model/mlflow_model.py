"""The registered model as an MLflow model: a pyfunc over our SavedModel, in the TF-Serving layout.

One folder serves both worlds:

    MLmodel, input_example.json, serving_input_example.json, requirements.txt, python_env.yaml, ...
    1/saved_model.pb, 1/variables/, 1/assets.extra/      (the SavedModel, as train_model wrote it)

KServe's TF Serving runtime and our model server read ``<storageUri>/<version>/saved_model.pb``
and ignore the rest; ``mlflow.pyfunc.load_model("models:/NAME@ALIAS")`` reads ``MLmodel`` and
calls ``_load_pyfunc`` here, which predicts through ``model_io.predict``, the serving path's own
code (same tensors, same missing-value markers, same outputs). MLflow's Keras/TensorFlow flavors
would store the model under ``data/`` instead, which TF Serving cannot find.

This module is named in every registered version's ``MLmodel`` (``loader_module``): loading
needs this package (the runtime image has it) and TensorFlow. Keep the name.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

import pandas as pd

from components import model_io

logger = logging.getLogger(__name__)

EXAMPLE_ROWS = 5
_EMPTY = {"float32": 0.0, "int64": 0, "string": ""}  # a typed row when no real rows are given


class SavedModelPyfunc:
    """What MLflow's pyfunc calls: ``predict(DataFrame)`` -> the ``predictions`` array."""

    def __init__(self, path: str):
        self._loaded = model_io.load(path)

    def predict(self, model_input, params=None):
        return model_io.predict(self._loaded, pd.DataFrame(model_input))


def _load_pyfunc(path: str) -> SavedModelPyfunc:
    """MLflow's loader hook: ``path`` is the model folder (``MLmodel`` and ``<version>/``)."""
    return SavedModelPyfunc(path)


def example_and_signature(model_dir: str, rows: pd.DataFrame | None = None):
    """An input example and a signature from the serving signature's inputs.

    The example is up to ``EXAMPLE_ROWS`` of ``rows`` (held-out rows as training read them;
    complete rows first), restricted to the features the model serves, so the signature's
    column types are those of data read the way training reads it (integers stay ``long``:
    MLflow refuses an int64 column for a ``double`` one). Without rows, one row of typed
    defaults. The output schema comes from the model's own predictions on the example.

    Raises:
        model_io.FeatureMismatchError: ``rows`` lack a feature the model serves.
    """
    from mlflow.models import infer_signature

    loaded = model_io.load(model_dir)
    inputs = {name: dtype.name for name, dtype in model_io.serving_inputs(loaded).items()}
    if rows is not None and len(rows):
        missing = sorted(set(inputs) - set(rows.columns))
        if missing:
            raise model_io.FeatureMismatchError(
                f"the example rows lack features {missing} the model serves"
            )
        rows = rows[list(inputs)]
        complete = rows.dropna()
        example = (complete if len(complete) else rows).head(EXAMPLE_ROWS).reset_index(drop=True)
    else:
        example = pd.DataFrame({name: [_EMPTY[dtype]] for name, dtype in inputs.items()})
    return example, infer_signature(example, model_io.predict(loaded, example))


def save_model(path, mlflow_model, *, model_dir: str, signature, input_example, pip_requirements):
    """The flavor hook ``mlflow.models.Model.log`` calls: the pyfunc files, then the SavedModel's
    version folders at the root."""
    import mlflow

    mlflow.pyfunc.save_model(
        path,
        loader_module=__name__,
        mlflow_model=mlflow_model,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
    )
    versions = [p for p in Path(model_dir).iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()]
    for version in versions:
        shutil.copytree(version, os.path.join(path, version.name))
    mlflow_model.model_size_bytes = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
    mlflow_model.save(os.path.join(path, "MLmodel"))


def log(model_dir: str, name: str, *, rows: pd.DataFrame | None = None, step: int = 0, tags=None):
    """Logs ``model_dir`` as an MLflow 3 LoggedModel of the active run; returns its ModelInfo
    (``model_uri`` is ``models:/m-<id>``)."""
    import numpy
    import tensorflow
    from mlflow.models import Model

    example, signature = example_and_signature(model_dir, rows)
    # Pinned to what registered it; MLflow adds itself. Without a list MLflow would load the
    # model in a subprocess to guess them.
    requirements = [
        f"tensorflow=={tensorflow.__version__}", f"pandas=={pd.__version__}", f"numpy=={numpy.__version__}",
    ]
    return Model.log(
        artifact_path=None,  # deprecated, yet still a required argument in MLflow 3.17
        name=name,
        flavor=sys.modules[__name__],
        flavor_name="python_function",
        model_dir=model_dir,
        signature=signature,
        input_example=example,
        pip_requirements=requirements,
        step=step,
        tags=tags,
    )
