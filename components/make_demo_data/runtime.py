"""Realistic, seeded customer-churn data and injectors for every gate scenario.

The table mixes what real tabular data has: numeric columns, string categories, an
integer-coded category, a timestamp, missing values, and a label the features explain.
Nothing is downloaded. ``corrupt`` produces the failure cases the gates must catch.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from components import interface

logger = logging.getLogger(__name__)

LABEL = "churned"
TIMESTAMP = "signup_timestamp"
FILE_FORMATS = ("csv", "parquet")
FEATURES = (
    "age",
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_calls",
    "plan",
    "region",
    "payment_method",
    "contract_type",
)
PLANS = ("basic", "standard", "premium")
REGIONS = ("north", "south", "east", "west")
PAYMENT_METHODS = ("card", "bank_transfer", "paypal", "voucher")
SCENARIOS = (
    "none",
    "rename_column",
    "missing_column",
    "type_change",
    "null_explosion",
    "outliers",
    "unseen_categories",
    "drift",
    "label_shift",
)
_START = 1_577_836_800  # 2020-01-01T00:00:00Z


def generate(rows: int = 5000, seed: int = 0) -> pd.DataFrame:
    """Returns ``rows`` customers; the same ``seed`` always gives the same table."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    rng = np.random.default_rng(seed)
    plan = rng.choice(PLANS, rows, p=[0.5, 0.35, 0.15])
    contract_type = rng.choice([0, 1, 2], rows, p=[0.55, 0.25, 0.2])  # month, 1 year, 2 years
    tenure = np.clip(rng.gamma(2.0, 14.0, rows) + 6 * contract_type, 1, 120).round().astype(int)
    base_charge = pd.Series(plan).map({"basic": 30.0, "standard": 60.0, "premium": 95.0}).to_numpy()
    monthly = np.round(base_charge + rng.normal(0, 8, rows), 2)
    total = np.round(monthly * tenure * rng.uniform(0.9, 1.05, rows), 2)
    support_calls = rng.poisson(1.0 + 1.5 * (plan == "basic"), rows)
    age = np.clip(rng.normal(45, 14, rows), 18, 90).round().astype(int)
    region = rng.choice(REGIONS, rows)
    payment = rng.choice(PAYMENT_METHODS, rows, p=[0.45, 0.3, 0.2, 0.05])
    signup = _START + np.sort(rng.integers(0, 3 * 365 * 86400, rows))

    logit = (
        -1.0
        + 0.55 * support_calls
        - 0.045 * tenure
        + 0.018 * (monthly - 60)
        - 0.9 * contract_type
        + 0.7 * (payment == "voucher")
        - 0.01 * (age - 45)
    )
    churned = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int)

    df = pd.DataFrame(
        {
            TIMESTAMP: signup,
            "age": age,
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": total,
            "support_calls": support_calls,
            "plan": plan,
            "region": region,
            "payment_method": payment,
            "contract_type": contract_type,
            LABEL: churned,
        }
    )
    # Real exports have holes: a few missing charges and payment methods.
    df.loc[rng.uniform(size=rows) < 0.02, "total_charges"] = np.nan
    df.loc[rng.uniform(size=rows) < 0.03, "payment_method"] = None
    return df


def corrupt(df: pd.DataFrame, scenario: str, seed: int = 1) -> pd.DataFrame:
    """Returns a copy of ``df`` broken the way ``scenario`` names (see ``SCENARIOS``)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; expected one of {', '.join(SCENARIOS)}")
    rng = np.random.default_rng(seed)
    out = df.copy()
    if scenario == "rename_column":
        out = out.rename(columns={"monthly_charges": "monthly_charge_usd"})
    elif scenario == "missing_column":
        out = out.drop(columns=["tenure_months"])
    elif scenario == "type_change":
        out["age"] = out["age"].astype(str) + " years"
    elif scenario == "null_explosion":
        out.loc[rng.uniform(size=len(out)) < 0.6, "monthly_charges"] = np.nan
    elif scenario == "outliers":
        picked = rng.uniform(size=len(out)) < 0.05
        out.loc[picked, "age"] = rng.integers(400, 1000, picked.sum())
        out.loc[picked, "monthly_charges"] = -rng.uniform(1e4, 1e5, picked.sum()).round(2)
    elif scenario == "unseen_categories":
        picked = rng.uniform(size=len(out)) < 0.3
        out.loc[picked, "plan"] = rng.choice(["enterprise", "student"], picked.sum())
    elif scenario == "drift":
        out["monthly_charges"] = (out["monthly_charges"] * 1.8 + 25).round(2)
        out["region"] = rng.choice(REGIONS, len(out), p=[0.85, 0.05, 0.05, 0.05])
    elif scenario == "label_shift":
        # The label no longer follows the features: a model trained on this is worse.
        out[LABEL] = rng.permutation(out[LABEL].to_numpy())
    return out


def write(df: pd.DataFrame, path: str | Path) -> Path:
    """Writes CSV or Parquet, chosen by the file extension."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        raise ValueError(f"unsupported data file {str(path)!r}: use a .csv or .parquet name")
    return path


@interface.defaults_from(__file__)
def run(*, output_path: str, rows, seed, scenario, file_format) -> dict:
    """Generates demo data, optionally corrupted, and writes it to ``output_path`` (whose name
    ends in ``.<file_format>``). Parameters are documented on the component (component.py).

    Returns a summary (rows, columns, label rate, scenario) for artifact metadata.
    """
    if file_format not in FILE_FORMATS:
        raise ValueError(f"file_format must be 'csv' or 'parquet', got {file_format!r}")
    if Path(output_path).suffix != f".{file_format}":
        raise ValueError(f"output_path {output_path!r} must end in .{file_format}, as file_format says")
    df = corrupt(generate(rows, seed), scenario) if scenario != "none" else generate(rows, seed)
    write(df, output_path)
    summary = {
        "rows": len(df),
        "columns": list(df.columns),
        "scenario": scenario,
        "label": LABEL,
        "label_rate": round(float(pd.to_numeric(df[LABEL]).mean()), 4),
    }
    logger.info("wrote %d rows (%s) to %s", len(df), scenario, output_path)
    return summary
