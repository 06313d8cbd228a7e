"""KFP interface of record_verdict."""

from kfp import dsl
from kfp.dsl import Artifact, Input

from components import images


@dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
def record_verdict(verdict: Input[Artifact], record_dir: str, gate: str):
    """Records a gate's verdict in the run record folder for the run summary.

    Args:
        verdict: The gate's JSON verdict (the ``verdict`` output of validate_data,
            evaluate_model or deploy_model).
        record_dir: The run record folder URI (one per run; local path, gs://, s3:// or minio://).
        gate: The gate's name, e.g. data-is-valid; the record is <record_dir>/<gate>.json.
    """
    import logging

    from components import interface
    from components.record_verdict import runtime

    logging.basicConfig(level=logging.INFO)
    interface.call(runtime.run, locals(), verdict_path=verdict.path, verdict_uri=verdict.uri)
