"""KFP interface of make_demo_data."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from components import images


@dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
def make_demo_data(
    data: Output[Dataset],
    rows: int = 5000,
    seed: int = 0,
    scenario: str = "none",
    file_format: str = "csv",
):
    """Generates a seeded customer-churn table, optionally corrupted for a gate scenario.

    Args:
        data: Output dataset (CSV or Parquet); metadata holds rows, columns and label rate.
        rows: Number of customers to generate.
        seed: Random seed; the same seed gives the same table.
        scenario: "none", or a corruption the gates must catch: rename_column, missing_column,
            type_change, null_explosion, outliers, unseen_categories, drift, label_shift.
        file_format: "csv" or "parquet".
    """
    import logging

    from components import interface
    from components.make_demo_data import runtime

    logging.basicConfig(level=logging.INFO)
    data.uri += f".{file_format}"  # the runtime refuses a file_format other than csv or parquet
    data.metadata.update(interface.call(runtime.run, locals(), output_path=data.path))
