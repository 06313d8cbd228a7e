"""Online features at serving, on the demo feature repository with real Feast (local provider:
Parquet offline store, SQLite online store): a model trained on a point-in-time training set,
served by the real model server, fed from the online store by entity key alone.

The consistency test of #18: for the same entity and time the training row and the online
lookup give identical feature values, and the served prediction equals the offline one.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components import feature_store, model_io, online_features, prediction_log
from components.build_training_set import runtime as build_training_set
from components.deploy_model import _smoke
from components.make_demo_data import feature_repo as demo
from components.materialize_features import runtime as materialize_features

NAME = "churn"
KEY = demo.ENTITY_KEY
FEATURES = [feature_store.parse_ref(ref)[1] for ref in demo.FEATURE_REFS]
DAILY = [name for name in FEATURES if name in demo.DAILY_FEATURES]


def applied_repo(root: Path, end: pd.Timestamp | None = None) -> dict:
    """The demo repository (small, its data ending at ``end``, default today) with its
    definitions applied and its online store loaded with all of it, as `feast apply` and
    `feast materialize START END` do."""
    repo = demo.write_feature_repo(root, customers=40, days=10, seed=0, end=end)
    feature_store.apply_definitions(repo["repository"])
    # From before the first signup (profiles go back 900 days) to the data's end.
    since = (pd.Timestamp(repo["start"]) - pd.Timedelta(days=1000)).isoformat()
    materialize_features.run(repository=repo["repository"], end=repo["end"], start=since, feature_views=[])
    return repo


def training_set(repo: dict, entity_table: str, path: Path) -> pd.DataFrame:
    build_training_set.run(
        repository=repo["repository"], entity_table_uri=entity_table, features=[],
        feature_service=demo.FEATURE_SERVICE, event_timestamp_column=demo.EVENT_TIMESTAMP,
        output_path=str(path),
    )
    return pd.read_parquet(path)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return applied_repo(tmp_path_factory.mktemp("feature_repo"))


@pytest.fixture(scope="module")
def model_dir(repo, tmp_path_factory):
    """train_model on the point-in-time training set of the demo's labels."""
    from components.train_model import runtime as train

    out = tmp_path_factory.mktemp("model")
    data = out / "training_set.parquet"
    training_set(repo, repo["entity_table"], data)
    train.run(
        data_uri=str(data), model_dir=str(out / "model"), eval_data_path=str(out / "eval.parquet"),
        tensorboard_dir="", label=demo.LABEL, timestamp_column=demo.EVENT_TIMESTAMP,
        categorical_columns=["contract_type"], epochs=2, early_stopping_patience=0, verbose=0,
    )
    return str(out / "model")


@pytest.fixture(scope="module")
def now_rows(repo, tmp_path_factory) -> pd.DataFrame:
    """Every customer's training row as of now (the point-in-time join, by build_training_set)."""
    folder = tmp_path_factory.mktemp("now")
    ids = np.arange(1001, 1041, dtype=np.int64)
    entities = pd.DataFrame({KEY: ids, demo.EVENT_TIMESTAMP: pd.Timestamp.now(tz="UTC")})
    entities.to_parquet(folder / "entities.parquet", index=False)
    rows = training_set(repo, str(folder / "entities.parquet"), folder / "rows.parquet")
    # build_training_set drops the keys and sorts; the time is the same for all, so by key order.
    assert len(rows) == len(ids)
    return rows.assign(**{KEY: ids})


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    from components.deploy_model import _local

    logs = tmp_path_factory.mktemp("logs")
    args = ["--log-dir", str(logs)]
    with _local.LocalServer(model_dir, NAME, 180, str(logs / "server.log"), args) as local:
        local.log_dir = logs
        yield local


def post(url: str, body: dict, request_id: str = "") -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **({"x-request-id": request_id} if request_id else {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def v1(server, instances: list[dict], request_id: str = "") -> tuple[int, dict]:
    return post(f"{server.url}/v1/models/{NAME}:predict", {"instances": instances}, request_id)


STORE_FLAGS = (online_features.NOT_FOUND, online_features.NULL_VALUE, online_features.OUTSIDE_MAX_AGE)


def store_flags(answer: dict) -> list[dict[str, str]]:
    """Per row, ``{feature: flag}`` of what the online store flagged (the request contract's
    own flags, such as a value outside the training range, left out)."""
    rows = answer.get("flags") or [[] for _ in answer["predictions"]]
    return [{f["feature"]: f["flag"] for f in row if f["flag"] in STORE_FLAGS} for row in rows]


def test_the_model_carries_its_feature_refs(model_dir, repo):
    record = online_features.read_record(model_io.version_dir(model_dir))
    assert record["feature_refs"] == list(demo.FEATURE_REFS)
    assert record["entity_keys"] == [KEY] and record["repository"] == repo["repository"]


def test_the_training_row_and_the_online_lookup_are_identical(model_dir, now_rows):
    online = online_features.OnlineFeatures(online_features.read_record(model_io.version_dir(model_dir)))

    values, flags = online.lookup({KEY: now_rows[KEY].tolist()})

    for name in FEATURES:  # exact: the same stored values, whichever way they are read
        assert values[name] == now_rows[name].tolist(), name
    assert flags == [[] for _ in range(len(now_rows))]  # everything current


def test_entity_keys_alone_are_served_the_offline_prediction(server, model_dir, now_rows):
    offline = model_io.predict(model_dir, now_rows)

    status, answer = v1(server, [{KEY: int(k)} for k in now_rows[KEY]])
    assert status == 200 and store_flags(answer) == [{} for _ in range(len(now_rows))]
    np.testing.assert_allclose(answer["predictions"], offline, rtol=0, atol=1e-6)

    keys = now_rows[KEY].tolist()
    v2 = {"inputs": [{"name": KEY, "shape": [len(keys)], "datatype": "INT64", "data": keys}]}
    status, answer = post(f"{server.url}/v2/models/{NAME}/infer", v2)
    assert status == 200
    np.testing.assert_allclose(answer["outputs"][0]["data"], offline, rtol=0, atol=1e-6)


def test_concurrent_requests_each_get_their_own_customers_features(server, model_dir, now_rows):
    """A burst of one-customer requests (their lookups joined into few store calls, as their
    model calls are): every answer is its own customer's offline prediction."""
    from concurrent.futures import ThreadPoolExecutor

    offline = model_io.predict(model_dir, now_rows)
    keys = [int(k) for k in now_rows[KEY]]
    with ThreadPoolExecutor(len(keys)) as pool:
        answers = list(pool.map(lambda k: v1(server, [{KEY: k}]), keys))

    assert [status for status, _ in answers] == [200] * len(keys)
    np.testing.assert_allclose([a["predictions"][0] for _, a in answers], offline, rtol=0, atol=1e-6)


def test_what_a_request_carries_is_used_and_a_full_row_needs_no_key(server, model_dir, now_rows):
    row = now_rows.iloc[[3]].reset_index(drop=True)
    changed = row.assign(sessions_7d=0, plan="premium")

    status, answer = v1(server, [{KEY: int(row[KEY][0]), "sessions_7d": 0, "plan": "premium"}])
    assert status == 200
    np.testing.assert_allclose(answer["predictions"], model_io.predict(model_dir, changed), atol=1e-6)

    full = {name: row[name][0].item() if hasattr(row[name][0], "item") else row[name][0] for name in FEATURES}
    status, answer = v1(server, [full])
    assert status == 200 and store_flags(answer) == [{}]
    np.testing.assert_allclose(answer["predictions"], model_io.predict(model_dir, row), atol=1e-6)

    # v2 tensors of every feature, as deploy_model's smoke test sends the eval rows: no key either.
    status, answer = post(f"{server.url}/v2/models/{NAME}/infer", {"inputs": _smoke.v2_inputs(row[FEATURES])})
    assert status == 200, answer
    np.testing.assert_allclose(answer["outputs"][0]["data"], model_io.predict(model_dir, row), atol=1e-6)


def test_an_unknown_entity_is_served_imputed_and_flagged_not_found(server, model_dir, now_rows):
    status, answer = v1(server, [{KEY: 999_999}, {KEY: int(now_rows[KEY][0])}])

    assert status == 200
    assert store_flags(answer) == [{name: online_features.NOT_FOUND for name in FEATURES}, {}]
    missing = pd.DataFrame({name: [None] for name in FEATURES})  # the model's own imputation
    np.testing.assert_allclose(answer["predictions"][0], model_io.predict(model_dir, missing)[0], atol=1e-6)


def test_a_request_without_the_entity_key_is_refused_naming_it(server):
    status, answer = v1(server, [{"sessions_7d": 3}])

    assert status == 400 and f"entity key {KEY!r} is missing" in answer["error"]
    status, answer = v1(server, [{KEY: "1001"}])
    assert status == 400 and "must be an integer, got '1001'" in answer["error"]


def test_the_log_holds_the_features_the_model_was_given(server, now_rows):
    v1(server, [{KEY: int(now_rows[KEY][5])}], request_id="logged-online")

    logged = prediction_log.read(str(server.log_dir), NAME)
    row = logged[logged["request_id"] == "logged-online"].iloc[0]
    assert row[KEY] == now_rows[KEY][5]  # the key, so labels can be joined later
    assert {name: row[name] for name in FEATURES} == {name: now_rows[name][5] for name in FEATURES}


@pytest.fixture(scope="module")
def stale_lookup(model_dir, tmp_path_factory):
    """The model's lookup from another repository (what the server's --feature-repo does)
    whose online store was last loaded ten days ago."""
    long_ago = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=10)
    stale = applied_repo(tmp_path_factory.mktemp("stale_repo"), end=long_ago)
    record = online_features.read_record(model_io.version_dir(model_dir))
    return online_features.OnlineFeatures(record, repository=stale["repository"])


def test_a_store_materialized_long_ago_is_flagged_stale(stale_lookup):
    """The daily features (ttl 2 days) are served but flagged, the profile (ttl 10 years) is not."""
    values, flags = stale_lookup.lookup({KEY: [1001]})

    stale = {name: online_features.OUTSIDE_MAX_AGE for name in DAILY}
    assert {f["feature"]: f["flag"] for f in flags[0]} == stale
    assert all(f["expected"]["age_s"] > f["expected"]["max_age_s"] == 2 * 86400 for f in flags[0])
    assert all(values[name][0] is not None for name in FEATURES)  # served all the same


def test_a_null_in_the_store_is_flagged_and_a_fresh_write_is_current(stale_lookup):
    """A push of today's daily row (Feast's write_to_online_store) with one value null."""
    row = {KEY: [1040], demo.EVENT_TIMESTAMP: [pd.Timestamp.now(tz="UTC")], "sessions_7d": [3],
           "minutes_7d": [None], "support_calls_30d": [1], "days_since_login": [0], "monthly_charges": [42.5]}
    stale_lookup.store.write_to_online_store(demo.DAILY_VIEW, pd.DataFrame(row))

    values, flags = stale_lookup.lookup({KEY: [1040]})

    assert {f["feature"]: f["flag"] for f in flags[0]} == {"minutes_7d": online_features.NULL_VALUE}
    assert values["sessions_7d"] == [3]
    minutes = values["minutes_7d"][0]
    assert minutes is None or np.isnan(minutes)


def test_an_unknown_feature_ref_fails_when_the_model_loads(model_dir):
    record = online_features.read_record(model_io.version_dir(model_dir))
    record["feature_refs"] = [*record["feature_refs"], "customer_daily:lifetime_value"]

    with pytest.raises(ValueError, match="unknown feature reference 'customer_daily:lifetime_value'"):
        online_features.OnlineFeatures(record)
