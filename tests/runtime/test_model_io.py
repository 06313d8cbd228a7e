"""components.model_io: reading data, finding and feeding models the way serving does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from components import model_io

SPECS = {
    "x": tf.TensorSpec([None], tf.float32, name="x"),
    "c": tf.TensorSpec([None], tf.string, name="c"),
    "k": tf.TensorSpec([None], tf.int64, name="k"),
}


class Echo(tf.Module):
    """predictions = x (NaN -> -1000) + 10 * (c == "a") + 100 * (c == "") + 1000 * k."""

    def __init__(self, offset: float = 0.0):
        super().__init__()
        self.offset = tf.Variable(offset)

    @tf.function(input_signature=[SPECS])
    def serve(self, features):
        x = tf.where(tf.math.is_nan(features["x"]), -1000.0, features["x"])
        c = features["c"]
        score = x + 10.0 * tf.cast(c == "a", tf.float32) + 100.0 * tf.cast(c == "", tf.float32)
        return {"predictions": score + 1000.0 * tf.cast(features["k"], tf.float32) + self.offset}


def save(path, offset: float = 0.0) -> None:
    module = Echo(offset)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    save(root / "1", offset=0.0)
    save(root / "3", offset=0.5)  # the highest version wins, not the newest or the first
    (root / "2").mkdir()  # a numeric folder without a SavedModel is skipped
    (root / "notes").mkdir()
    return root


def test_load_picks_the_highest_version(models):
    assert model_io.version_dir(str(models)) == f"{models}/3"
    assert model_io.version_dir(str(models / "1")) == f"{models}/1"  # a version folder itself
    loaded = model_io.load(str(models))
    assert model_io.serving_inputs(loaded) == {"x": tf.float32, "c": tf.string, "k": tf.int64}


def test_no_version_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(model_io.ModelNotFoundError, match="TF-Serving layout"):
        model_io.load(str(tmp_path / "empty"))
    with pytest.raises(model_io.ModelNotFoundError, match="cannot be listed"):
        model_io.load(str(tmp_path / "absent"))


def test_predict_converts_raw_columns_and_missing_values(models):
    df = pd.DataFrame(
        {
            "x": [1.5, None, "2", "oops"],  # numbers, missing, numeric text, garbage -> NaN
            "c": ["a", None, np.nan, 7],  # missing -> "", numbers -> text
            "k": [1.0, np.nan, 2, 0],  # missing int -> MISSING_INT
            "ignored": ["z", "z", "z", "z"],
        }
    )
    expected = np.array([1.5 + 10 + 1000, -1000 + 100 - 1000, 2 + 100 + 2000, -1000], np.float32)
    np.testing.assert_allclose(model_io.predict(str(models), df), expected + 0.5)
    loaded = model_io.load(str(models / "1"))
    np.testing.assert_allclose(model_io.predict(loaded, df, batch_size=3), expected)  # batched


def test_request_values_convert_as_a_frame_of_them_does(models):
    """A request's values (lists) skip pandas when they are plain JSON values; plain or not,
    the arrays and predictions equal those of a DataFrame of the same rows."""
    loaded = model_io.load(str(models))
    inputs = model_io.serving_inputs(loaded)
    plain = [{"x": 1.5, "c": "a", "k": 2}, {"x": None, "c": None, "k": None}, {"x": 3, "c": "", "k": -1}]
    mixed = [{"x": "2", "c": 7, "k": 2.0}, {"x": "oops", "c": float("nan"), "k": True}, {"x": True}]
    for rows in (plain, mixed, plain + mixed):
        columns = {name: [row.get(name) for row in rows] for name in inputs}
        frame = pd.DataFrame.from_records(rows)
        from_lists = model_io.feature_arrays(columns, inputs)
        from_frame = model_io.feature_arrays(frame, inputs)
        for name in inputs:
            assert from_lists[name].dtype == from_frame[name].dtype
            np.testing.assert_array_equal(from_lists[name], from_frame[name])
        np.testing.assert_array_equal(model_io.predict(loaded, columns), model_io.predict(loaded, frame))


def test_predict_answers_as_the_signature_called_by_keyword(models):
    """predict calls the signature's flat function with the binding worked out once."""
    loaded = model_io.load(str(models))
    frame = pd.DataFrame({"x": [1.5, 2.0, np.nan], "c": ["a", "b", ""], "k": [1, 0, 3]})
    tensors = model_io.to_tensors(frame, model_io.serving_inputs(loaded))

    expected = loaded.signatures[model_io.SIGNATURE](**tensors)[model_io.OUTPUT_KEY].numpy()

    np.testing.assert_array_equal(model_io.predict(loaded, frame), expected)
    np.testing.assert_array_equal(model_io.predict(loaded, frame, batch_size=2), expected)


def test_predict_names_the_missing_features(models):
    with pytest.raises(model_io.FeatureMismatchError, match=r"\['c', 'k'\]"):
        model_io.predict(str(models), pd.DataFrame({"x": [1.0]}))


def test_column_values_follow_the_signature_dtypes():
    column = pd.Series([3.0, None, 5.0])
    assert model_io.column_values(column, "float32").dtype == np.float32
    assert np.isnan(model_io.column_values(column, "float32")[1])
    assert model_io.column_values(column, "int64").tolist() == [3, model_io.MISSING_INT, 5]
    assert model_io.column_values(column, "string").tolist() == ["3", "", "5"]
    with pytest.raises(ValueError, match="unsupported signature dtype"):
        model_io.column_values(column, "bool")


def test_read_frame_csv_parquet_sniffed_and_folder(tmp_path):
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", None, "z"], "c": [0.5, np.nan, 1.5]})
    df.to_csv(tmp_path / "d.csv", index=False)
    df.to_parquet(tmp_path / "d.parquet", index=False)
    (tmp_path / "d.parquet").rename(tmp_path / "no_extension")
    (tmp_path / "parts").mkdir()
    df.to_parquet(tmp_path / "parts" / "part-0.parquet", index=False)
    for name in ("d.csv", "no_extension", "parts"):
        frame = model_io.read_frame(str(tmp_path / name))
        pd.testing.assert_frame_equal(frame, df, check_dtype=False)


def test_read_frame_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        model_io.read_frame(str(tmp_path / "missing.csv"))
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ValueError, match="not a Parquet file"):
        model_io.read_frame(str(tmp_path / "broken.parquet"))
    with pytest.raises(ValueError, match="no data URI"):
        model_io.read_frame("")


@pytest.mark.parametrize(
    ("labels", "task"),
    [
        ([0, 1, 1, 0], "binary"),
        (["yes", "no", "no"], "binary"),
        ([True, False, True], "binary"),
        (["a", "b", "c"], "multiclass"),
        (list(range(10)) * 2, "multiclass"),
        (list(range(15)) * 2, "regression"),  # training said regression, evaluation multiclass
        ([0.5, 1.5, 2.25], "regression"),
    ],
)
def test_training_and_evaluation_infer_the_same_task(labels, task):
    from components.evaluate_model import runtime as evaluate
    from components.train_model import _features

    series = pd.Series(labels)
    assert model_io.infer_task(series) == task
    assert _features.resolve_target(series, "y", "auto").task == task
    assert evaluate._task("auto", {}, series) == task
