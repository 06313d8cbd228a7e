"""train_model on small real data, in the runtime image, on CPU.

Every run is small (hundreds to a few thousand rows, a few epochs); the file takes a couple
of minutes on two cores.
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv

from components import images, model_io, request_contract, uris
from components.make_demo_data import runtime as demo
from components.train_model import _hardware, runtime

CATEGORICAL = ["contract_type"]


def write_inputs(df: pd.DataFrame, folder, name: str = "data.csv") -> tuple[str, str]:
    """Writes the data and its TFDV schema (text proto, as infer_schema does)."""
    folder.mkdir(parents=True, exist_ok=True)
    data_path = demo.write(df, folder / name)
    schema = tfdv.infer_schema(tfdv.generate_statistics_from_dataframe(df))
    schema_path = folder / "schema.pbtxt"
    tfdv.write_schema_text(schema, str(schema_path))
    return str(data_path), str(schema_path)


def train(tmp_path, data_path, schema_path, **kwargs) -> runtime.TrainingResult:
    args = dict(
        data_uri=data_path,
        schema_path=schema_path,
        model_dir=str(tmp_path / "model"),
        eval_data_path=str(tmp_path / "eval.parquet"),
        tensorboard_dir=str(tmp_path / "tensorboard"),
        epochs=5,
        verbose=0,
    )
    args.update(kwargs)
    return runtime.run(**args)


@pytest.fixture(scope="module")
def demo_inputs(tmp_path_factory):
    return write_inputs(demo.generate(2500, seed=0), tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def binary(tmp_path_factory, demo_inputs):
    out = tmp_path_factory.mktemp("binary")
    result = train(
        out,
        *demo_inputs,
        label=demo.LABEL,
        categorical_columns=CATEGORICAL,
        timestamp_column=demo.TIMESTAMP,
        early_stopping_patience=0,
    )
    return out, result


# --- the model and its export ---------------------------------------------------------------


def test_binary_model_learns_and_outputs_follow_the_contract(binary):
    out, result = binary
    assert result.metrics["eval_auc"] > 0.7
    assert result.metrics["epochs"] == 5 and result.metrics["examples_per_second"] > 0
    assert (out / "model" / "1" / "saved_model.pb").is_file()
    meta = result.model_metadata
    assert meta["framework"] == "tensorflow" and meta["task"] == "binary"
    assert meta["label"] == demo.LABEL and meta["classes"] == [0, 1]
    assert meta["serving_version"] == 1
    assert meta["features"] == {
        "age": "float",
        "tenure_months": "float",
        "monthly_charges": "float",
        "total_charges": "float",
        "support_calls": "float",
        "plan": "string",
        "region": "string",
        "payment_method": "string",
        "contract_type": "int",
    }  # the timestamp used for the split is not a feature
    assert meta["data_uri"].endswith("data.csv")
    assert meta["data_hash"] == uris.fingerprint(meta["data_uri"]).value
    assert "mlflow_run_id" not in meta


def test_eval_data_is_the_latest_rows_with_raw_columns(binary, demo_inputs):
    out, result = binary
    data = pd.read_csv(demo_inputs[0])
    eval_df = pd.read_parquet(out / "eval.parquet")
    assert list(eval_df.columns) == list(data.columns)
    assert len(eval_df) == result.metrics["eval_rows"] == 500
    assert eval_df[demo.TIMESTAMP].min() >= data[demo.TIMESTAMP].nlargest(500).min()


def test_tensorboard_logs_and_training_log_are_written(binary):
    out, _ = binary
    events = [p for p in (out / "tensorboard").rglob("events.out.tfevents.*")]
    assert events
    log = pd.read_csv(out / "tensorboard" / runtime.TRAINING_LOG)
    assert list(log["epoch"]) == [0, 1, 2, 3, 4] and "val_auc" in log


def test_saved_model_predicts_like_the_keras_model_from_raw_values(binary):
    out, result = binary
    loaded = tf.saved_model.load(str(out / "model" / "1"))  # plain TensorFlow, no Keras
    serve = loaded.signatures["serving_default"]
    raw = {
        "age": np.array([30, np.nan, 55, 41, np.nan, 70], np.float32),
        "tenure_months": np.array([2, 40, np.nan, 12, 1, 100], np.float32),
        "monthly_charges": np.array([99.5, 30.0, 61.2, np.nan, 45.0, 20.0], np.float32),
        "total_charges": np.array([199.0, np.nan, 3000.0, 800.0, np.nan, 2000.0], np.float32),
        "support_calls": np.array([5, 0, 1, 2, np.nan, 0], np.float32),
        "plan": np.array(["basic", "premium", "", "standard", "enterprise", "basic"], object),
        "region": np.array(["north", "", "west", "east", "south", "mars"], object),
        "payment_method": np.array(["voucher", "", "card", "paypal", "", "card"], object),
        "contract_type": np.array([0, 2, model_io.MISSING_INT, 1, 7, 0], np.int64),
    }
    served = serve(**{k: tf.constant(v) for k, v in raw.items()})["predictions"].numpy()
    expected = result.keras_model.predict(raw, verbose=0)
    assert served.shape == (6,)
    assert np.isfinite(served).all() and ((served > 0) & (served < 1)).all()
    np.testing.assert_allclose(served, expected[:, 0], rtol=1e-5, atol=1e-6)
    # The signature is the contract's: one [None] input per feature, dtype by kind.
    _, inputs = serve.structured_input_signature
    dtypes = {"float": tf.float32, "int": tf.int64, "string": tf.string}
    assert {k: (s.dtype, s.shape.as_list()) for k, s in inputs.items()} == {
        k: (dtypes[kind], [None]) for k, kind in result.model_metadata["features"].items()
    }


def test_model_io_predicts_from_a_raw_frame_like_the_keras_model(binary):
    out, result = binary
    eval_df = pd.read_parquet(out / "eval.parquet")
    assert eval_df["total_charges"].isna().any() and eval_df["payment_method"].isna().any()
    predictions = model_io.predict(str(out / "model"), eval_df)
    dtypes = {"float": "float32", "int": "int64", "string": "string"}
    x = {
        k: model_io.column_values(eval_df[k], dtypes[v]) for k, v in result.model_metadata["features"].items()
    }
    expected = result.keras_model.predict(x, verbose=0)[:, 0]
    np.testing.assert_allclose(predictions, expected, rtol=1e-5, atol=1e-6)


# --- other tasks -----------------------------------------------------------------------------


def test_multiclass_with_string_labels(tmp_path):
    df = demo.generate(1500, seed=3)[["monthly_charges", "support_calls", "region", "plan"]]
    data_path, schema_path = write_inputs(df, tmp_path / "in")
    result = train(tmp_path, data_path, schema_path, label="plan", epochs=8, early_stopping_patience=0)
    meta = result.model_metadata
    assert meta["task"] == "multiclass" and meta["classes"] == ["basic", "premium", "standard"]
    assert result.metrics["eval_accuracy"] > 0.85
    eval_df = pd.read_parquet(tmp_path / "eval.parquet")
    probabilities = model_io.predict(str(tmp_path / "model"), eval_df)
    assert probabilities.shape == (len(eval_df), 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    predicted = np.array(meta["classes"])[probabilities.argmax(axis=1)]
    assert (predicted == eval_df["plan"]).mean() > 0.85


def test_multiclass_penguins(tmp_path, datasets_dir):
    df = pd.read_csv(datasets_dir / "penguins" / "labelled.csv")
    data_path, schema_path = write_inputs(df, tmp_path / "in")
    result = train(
        tmp_path, data_path, schema_path, label="species", epochs=30, batch_size=32, early_stopping_patience=0
    )
    assert result.model_metadata["task"] == "multiclass"
    assert result.model_metadata["classes"] == [0, 1, 2]
    assert result.metrics["eval_accuracy"] > 0.85


def test_regression_predicts_monthly_charges(tmp_path):
    df = demo.generate(2000, seed=5)[["plan", "region", "support_calls", "age", "monthly_charges"]]
    data_path, schema_path = write_inputs(df, tmp_path / "in")
    result = train(tmp_path, data_path, schema_path, label="monthly_charges", early_stopping_patience=0)
    meta = result.model_metadata
    assert meta["task"] == "regression" and "classes" not in meta
    # The plan explains most of the charge (noise sd 8); the label's own sd is about 23.
    assert result.metrics["eval_rmse"] < 0.5 * df["monthly_charges"].std()
    eval_df = pd.read_parquet(tmp_path / "eval.parquet")
    predictions = model_io.predict(str(tmp_path / "model"), eval_df)
    assert predictions.shape == (len(eval_df),)
    assert abs(predictions.mean() - eval_df["monthly_charges"].mean()) < 5


def test_user_model_fn_builds_the_body(tmp_path, monkeypatch, demo_inputs):
    (tmp_path / "my_models.py").write_text(
        "import keras\n"
        "def wide(inputs, encoded, info):\n"
        "    assert info['task'] == 'binary' and info['n_outputs'] == 1\n"
        "    return keras.layers.Dense(8, activation='relu', name='user_body')(encoded)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    result = train(tmp_path, *demo_inputs, label=demo.LABEL, model_fn="my_models:wide", epochs=2)
    assert result.keras_model.get_layer("user_body").units == 8
    assert result.keras_model.output.dtype == "float32"
    assert (tmp_path / "model" / "1" / "saved_model.pb").is_file()


def test_mixed_precision_keeps_the_output_float32(tmp_path, demo_inputs):
    try:
        result = train(tmp_path, *demo_inputs, label=demo.LABEL, mixed_precision="on", epochs=1)
        assert result.model_metadata["precision"] == "mixed_float16"
        assert result.keras_model.get_layer("hidden_0").compute_dtype == "float16"
        assert result.keras_model.get_layer("head").compute_dtype == "float32"
        assert result.keras_model.output.dtype == "float32"
        eval_df = pd.read_parquet(tmp_path / "eval.parquet")
        assert np.isfinite(model_io.predict(str(tmp_path / "model"), eval_df)).all()
    finally:
        keras.mixed_precision.set_global_policy("float32")


# --- resilience ------------------------------------------------------------------------------


class Preempted(Exception):
    """Stands in for the pod being killed."""


class PreemptAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise Preempted("node preempted after epoch 1")


def test_a_killed_training_resumes_from_the_checkpoint(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    data_path, schema_path = write_inputs(demo.generate(800, seed=1), tmp_path / "in")
    args = dict(label=demo.LABEL, epochs=3, early_stopping_patience=0)
    with pytest.raises(Preempted):
        train(tmp_path, data_path, schema_path, callbacks=[PreemptAfterFirstEpoch()], **args)
    checkpoints = tmp_path / "model_checkpoints"  # the default: a sibling of the model folder
    state = json.loads((checkpoints / runtime.BACKUP_SUBDIR / "training_metadata.json").read_text())
    assert state["epoch"] == 1
    assert not (tmp_path / "model" / "1").exists()

    result = train(tmp_path, data_path, schema_path, **args)  # the retry: same arguments
    assert [h["epoch"] for h in result.history] == [1, 2]  # started at the second epoch
    assert result.metrics["epochs"] == 3 and result.metrics["epochs_this_attempt"] == 2
    log = pd.read_csv(checkpoints / runtime.TRAINING_LOG)
    assert list(log["epoch"]) == [0, 1, 2]  # epoch 0 ran once, in the killed attempt
    assert not (checkpoints / runtime.BACKUP_SUBDIR).exists()  # cleaned up after success
    assert (tmp_path / "model" / "1" / "saved_model.pb").is_file()
    # No tracking URI: nothing is logged anywhere, and nothing fails.
    assert "mlflow_run_id" not in result.model_metadata
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()


# --- hardware --------------------------------------------------------------------------------

TWO_WORKERS = json.dumps(
    {"cluster": {"worker": ["w0:2222", "w1:2222"]}, "task": {"type": "worker", "index": 1}}
)
ONE_WORKER = json.dumps({"cluster": {"worker": ["w0:2222"]}, "task": {"type": "worker", "index": 0}})


@pytest.mark.parametrize(
    "gpus, capabilities, tf_config, mode, strategy, precision",
    [
        ([], [], None, "auto", "default", "float32"),
        (["gpu:0"], [(8, 0)], None, "auto", "default", "mixed_float16"),
        (["gpu:0"], [(6, 1)], None, "auto", "default", "float32"),
        (["gpu:0"], [None], None, "auto", "default", "float32"),
        (["gpu:0", "gpu:1"], [(7, 0), (7, 5)], None, "auto", "mirrored", "mixed_float16"),
        (["gpu:0", "gpu:1"], [(7, 0), (6, 0)], None, "auto", "mirrored", "float32"),
        (["gpu:0"], [(8, 0)], None, "off", "default", "float32"),
        ([], [], None, "on", "default", "mixed_float16"),
        ([], [], TWO_WORKERS, "auto", "multi_worker_mirrored", "float32"),
        (["gpu:0", "gpu:1"], [(9, 0), (9, 0)], TWO_WORKERS, "auto", "multi_worker_mirrored", "mixed_float16"),
        (["gpu:0"], [(7, 5)], ONE_WORKER, "auto", "default", "mixed_float16"),
    ],
)
def test_strategy_and_precision_selection(gpus, capabilities, tf_config, mode, strategy, precision):
    plan = _hardware.plan(gpus, capabilities, tf_config, mode)
    assert (plan.strategy, plan.precision) == (strategy, precision)
    assert plan.gpus == len(gpus) and plan.reason


def test_chief_selection_and_bad_hardware_arguments():
    assert _hardware.is_chief(None) and _hardware.is_chief(ONE_WORKER)
    assert not _hardware.is_chief(TWO_WORKERS)
    assert _hardware.is_chief(TWO_WORKERS.replace('"index": 1', '"index": 0'))
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        _hardware.plan([], [], None, "fp16")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        _hardware.plan([], [], "{not json", "auto")


# --- tracking --------------------------------------------------------------------------------


def test_mlflow_run_has_params_epoch_metrics_hash_image_and_model(
    tmp_path, monkeypatch, mlflow_server, demo_inputs
):
    from mlflow import MlflowClient

    # Configured through the environment (as a Kubernetes secret would); monkeypatch also
    # undoes mlflow.set_tracking_uri's own export of this variable after the test.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    result = train(
        tmp_path,
        *demo_inputs,
        label=demo.LABEL,
        epochs=3,
        early_stopping_patience=0,
        mlflow_experiment="train-model-test",
    )
    client = MlflowClient(mlflow_server)
    run = client.get_run(result.model_metadata["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["task"] == "binary" and run.data.params["epochs"] == "3"
    assert run.data.tags["data_hash"] == result.model_metadata["data_hash"]
    assert run.data.tags["image_version"] == images.VERSION
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert sorted(m.step for m in history) == [0, 1, 2]
    assert run.data.metrics["final_eval_auc"] == pytest.approx(result.metrics["eval_auc"])
    files = [f.path for f in client.list_artifacts(run.info.run_id, "model/1")]
    assert "model/1/saved_model.pb" in files


# --- bad input -------------------------------------------------------------------------------


def test_bad_inputs_are_named_errors(tmp_path, demo_inputs):
    data_path, schema_path = demo_inputs
    with pytest.raises(runtime.LabelNotFoundError, match="'is_churned' is not in the data"):
        train(tmp_path, data_path, schema_path, label="is_churned")
    with pytest.raises(runtime.FeatureNotFoundError, match=r"\['shoe_size'\]"):
        train(tmp_path, data_path, schema_path, label=demo.LABEL, features=["age", "shoe_size"])

    df = demo.generate(300, seed=2)
    empty_path, empty_schema = write_inputs(df, tmp_path / "empty")
    df.head(0).to_csv(empty_path, index=False)
    with pytest.raises(runtime.EmptyDataError, match="no rows"):
        train(tmp_path, empty_path, empty_schema, label=demo.LABEL)
    unlabelled = df.assign(churned=np.nan)
    unlabelled.to_csv(tmp_path / "unlabelled.csv", index=False)
    with pytest.raises(runtime.EmptyDataError, match="rows with a label"):
        train(tmp_path, str(tmp_path / "unlabelled.csv"), empty_schema, label=demo.LABEL)
    df.assign(churned=0).to_csv(tmp_path / "one_class.csv", index=False)
    with pytest.raises(runtime.SingleClassLabelError, match="single value"):
        train(tmp_path, str(tmp_path / "one_class.csv"), empty_schema, label=demo.LABEL)
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ({"data_uri": ""}, "training data is required"),
        ({"eval_fraction": 1.0}, "eval_fraction must be between 0 and 1"),
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"hidden_units": [64, 0]}, "hidden_units must be positive integers"),
        ({"task": "ranking"}, "task must be one of"),
        ({"mixed_precision": "maybe"}, "mixed_precision must be one of"),
        ({"model_fn": "no_colon"}, "model_fn must look like 'package.module:function'"),
        ({"model_fn": "no_such_module:build"}, "cannot be imported"),
    ],
)
def test_bad_arguments_are_value_errors(tmp_path, demo_inputs, override, message):
    with pytest.raises(ValueError, match=message):
        train(tmp_path, *demo_inputs, label=demo.LABEL, **override)


# --- real, messy data ------------------------------------------------------------------------


def test_chicago_taxi_big_tipper(tmp_path, datasets_dir):
    data_path = str(datasets_dir / "chicago_taxi" / "data.csv")
    df = pd.read_csv(data_path)
    schema_path = tmp_path / "schema.pbtxt"
    tfdv.write_schema_text(tfdv.infer_schema(tfdv.generate_statistics_from_dataframe(df)), str(schema_path))
    result = train(
        tmp_path,
        data_path,
        str(schema_path),
        label="big_tipper",
        exclude_features=["tips"],
        categorical_columns=TAXI_CATEGORICAL,
        timestamp_column="trip_start_timestamp",
    )
    print(f"chicago_taxi big_tipper eval AUC: {result.metrics['eval_auc']:.4f}")  # noqa: T201
    assert "tips" not in result.model_metadata["features"]
    assert result.metrics["eval_auc"] > 0.85


TAXI_CATEGORICAL = [
    "trip_start_hour",
    "trip_start_day",
    "trip_start_month",
    "pickup_community_area",
    "dropoff_community_area",
    "pickup_census_tract",
    "dropoff_census_tract",
]


def test_model_dir_layout_is_tf_serving(binary):
    out, _ = binary
    assert sorted(os.listdir(out / "model")) == ["1"]
    assert model_io.version_dir(str(out / "model")).endswith("/1")


def test_the_model_carries_its_request_contract(binary):
    """What the model server checks requests against, from the rows the model trained on."""
    out, result = binary
    contract = request_contract.load(model_io.version_dir(str(out / "model")))
    features = contract["features"]
    assert {n: f["type"] for n, f in features.items()} == result.model_metadata["features"]
    assert features["age"]["min"] < features["age"]["max"]
    assert "north" in features["region"]["categories"]
    # the same model still loads and serves: TF Serving ignores assets.extra
    assert model_io.load(str(out / "model")) is not None


def test_a_feature_store_training_set_gives_the_model_its_feature_refs(tmp_path):
    """The Feast record in the training Parquet's metadata goes into the model's version folder
    (so every copy of the model keeps it) and the artifact metadata, narrowed to the features
    the model uses: what the server looks up online."""
    from components import feature_store, online_features

    df = demo.generate(300, seed=3)[["plan", "support_calls", "age", demo.LABEL]]
    record = feature_store.FeatureStoreRecord(
        repository="gs://bucket/feature_repo", project="churn_demo",
        feature_refs=["profile:plan", "daily:support_calls", "profile:age"], entity_keys=["customer_id"],
        event_timestamp_column="event_timestamp", registry_version="sha256:0123456789abcdef",
    )
    data = tmp_path / "training_set.parquet"
    feature_store.write_training_set(df, str(data), record)

    result = train(tmp_path, str(data), "", label=demo.LABEL, features=["plan", "support_calls"], epochs=1)

    refs = ["profile:plan", "daily:support_calls"]  # age is in the store but not in the model
    assert result.model_metadata["feature_refs"] == refs
    carried = online_features.read_record(model_io.version_dir(str(tmp_path / "model")))
    assert carried == {**record.to_dict(), "feature_refs": refs}


def test_served_predictions_are_the_evaluation_paths(binary, tmp_path):
    """Feature consistency: the held-out rows through the evaluation path (model_io.predict on
    the frame) and through the served HTTP path (the model server, v1, with the request check)
    give the same predictions; missing values included."""
    from components.deploy_model import _local, _smoke

    out, _ = binary
    model_dir = str(out / "model")
    loaded = model_io.load(model_dir)
    inputs = model_io.serving_inputs(loaded)
    frame = pd.read_parquet(out / "eval.parquet")[list(inputs)].head(200).reset_index(drop=True)
    frame.loc[::7, "total_charges"] = np.nan  # a missing value every few rows
    dtypes = {name: dtype.name for name, dtype in inputs.items()}
    with _local.LocalServer(model_dir, "churn", 120, str(tmp_path / "server.log")) as server:
        served = _smoke.predict_v1(server.url, "churn", frame, dtypes)
    np.testing.assert_allclose(served, model_io.predict(loaded, frame), rtol=0, atol=1e-6)
