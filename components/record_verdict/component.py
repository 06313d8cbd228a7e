"""KFP interface of record_verdict."""

from kfp import dsl
from kfp.dsl import Artifact, Input

from components import images


@dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
def record_verdict(report: Input[Artifact], record_dir: str, gate: str):
    """Records a gate's verdict in the run record folder for the run summary.

    Args:
        report: The gate's JSON verdict report (validate_data report, evaluate_model blessing,
            deploy_model deployment report).
        record_dir: The run record folder URI (one per run; local path, gs://, s3:// or minio://).
        gate: The gate's name, e.g. data-is-valid; the record is <record_dir>/<gate>.json.
    """
    import logging

    from components.record_verdict import runtime

    logging.basicConfig(level=logging.INFO)
    runtime.run(report_path=report.path, report_uri=report.uri, record_dir=record_dir, gate=gate)
