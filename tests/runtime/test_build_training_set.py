"""build_training_set on real Feast repositories (local provider: Parquet offline store, SQLite
online store): no value from after a label's event time reaches its row, the join equals an
independent as-of join, the lineage record travels in the file, bad inputs are named."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from components import feature_store, uris
from components.build_training_set import runtime
from components.make_demo_data import feature_repo as demo

END = pd.Timestamp("2026-06-01", tz="UTC")
DAY = pd.Timedelta(days=1)


def build(repo: dict, entity_table: str, path, **arguments) -> pd.DataFrame:
    options = dict(
        repository=repo["repository"], entity_table_uri=str(entity_table), features=[],
        feature_service=demo.FEATURE_SERVICE, event_timestamp_column=demo.EVENT_TIMESTAMP,
    )
    runtime.run(**{**options, **arguments}, output_path=str(path))
    return pd.read_parquet(path)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """The demo repository, small, applied."""
    repo = demo.write_feature_repo(tmp_path_factory.mktemp("demo"), customers=60, days=12, seed=3, end=END)
    feature_store.apply_definitions(repo["repository"])
    return repo


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    """The demo's definitions over hand-written rows: customer 1001's sessions jump from 5 to
    50 at day 3 00:00; 1002's first row is at day 5; 1003's only row is at day 1 (the daily
    view's TTL is 2 days)."""
    repo = demo.write_feature_repo(tmp_path_factory.mktemp("crafted"), customers=3, days=10, end=END)
    start = pd.Timestamp(repo["start"])
    rows = [(1001, start + 2 * DAY, 5), (1001, start + 3 * DAY, 50), (1002, start + 5 * DAY, 7),
            (1003, start + 1 * DAY, 9)]
    daily = pd.DataFrame(rows, columns=[demo.ENTITY_KEY, demo.EVENT_TIMESTAMP, "sessions_7d"])
    for name in demo.DAILY_FEATURES[1:]:
        daily[name] = 0 if name != "minutes_7d" and name != "monthly_charges" else 0.0
    daily.to_parquet(repo["sources"][demo.DAILY_VIEW], index=False)
    feature_store.apply_definitions(repo["repository"])
    return repo, start


def test_a_value_written_after_the_event_never_reaches_its_row(crafted, tmp_path):
    repo, start = crafted
    events = pd.DataFrame({
        demo.ENTITY_KEY: [1001, 1001, 1002, 1003],
        demo.EVENT_TIMESTAMP: [
            start + 3 * DAY - pd.Timedelta(seconds=1),  # a second before the jump: the old value
            start + 3 * DAY,  # at the jump: the new value (at or before the event time)
            start + 4 * DAY,  # before 1002's first row: nothing known yet
            start + 5 * DAY,  # 1003's row is 4 days old, past the 2-day TTL
        ],
        demo.LABEL: [0, 1, 0, 1],
    })
    events.to_parquet(tmp_path / "labels.parquet")
    out = build(repo, tmp_path / "labels.parquet", tmp_path / "set.parquet",
                features=["customer_daily:sessions_7d"], feature_service="")
    assert out["sessions_7d"].tolist()[:2] == [5, 50]
    assert out["sessions_7d"].iloc[2:].isna().all(), out
    assert out[demo.LABEL].tolist() == [0, 1, 0, 1]  # every label kept, rows in event order


def test_the_training_set_is_an_as_of_join_of_the_demo_data(repo, tmp_path):
    out = build(repo, repo["entity_table"], tmp_path / "set.parquet")
    labels = pd.read_parquet(repo["entity_table"]).sort_values(demo.EVENT_TIMESTAMP, kind="stable")
    daily = pd.read_parquet(repo["sources"][demo.DAILY_VIEW]).sort_values(demo.EVENT_TIMESTAMP)
    expected = pd.merge_asof(labels, daily, on=demo.EVENT_TIMESTAMP, by=demo.ENTITY_KEY,
                             tolerance=pd.Timedelta(days=2), direction="backward")
    assert len(out) == len(labels) > 100
    assert demo.ENTITY_KEY not in out.columns  # a model must not learn ids
    for name in demo.DAILY_FEATURES:
        pd.testing.assert_series_equal(out[name], expected[name].reset_index(drop=True), check_dtype=False)
    # The demo's daily features collapse the day after a churn: the rows carry the values before.
    churned = out[out[demo.LABEL] == 1]
    assert len(churned) > 5 and (churned["sessions_7d"] > 0).mean() > 0.5


def test_a_csv_entity_table_gives_the_same_training_set(repo, tmp_path):
    labels = pd.read_parquet(repo["entity_table"])
    labels[demo.EVENT_TIMESTAMP] = labels[demo.EVENT_TIMESTAMP].map(pd.Timestamp.isoformat)
    labels.to_csv(tmp_path / "labels.csv", index=False)
    from_csv = build(repo, tmp_path / "labels.csv", tmp_path / "csv.parquet")
    from_parquet = build(repo, repo["entity_table"], tmp_path / "parquet.parquet")
    pd.testing.assert_frame_equal(from_csv, from_parquet, check_dtype=False)


def test_the_lineage_record_travels_in_the_file_and_the_bytes_are_stable(repo, tmp_path):
    first = runtime.run(
        repository=repo["repository"], entity_table_uri=repo["entity_table"], features=[],
        feature_service=demo.FEATURE_SERVICE, event_timestamp_column=demo.EVENT_TIMESTAMP,
        output_path=str(tmp_path / "a.parquet"),
    )
    record = feature_store.read_record(str(tmp_path / "a.parquet"))
    assert record.to_dict() == {key: first[key] for key in record.to_dict()}
    assert record.feature_refs == list(demo.FEATURE_REFS)
    assert record.entity_keys == [demo.ENTITY_KEY] and record.project == demo.PROJECT
    assert record.event_timestamp_column == demo.EVENT_TIMESTAMP
    assert record.registry_version.startswith("sha256:")
    assert first["rows"] == len(pd.read_parquet(repo["entity_table"])) and first["missing_values"] == {}
    assert json.loads(pq.read_schema(tmp_path / "a.parquet").metadata[b"feast"]) == record.to_dict()
    # The same inputs give the same bytes: an unchanged training set keeps its fingerprint.
    build(repo, repo["entity_table"], tmp_path / "b.parquet")
    assert uris.fingerprint(str(tmp_path / "a.parquet")) == uris.fingerprint(str(tmp_path / "b.parquet"))


def test_the_registry_version_follows_the_definitions(tmp_path):
    repo = demo.write_feature_repo(tmp_path / "repo", customers=5, days=9, end=END)
    store = feature_store.apply_definitions(repo["repository"])
    before = feature_store.registry_version(store, list(demo.FEATURE_REFS))
    store = feature_store.apply_definitions(repo["repository"])  # re-applied unchanged
    assert feature_store.registry_version(store, list(demo.FEATURE_REFS)) == before
    definitions = tmp_path / "repo" / "features.py"
    definitions.write_text(definitions.read_text().replace("ttl=timedelta(days=2)", "ttl=timedelta(days=3)"))
    store = feature_store.apply_definitions(repo["repository"])
    assert feature_store.registry_version(store, list(demo.FEATURE_REFS)) != before


def test_a_repository_in_an_object_store_is_read_from_a_copy(repo, tmp_path, s3_env):
    remote = f"s3://{s3_env}/feature-repos/churn"
    assert uris.upload_dir(repo["repository"], remote) > 4
    from_s3 = build(dict(repo, repository=remote), repo["entity_table"], tmp_path / "s3.parquet")
    local = build(repo, repo["entity_table"], tmp_path / "local.parquet")
    pd.testing.assert_frame_equal(from_s3, local)
    assert feature_store.read_record(str(tmp_path / "s3.parquet")).repository == remote


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(features=["customer_daily:churn_score"], feature_service=""),
         "unknown feature reference 'customer_daily:churn_score'.*known: customer_daily:days_since_login"),
        (dict(features=["sessions_7d"], feature_service=""),
         "'sessions_7d' is not '<feature view>:<feature>'"),
        (dict(feature_service="churn_model_v9"),
         "feature service 'churn_model_v9' is not in project.*churn_model"),
        (dict(features=["customer_daily:sessions_7d"]), "not both"),
        (dict(feature_service=""), "not neither"),
    ],
)
def test_bad_feature_selections_are_named(repo, tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        build(repo, repo["entity_table"], tmp_path / "set.parquet", **arguments)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("customer_id,churned\n1001,0\n", "no event timestamp column 'event_timestamp'"),
        ("customer_id,event_timestamp,churned\n1001,2026-05-25T10:00:00,0\n1002,yesterday,1\n",
         "1 values that are not timestamps, e.g. 'yesterday' \\(row 1\\)"),
        ("customer_id,event_timestamp,churned\n1001,1780000000,0\n", "holds int64 values.*not timestamps"),
        ("customer_id,event_timestamp,churned\n1001,2026-05-25T10:00:00,0\n1002,,1\n",
         "1 rows have no event time"),
        ("user,event_timestamp,churned\n1001,2026-05-25T10:00:00,0\n",
         "lacks the entity key column \\['customer_id'\\]"),
        ("customer_id,event_timestamp,churned\n", "has no rows"),
        ("customer_id,event_timestamp,churned\nC1001,2026-05-25T10:00:00,0\n",
         "could not join entity table .*'customer_id': 'object'.*object and int64"),
    ],
    ids=["no-timestamp-column", "not-a-timestamp", "numbers", "missing-time", "no-key", "empty", "key-type"],
)
def test_bad_entity_tables_are_named(repo, tmp_path, table, message):
    (tmp_path / "labels.csv").write_text(table)
    with pytest.raises(ValueError, match=message):
        build(repo, tmp_path / "labels.csv", tmp_path / "set.parquet")


def test_a_folder_without_feature_store_yaml_is_not_a_repository(repo, tmp_path):
    with pytest.raises(ValueError, match="has no feature_store.yaml at its root"):
        build(dict(repo, repository=str(tmp_path)), repo["entity_table"], tmp_path / "set.parquet")
