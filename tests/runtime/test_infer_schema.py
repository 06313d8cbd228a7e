"""infer_schema with real TFDV on demo statistics: environments, domains, ranges, comparators."""

import math

import pytest
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2

from components.compute_statistics import runtime as statistics
from components.infer_schema import runtime
from components.make_demo_data import runtime as demo
from components.tfdv_io import DataReadError

LABEL = demo.LABEL


@pytest.fixture(scope="module")
def stats_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("infer")
    data = demo.write(demo.generate(2000, seed=0), root / "train.csv")
    path = root / "stats.pb"
    statistics.run(output_path=str(path), data_uri=str(data), categorical_columns=["contract_type"])
    return path


def infer(tmp_path, stats_path, **kwargs):
    out = tmp_path / "schema.pbtxt"
    metadata = runtime.run(statistics_path=str(stats_path), schema_path=str(out), **kwargs)
    return tfdv.load_schema_text(str(out)), metadata, out


def test_environments_keep_the_label_out_of_serving(tmp_path, stats_path):
    schema, meta, _ = infer(tmp_path, stats_path, label=LABEL)
    assert list(schema.default_environment) == ["TRAINING", "SERVING"]
    assert list(tfdv.get_feature(schema, LABEL).not_in_environment) == ["SERVING"]
    assert not tfdv.get_feature(schema, "age").not_in_environment
    assert meta["source"] == "inferred" and meta["label"] == LABEL


def test_string_domains_tolerate_rare_unseen_values(tmp_path, stats_path):
    schema, _, _ = infer(tmp_path, stats_path, label=LABEL, min_domain_mass=0.98)
    assert set(tfdv.get_domain(schema, "plan").value) == set(demo.PLANS)
    assert tfdv.get_feature(schema, "plan").distribution_constraints.min_domain_mass == pytest.approx(0.98)


def test_integer_codes_are_categorical_with_l_infinity_drift(tmp_path, stats_path):
    schema, meta, _ = infer(tmp_path, stats_path, label=LABEL, categorical_drift_threshold=0.2)
    contract = tfdv.get_feature(schema, "contract_type")
    assert contract.int_domain.is_categorical  # detected: the statistics summarise it as codes
    assert contract.drift_comparator.infinity_norm.threshold == pytest.approx(0.2)
    assert not contract.int_domain.HasField("max")  # codes get no numeric range
    assert "contract_type" in meta["categorical"]
    # Named only here (statistics are numeric): categorical, measured with Jensen-Shannon.
    schema, _, _ = infer(tmp_path, stats_path, label=LABEL, categorical_columns=["support_calls"])
    calls = tfdv.get_feature(schema, "support_calls")
    assert calls.int_domain.is_categorical
    assert calls.drift_comparator.HasField("jensen_shannon_divergence")


def test_presence_floor_is_the_observed_fraction_minus_the_tolerance(tmp_path, stats_path):
    schema, meta, _ = infer(tmp_path, stats_path, label=LABEL, presence_tolerance=0.05)
    assert tfdv.get_feature(schema, "monthly_charges").presence.min_fraction == pytest.approx(0.95)
    observed = meta["presence_min_fraction"]["payment_method"] + 0.05
    assert 0.94 < observed < 1.0  # about 3% of payment methods are missing in the demo data
    assert tfdv.get_feature(schema, "payment_method").presence.min_fraction == pytest.approx(
        observed - 0.05, abs=1e-3
    )


def test_numeric_ranges_have_a_margin_and_stay_non_negative(tmp_path, stats_path):
    schema, meta, _ = infer(tmp_path, stats_path, label=LABEL, range_margin=0.5)
    age = tfdv.get_feature(schema, "age").int_domain
    observed = tfdv.get_feature_stats(tfdv.load_stats_binary(str(stats_path)).datasets[0],
                                      tfdv.FeaturePath(["age"])).num_stats
    assert observed.min == 18  # the demo clips ages to [18, 90]
    span = observed.max - observed.min
    # Widened by half the span on both sides; the lower bound stops at 0 (never negative).
    assert (age.min, age.max) == (0, math.ceil(observed.max + 0.5 * span))
    charges = tfdv.get_feature(schema, "monthly_charges").float_domain
    low, high = meta["ranges"]["monthly_charges"]
    assert charges.min == pytest.approx(low) and charges.max == pytest.approx(high)
    assert 0 <= low < 30 and 130 < high < 250
    assert not tfdv.get_feature(schema, LABEL).HasField("int_domain")  # 0/1 stays a bool domain


def test_comparators_on_every_feature_except_time_columns(tmp_path, stats_path):
    schema, meta, _ = infer(tmp_path, stats_path, label=LABEL, numeric_drift_threshold=0.07,
                            categorical_skew_threshold=0.03, numeric_skew_threshold=0.04)
    for feature in schema.feature:
        if feature.name == demo.TIMESTAMP:
            assert not feature.HasField("drift_comparator") and not feature.HasField("int_domain")
            continue
        if feature.type == schema_pb2.BYTES:
            assert feature.drift_comparator.infinity_norm.threshold == pytest.approx(0.1)
            assert feature.skew_comparator.infinity_norm.threshold == pytest.approx(0.03)
        elif not feature.int_domain.is_categorical:
            drift = feature.drift_comparator.jensen_shannon_divergence
            assert drift.threshold == pytest.approx(0.07)
            assert drift.source.type == schema_pb2.HistogramSelection.QUANTILES
            if feature.name == LABEL:  # absent in serving: nothing to compare
                assert not feature.HasField("skew_comparator")
            else:
                assert feature.skew_comparator.jensen_shannon_divergence.threshold == pytest.approx(0.04)
    assert meta["unbounded"] == [demo.TIMESTAMP]


def test_output_is_a_reviewable_text_proto(tmp_path, stats_path):
    _, _, out = infer(tmp_path, stats_path, label=LABEL)
    text = out.read_text()
    assert text.startswith("# Inferred by infer_schema") and "review" in text.lower()
    assert 'name: "monthly_charges"' in text and "jensen_shannon_divergence" in text


def test_curated_schema_wins(tmp_path, stats_path):
    curated = schema_pb2.Schema()
    curated.feature.add(name="age", type=schema_pb2.INT).int_domain.max = 70
    path = tmp_path / "curated.pbtxt"
    tfdv.write_schema_text(curated, str(path))
    for kwargs in ({"curated_schema_path": str(path)}, {"curated_schema_uri": str(path)}):
        schema, meta, _ = infer(tmp_path, stats_path, label=LABEL, **kwargs)
        assert [f.name for f in schema.feature] == ["age"]
        assert tfdv.get_feature(schema, "age").int_domain.max == 70
        assert meta["source"] == "curated" and meta["features"] == 1
    with pytest.raises(ValueError, match="not both"):
        infer(tmp_path, stats_path, label=LABEL, curated_schema_path=str(path), curated_schema_uri=str(path))


def test_broken_curated_schema_and_bad_arguments_are_clear_errors(tmp_path, stats_path):
    broken = tmp_path / "broken.pbtxt"
    broken.write_text("feature { name: 'x' type: NOT_A_TYPE }")
    with pytest.raises(DataReadError, match=r"broken\.pbtxt.*not a Schema text proto"):
        infer(tmp_path, stats_path, label=LABEL, curated_schema_uri=str(broken))
    with pytest.raises(DataReadError, match=r"gone\.pbtxt' does not exist"):
        infer(tmp_path, stats_path, label=LABEL, curated_schema_uri=str(tmp_path / "gone.pbtxt"))
    with pytest.raises(ValueError, match=r"label \['target'\] not in the statistics"):
        infer(tmp_path, stats_path, label="target")
    with pytest.raises(ValueError, match="numeric_drift_threshold must be between 0 and 1"):
        infer(tmp_path, stats_path, label=LABEL, numeric_drift_threshold=3)
