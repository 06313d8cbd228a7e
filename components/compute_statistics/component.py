"""KFP interface of compute_statistics."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output

from components import images


@dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
def compute_statistics(
    statistics: Output[Artifact],
    data: Input[Dataset] = None,
    data_uri: str = "",
    data_fingerprint: str = "",
    engine: str = "auto",
    in_memory_max_mb: int = 256,
    # kfp compiles literal defaults into the spec; the body never mutates them.
    beam_pipeline_options: list = [],  # noqa: B006
    categorical_columns: list = [],  # noqa: B006
):
    """Computes TFDV statistics of a CSV or Parquet dataset, in memory or on Apache Beam.

    Args:
        statistics: Output TFDV DatasetFeatureStatisticsList, binary proto (read it with
            ``tfdv.load_stats_binary``); metadata holds rows, engine, format, features, bytes,
            seconds and data_uri.
        data: Dataset artifact (``.csv`` or ``.parquet``; a file without an extension is
            sniffed). Give this or data_uri.
        data_uri: The dataset as a local path or gs:// / s3:// URI, instead of data.
        data_fingerprint: fingerprint_data's fingerprint of data_uri: part of this step's
            cache key (a changed file at the same URI is not a cache hit), recorded in the
            metadata.
        engine: "auto" chooses by file size (see in_memory_max_mb), "in_memory" reads the file
            with pyarrow and runs tfdv.generate_statistics_from_dataframe, "beam" runs an
            Apache Beam pipeline (for data that does not fit in memory).
        in_memory_max_mb: With engine="auto", files up to this many MiB run in memory; reading
            needs a few times the file size in RAM.
        beam_pipeline_options: Beam flags for engine="beam", e.g. ["--runner=DataflowRunner",
            "--project=P", "--region=R", "--temp_location=gs://B/tmp"], or FlinkRunner /
            SparkRunner flags. DirectRunner (in this container) when no runner is named.
        categorical_columns: Integer columns to summarise as categories (value counts, top
            values, L-infinity drift) instead of numbers, e.g. integer-coded areas.
    """
    import logging

    from components import interface
    from components.compute_statistics import runtime

    logging.basicConfig(level=logging.INFO)
    statistics.metadata.update(
        interface.call(
            runtime.run, locals(), output_path=statistics.path, data_path=data.path if data else ""
        )
    )
