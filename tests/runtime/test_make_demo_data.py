import pandas as pd
import pytest

from components.make_demo_data import runtime


def test_same_seed_same_table_and_different_seed_differs():
    a, b, c = runtime.generate(500, seed=3), runtime.generate(500, seed=3), runtime.generate(500, 4)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_table_is_realistic_and_learnable():
    df = runtime.generate(4000, seed=0)
    assert list(df.columns) == [runtime.TIMESTAMP, *runtime.FEATURES, runtime.LABEL]
    assert 0.1 < df[runtime.LABEL].mean() < 0.6
    assert df["total_charges"].isna().any() and df["payment_method"].isna().any()
    assert df[runtime.TIMESTAMP].is_monotonic_increasing
    # The label follows the features: more support calls, more churn.
    rate = df.groupby(df["support_calls"] >= 3)[runtime.LABEL].mean()
    assert rate[True] > rate[False] + 0.15


@pytest.mark.parametrize(
    "scenario, check",
    [
        ("rename_column", lambda d: "monthly_charges" not in d and "monthly_charge_usd" in d),
        ("missing_column", lambda d: "tenure_months" not in d),
        ("type_change", lambda d: d["age"].str.endswith(" years").all()),
        ("null_explosion", lambda d: d["monthly_charges"].isna().mean() > 0.5),
        ("outliers", lambda d: d["age"].max() >= 400),
        ("unseen_categories", lambda d: {"enterprise", "student"} & set(d["plan"])),
        ("drift", lambda d: d["monthly_charges"].mean() > 100),
    ],
)
def test_each_scenario_breaks_what_it_names(scenario, check):
    assert check(runtime.corrupt(runtime.generate(1000), scenario))


def test_label_shift_decouples_label_from_features():
    df = runtime.corrupt(runtime.generate(4000), "label_shift")
    rate = df.groupby(df["support_calls"] >= 3)[runtime.LABEL].mean()
    assert abs(rate[True] - rate[False]) < 0.08


def test_unknown_scenario_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown scenario 'typo'"):
        runtime.corrupt(runtime.generate(10), "typo")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_run_writes_the_format_its_name_says(tmp_path, suffix):
    path = tmp_path / f"d{suffix}"
    summary = runtime.run(output_path=str(path), rows=50, scenario="none", file_format=suffix[1:])
    df = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    assert len(df) == summary["rows"] == 50


def test_unsupported_extension_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        runtime.write(runtime.generate(5), tmp_path / "d.json")


def test_file_format_is_checked_against_the_output_name(tmp_path):
    with pytest.raises(ValueError, match="file_format must be 'csv' or 'parquet', got 'json'"):
        runtime.run(output_path=str(tmp_path / "d.json"), rows=5, file_format="json")
    with pytest.raises(ValueError, match=r"must end in \.parquet"):
        runtime.run(output_path=str(tmp_path / "d.csv"), rows=5, file_format="parquet")
