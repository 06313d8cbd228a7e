"""A small pipeline that produces the demo dataset in the runtime image."""

from kfp import dsl

from components import make_demo_data
from pipelines._training import defaults

DEMO = defaults(make_demo_data)


@dsl.pipeline(name="demo-data")
def demo_data(
    rows: int = DEMO["rows"],
    seed: int = DEMO["seed"],
    scenario: str = DEMO["scenario"],
    file_format: str = DEMO["file_format"],
):
    """Generates the demo customer-churn dataset, clean or corrupted.

    Args:
        rows: Number of customers.
        seed: Random seed.
        scenario: "none" or a gate scenario (see make_demo_data).
        file_format: "csv" or "parquet".
    """
    make_demo_data(rows=rows, seed=seed, scenario=scenario, file_format=file_format)
