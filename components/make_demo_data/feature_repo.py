"""The demo's Feast feature repository: customers whose features change every day, and the
moments their churn labels were observed.

``write_feature_repo`` writes a repository in Feast's own layout, the one ``feast init``
creates, so a Feast user recognises it and ``feast apply`` / ``feast materialize`` work in it:

    <root>/feature_store.yaml          project, file registry, local provider, file offline
                                       store, SQLite online store
    <root>/features.py                 Entity ``customer`` (join key ``customer_id``), feature
                                       views ``customer_daily`` and ``customer_profile``, the
                                       FeatureService ``churn_model`` the model uses
    <root>/data/customer_daily.parquet     one row per customer per day (offline store)
    <root>/data/customer_profile.parquet   one row per customer, from signup
    <root>/data/churn_labels.parquet       the entity table: customer_id, event_timestamp,
                                           churned (not a feature source)

The daily features move every day and collapse once a customer has churned (a churned
customer stops logging in), so a training set that joined a value from after a label's event
time would learn from the future: the point-in-time join is what keeps that out, and the
tests can see it. Values depend on ``seed`` alone; ``end`` only places them in time. Writing
imports no Feast (the files are plain YAML, Python source and Parquet); ``python -m
components.make_demo_data.feature_repo ROOT --apply`` also registers them, in the runtime image.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

PROJECT = "churn_demo"
ENTITY = "customer"
ENTITY_KEY = "customer_id"
EVENT_TIMESTAMP = "event_timestamp"
LABEL = "churned"
FEATURE_SERVICE = "churn_model"
DAILY_VIEW, PROFILE_VIEW = "customer_daily", "customer_profile"
DAILY_FEATURES = ("sessions_7d", "minutes_7d", "support_calls_30d", "days_since_login", "monthly_charges")
PROFILE_FEATURES = ("plan", "contract_type", "region", "age")
FEATURE_REFS = tuple(
    [f"{DAILY_VIEW}:{name}" for name in DAILY_FEATURES]
    + [f"{PROFILE_VIEW}:{name}" for name in PROFILE_FEATURES]
)
"""What ``churn_model`` serves, as Feast names features: ``<feature view>:<feature>``."""
PLANS = ("basic", "standard", "premium")
REGIONS = ("north", "south", "east", "west")
FIRST_LABEL_DAY = 7  # labels start once a week of daily history exists

FEATURE_STORE_YAML = f"""\
# A Feast feature repository (https://docs.feast.dev): `feast apply` registers features.py,
# `feast materialize-incremental <end>` loads the online store. For production, point the
# registry, offline_store and online_store at your own (BigQuery, Redshift, Spark; Redis,
# Bigtable, DynamoDB): features.py stays as it is.
project: {PROJECT}
registry: data/registry.db
provider: local
offline_store:
    type: file
online_store:
    type: sqlite
    path: data/online_store.db
entity_key_serialization_version: 3
"""

FEATURES_PY = f'''\
"""Feature definitions of the churn demo (written by components.make_demo_data.feature_repo)."""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String

customer = Entity(
    name="{ENTITY}", join_keys=["{ENTITY_KEY}"], value_type=ValueType.INT64, description="A subscriber"
)

# Relative paths resolve against this repository's folder, so a copy of it works anywhere.
customer_daily_source = FileSource(
    name="customer_daily_source",
    path="data/customer_daily.parquet",
    timestamp_field="{EVENT_TIMESTAMP}",
)
customer_profile_source = FileSource(
    name="customer_profile_source",
    path="data/customer_profile.parquet",
    timestamp_field="{EVENT_TIMESTAMP}",
)

# Written once a day; a value older than two days is not a current one.
{DAILY_VIEW} = FeatureView(
    name="{DAILY_VIEW}",
    entities=[customer],
    ttl=timedelta(days=2),
    schema=[
        Field(name="sessions_7d", dtype=Int64, description="Sessions in the last 7 days"),
        Field(name="minutes_7d", dtype=Float64, description="Minutes of use in the last 7 days"),
        Field(name="support_calls_30d", dtype=Int64, description="Support calls in the last 30 days"),
        Field(name="days_since_login", dtype=Int64, description="Days since the last login"),
        Field(name="monthly_charges", dtype=Float64, description="Current monthly bill"),
    ],
    online=True,
    source=customer_daily_source,
    tags={{"team": "churn"}},
)

# Written at signup; valid until replaced.
{PROFILE_VIEW} = FeatureView(
    name="{PROFILE_VIEW}",
    entities=[customer],
    ttl=timedelta(days=3650),
    schema=[
        Field(name="plan", dtype=String),
        Field(name="contract_type", dtype=Int64, description="0 monthly, 1 one year, 2 two years"),
        Field(name="region", dtype=String),
        Field(name="age", dtype=Int64),
    ],
    online=True,
    source=customer_profile_source,
    tags={{"team": "churn"}},
)

# The features the churn model is trained on and served with.
{FEATURE_SERVICE} = FeatureService(name="{FEATURE_SERVICE}", features=[{DAILY_VIEW}, {PROFILE_VIEW}])
'''


def write_feature_repo(
    root: str | Path,
    *,
    customers: int = 200,
    days: int = 30,
    seed: int = 0,
    end: dt.datetime | None = None,
) -> dict:
    """Writes the demo feature repository under ``root`` (created; existing files replaced).

    Args:
        root: The repository folder.
        customers: Number of customers (entities).
        days: Days of daily feature rows, ending at ``end``.
        seed: Random seed; the same seed gives the same values.
        end: The moment the data ends (timezone-aware, or naive meaning UTC); default: today's
            midnight UTC, so the online store is current after materializing.

    Returns:
        repository, feature_store_yaml, definitions, entity_table, sources (view -> Parquet
        path), project, entity_key, event_timestamp_column, label, feature_service,
        feature_refs, start and end (ISO 8601), rows (per table).

    Raises:
        ValueError: fewer than 1 customer, or fewer than ``FIRST_LABEL_DAY + 1`` days.
    """
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    if days <= FIRST_LABEL_DAY:
        raise ValueError(
            f"days must be more than {FIRST_LABEL_DAY} (a week of history before labels), got {days}"
        )
    end = _utc(end) if end is not None else pd.Timestamp.now(tz="UTC").floor("D")
    start = end - pd.Timedelta(days=days)
    daily, profile, labels = _tables(customers, days, seed, start)

    root = Path(root)
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text(FEATURE_STORE_YAML)
    (root / "features.py").write_text(FEATURES_PY)
    sources = {DAILY_VIEW: data / "customer_daily.parquet", PROFILE_VIEW: data / "customer_profile.parquet"}
    daily.to_parquet(sources[DAILY_VIEW], index=False)
    profile.to_parquet(sources[PROFILE_VIEW], index=False)
    entity_table = data / "churn_labels.parquet"
    labels.to_parquet(entity_table, index=False)
    logger.info(
        "feature repository %s: %d customers, %d daily rows, %d labels (%.0f%% churned), %s to %s",
        root, customers, len(daily), len(labels), 100 * labels[LABEL].mean(),
        start.isoformat(), end.isoformat(),
    )
    return {
        "repository": str(root),
        "feature_store_yaml": str(root / "feature_store.yaml"),
        "definitions": str(root / "features.py"),
        "entity_table": str(entity_table),
        "sources": {view: str(path) for view, path in sources.items()},
        "project": PROJECT,
        "entity_key": ENTITY_KEY,
        "event_timestamp_column": EVENT_TIMESTAMP,
        "label": LABEL,
        "feature_service": FEATURE_SERVICE,
        "feature_refs": list(FEATURE_REFS),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "rows": {DAILY_VIEW: len(daily), PROFILE_VIEW: len(profile), "entity_table": len(labels)},
    }


def _utc(moment) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _tables(customers: int, days: int, seed: int, start: pd.Timestamp):
    """The daily features, the profiles and the label events, as DataFrames."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1001, 1001 + customers, dtype=np.int64)
    plan = rng.choice(PLANS, customers, p=[0.5, 0.35, 0.15])
    contract = rng.choice([0, 1, 2], customers, p=[0.55, 0.25, 0.2])
    region = rng.choice(REGIONS, customers)
    age = np.clip(rng.normal(45, 14, customers), 18, 90).round().astype(np.int64)
    base_charge = pd.Series(plan).map({"basic": 30.0, "standard": 60.0, "premium": 95.0}).to_numpy()
    # Most customers were there before the window; some sign up during it (their profile and
    # daily rows start then, so a label right after signup has no week of history).
    signup_day = np.where(rng.uniform(size=customers) < 0.85, -rng.integers(30, 900, customers),
                          rng.integers(0, days - FIRST_LABEL_DAY, customers))

    # Engagement drifts day to day (a random walk); every daily feature follows it.
    engagement = np.cumsum(rng.normal(0, 0.25, (customers, days)), axis=1)
    engagement += rng.normal(0, 0.8, (customers, 1))
    churn_rate = 1 + 2.0 * (plan == "basic")
    support = rng.poisson(np.clip(churn_rate[:, None] - 0.8 * engagement, 0.1, None))
    charges = np.round(base_charge[:, None] + np.cumsum(rng.normal(0, 0.6, (customers, days)), axis=1)
                       + rng.normal(0, 8, (customers, 1)), 2)

    # Label events: up to three observations a customer, from the second week on; a
    # customer's labels stop at the first churn, and its activity collapses from the next day.
    churned_on = np.full(customers, days, dtype=np.int64)  # first day without activity
    events = []
    for i in range(customers):
        first = max(FIRST_LABEL_DAY, signup_day[i] + 1)
        if first >= days:
            continue
        for day in np.sort(rng.choice(np.arange(first, days), size=min(3, days - first), replace=False)):
            sessions = _sessions(engagement[i, day])
            logit = (
                -0.3 - 0.35 * sessions + 0.45 * support[i, day]
                + 0.03 * (charges[i, day] - 60) - 0.9 * contract[i]
            )
            churned = int(rng.uniform() < 1 / (1 + np.exp(-logit)))
            at = start + pd.Timedelta(days=int(day), seconds=int(rng.integers(3600, 86400 - 3600)))
            events.append((ids[i], at, churned))
            if churned:
                churned_on[i] = day + 1
                break

    rows = []
    for i in range(customers):
        last_login = 0
        for day in range(max(0, signup_day[i]), days):
            active = day < churned_on[i]
            sessions = _sessions(engagement[i, day]) if active else 0
            last_login = 0 if sessions else last_login + 1
            rows.append((
                ids[i], start + pd.Timedelta(days=day), sessions,
                round(sessions * float(rng.gamma(4.0, 6.0)), 1), int(support[i, day]), last_login,
                charges[i, day],
            ))
    daily = pd.DataFrame(rows, columns=[ENTITY_KEY, EVENT_TIMESTAMP, *DAILY_FEATURES])
    profile = pd.DataFrame({
        ENTITY_KEY: ids,
        EVENT_TIMESTAMP: start + pd.to_timedelta(signup_day, unit="D"),
        "plan": plan, "contract_type": contract.astype(np.int64), "region": region, "age": age,
    })
    labels = pd.DataFrame(events, columns=[ENTITY_KEY, EVENT_TIMESTAMP, LABEL]).sort_values(EVENT_TIMESTAMP)
    labels[LABEL] = labels[LABEL].astype(np.int64)
    return daily, profile, labels.reset_index(drop=True)


def _sessions(engagement: float) -> int:
    """Sessions in a week at this engagement: deterministic, so the label's logit and the
    feature row agree exactly."""
    return int(round(7 * np.exp(np.clip(engagement, -3, 1.5)) / 2))


def main(argv: list[str] | None = None) -> int:
    """``python -m components.make_demo_data.feature_repo ROOT [--apply]``: writes the
    repository (and registers it, as ``feast apply`` does); prints what ``write_feature_repo``
    returns, as JSON, on standard output."""
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("root", help="the repository folder")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--apply", action="store_true", help="register the definitions (needs Feast)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    repo = write_feature_repo(args.root, customers=args.customers, days=args.days, seed=args.seed)
    if args.apply:
        from components import feature_store

        feature_store.apply_definitions(repo["repository"])
    sys.stdout.write(json.dumps(repo) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
