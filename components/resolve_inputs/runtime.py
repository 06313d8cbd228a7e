"""resolve_inputs: the run's live inputs, read once, first: fingerprint_data and
resolve_baseline in one process.

Both are light (no TensorFlow, no TFDV) and both must run uncached on every run: the data behind
a fixed URI changes, and production moves between runs. Together they are one task instead of
two (on Kubeflow one driver and one executor pod fewer); each part is its own component's
runtime, so the outputs mean what they mean there.
"""

from __future__ import annotations

from components import interface
from components.fingerprint_data import runtime as fingerprint_data
from components.resolve_baseline import runtime as resolve_baseline


@interface.defaults_from(__file__)
def run(
    *, data_uri, snapshot_uri, mlflow_tracking_uri, registered_model_name, alias, schema_uri, statistics_uri
) -> dict:
    """Fingerprints the data (optionally snapshotting it) and resolves production's schema and
    statistics. Parameters are documented on the component (component.py).

    Returns:
        data (fingerprint_data's record: data_uri, source_uri, fingerprint, method, size_bytes,
        snapshot), data_uri, fingerprint, schema_uri, statistics_uri, baseline_source.

    Raises:
        What fingerprint_data and resolve_baseline raise: no or missing data, an unreachable
        store, a registry asked for without a tracking URI.
    """
    arguments = dict(locals())
    data = interface.call(fingerprint_data.run, arguments)
    schema, statistics, source = interface.call(resolve_baseline.run, arguments)
    return {
        "data": data,
        "data_uri": data["data_uri"],
        "fingerprint": data["fingerprint"],
        "schema_uri": schema,
        "statistics_uri": statistics,
        "baseline_source": source,
    }
