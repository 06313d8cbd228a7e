"""KFP interface of summarize_run."""

from kfp import dsl
from kfp.dsl import Markdown, Output

from components import images


@dsl.component(base_image=images.RUNTIME, install_kfp_package=False)
def summarize_run(
    status: dsl.PipelineTaskFinalStatus,
    record_dir: str,
    summary: Output[Markdown],
    webhook_url: str = "",
):
    """Summarises the run (final status, each gate's verdict and reasons, report links).

    Use it as the pipeline's exit handler: it runs whatever happened, on Kubeflow and Vertex.

    Args:
        status: The pipeline's final status, filled in by the orchestrator.
        record_dir: The run record folder where record_verdict left the gates' verdicts.
        summary: The run summary as Markdown.
        webhook_url: When set, the summary is POSTed there as JSON ({"text": ..., "summary": ...}).
    """
    import logging

    from components import interface
    from components.summarize_run import runtime

    logging.basicConfig(level=logging.INFO)
    final = {
        "state": status.state,
        "pipeline_job_resource_name": status.pipeline_job_resource_name,
        "error_message": status.error_message,
    }
    interface.call(runtime.run, locals(), status=final, summary_path=summary.path)
