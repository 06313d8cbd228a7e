"""Copies a gate's verdict into the run record, where the run summary finds it."""

from __future__ import annotations

from components import interface, run_records


@interface.defaults_from(__file__)
def run(*, verdict_path: str, verdict_uri: str, record_dir, gate) -> dict:
    """Records the verdict JSON at ``verdict_path`` (a Verdict.to_json document) as ``gate``
    (``run_records.record_verdict``, which the gating components also call themselves).
    Parameters are documented on the component (component.py); ``verdict_uri`` names the
    verdict in errors and in the record.

    Returns the record: gate, passed, summary, the failed checks and the verdict's URI.
    """
    return run_records.record_verdict(record_dir, gate, verdict_path, verdict_uri)
