"""materialize_features on a real Feast repository (Parquet offline store, SQLite online store):
incremental runs pick up where the last ended, an explicit range loads exactly that range, the
report says what was written and how fresh it is, bad inputs are named."""

from __future__ import annotations

import pandas as pd
import pytest

from components import feature_store, uris
from components.make_demo_data import feature_repo as demo
from components.materialize_features import runtime

DAY = pd.Timedelta(days=1)


def materialize(repo: dict, **arguments) -> dict:
    options = {"repository": repo["repository"], "end": "", "start": "", "feature_views": []}
    return runtime.run(**{**options, **arguments})


def online_sessions(repo: dict, customers: list[int]) -> list:
    store = feature_store.open_store(repo["repository"])
    rows = [{demo.ENTITY_KEY: customer} for customer in customers]
    found = store.get_online_features(features=["customer_daily:sessions_7d"], entity_rows=rows)
    return found.to_dict()["sessions_7d"]


@pytest.fixture
def repo(tmp_path):
    """The demo repository (ending at today's midnight), applied, nothing materialized."""
    repo = demo.write_feature_repo(tmp_path / "repo", customers=20, days=9, seed=1)
    feature_store.apply_definitions(repo["repository"])
    return repo


def test_incremental_runs_continue_where_the_last_one_ended(repo):
    first = materialize(repo)
    assert first["mode"] == "incremental" and first["online_store"] == "sqlite"
    views = {view["name"]: view for view in first["views"]}
    assert sorted(views) == [demo.DAILY_VIEW, demo.PROFILE_VIEW]
    daily = views[demo.DAILY_VIEW]
    assert daily["entities"] == 20  # the latest row of every customer, within the 2-day TTL
    assert daily["newest_event_time"] == (pd.Timestamp(repo["end"]) - DAY).isoformat()
    # The first run starts one TTL (2 days) before now.
    span = pd.Timestamp(daily["end"]) - pd.Timestamp(daily["start"])
    assert abs(span - 2 * DAY) < pd.Timedelta(minutes=1)
    assert first["entities"] == 40

    # New offline rows for two customers, stamped after the first run's end.
    table = pd.read_parquet(repo["sources"][demo.DAILY_VIEW])
    fresh = table[table[demo.ENTITY_KEY].isin([1001, 1002])].drop_duplicates(demo.ENTITY_KEY, keep="last")
    fresh = fresh.copy()
    fresh[demo.EVENT_TIMESTAMP] = pd.Timestamp(daily["end"]) + pd.Timedelta(minutes=1)
    fresh["sessions_7d"] = [111, 222]
    pd.concat([table, fresh]).to_parquet(repo["sources"][demo.DAILY_VIEW], index=False)

    end = pd.Timestamp(daily["end"]) + pd.Timedelta(minutes=5)
    second = materialize(repo, end=end.isoformat(), feature_views=[demo.DAILY_VIEW])
    (view,) = second["views"]
    assert view["start"] == daily["end"] and pd.Timestamp(view["end"]) == end
    assert view["entities"] == 2
    assert view["newest_event_time"] == fresh[demo.EVENT_TIMESTAMP].iloc[0].isoformat()
    assert online_sessions(repo, [1001, 1002]) == [111, 222]


def test_an_explicit_range_loads_exactly_that_range(repo):
    start, end = pd.Timestamp(repo["start"]), pd.Timestamp(repo["start"]) + 3 * DAY
    result = materialize(repo, start=start.isoformat(), end=end.isoformat(), feature_views=[demo.DAILY_VIEW])
    (view,) = result["views"]
    assert result["mode"] == "range"
    assert (pd.Timestamp(view["start"]), pd.Timestamp(view["end"])) == (start, end)
    daily = pd.read_parquet(repo["sources"][demo.DAILY_VIEW])
    in_range = daily[(daily[demo.EVENT_TIMESTAMP] >= start) & (daily[demo.EVENT_TIMESTAMP] <= end)]
    assert view["entities"] == in_range[demo.ENTITY_KEY].nunique() > 0
    assert view["newest_event_time"] == in_range[demo.EVENT_TIMESTAMP].max().isoformat()
    # The online store serves the newest value inside the range, not the newer offline ones.
    latest = in_range.sort_values(demo.EVENT_TIMESTAMP).groupby(demo.ENTITY_KEY)["sessions_7d"].last()
    customers = [int(c) for c in latest.index[:3]]
    assert online_sessions(repo, customers) == [int(latest[c]) for c in customers]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(start="2026-06-02", end="2026-06-01"), "start '2026-06-02' must be before end"),
        (dict(end="next tuesday"), "end 'next tuesday' is not an ISO 8601 time"),
        (dict(feature_views=["customer_weekly"]),
         "feature views \\['customer_weekly'\\] are not online feature views"),
    ],
)
def test_bad_arguments_are_named(repo, arguments, message):
    with pytest.raises(ValueError, match=message):
        materialize(repo, **arguments)


def test_a_copied_repository_with_its_stores_inside_is_refused(repo, s3_env):
    """Materializing into a copy's SQLite file would report success and serve nothing."""
    remote = f"s3://{s3_env}/feature-repos/churn"
    uris.upload_dir(repo["repository"], remote)
    with pytest.raises(ValueError, match="is remote and its registry and online_store are files inside it"):
        materialize(dict(repo, repository=remote))
