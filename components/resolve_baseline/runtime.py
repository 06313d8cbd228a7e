"""Finds the data baseline of the model in production: the schema it was validated against and
the statistics of its training data, stored with its MLflow model version by register_model
(``runs:/`` URIs in the version's tags). This is how a recurring run validates new data against
what production was trained on, without ML Metadata and without the earlier run's pipeline
root."""

from __future__ import annotations

import logging

from components import interface, registry

logger = logging.getLogger(__name__)

@interface.defaults_from(__file__)
def run(*, mlflow_tracking_uri, registered_model_name, alias, schema_uri, statistics_uri) -> tuple[str, ...]:
    """Returns (schema_uri, statistics_uri, source). Explicit URIs win; otherwise the tags of
    the version ``alias`` points at; "" for what cannot be found (a first run). Parameters
    are documented on the component (component.py)."""
    source = "explicit"
    if (not schema_uri or not statistics_uri) and registered_model_name:
        # A registry was asked for: without a tracking URI this is a misconfiguration (e.g. a
        # missing secret), never a first run.
        tracking_uri = registry.resolve_tracking_uri(
            mlflow_tracking_uri, required_for=f"the production baseline of {registered_model_name!r}"
        )
        version = registry.version_by_alias(tracking_uri, registered_model_name, alias)
        if version is None:
            source = "none: no model version has the alias " + repr(alias)
        else:
            tags = version.tags or {}
            schema_uri = schema_uri or tags.get(registry.lineage_tag("schema"), "")
            statistics_uri = statistics_uri or tags.get(registry.lineage_tag("statistics"), "")
            source = f"{registered_model_name} version {version.version} (@{alias})"
    elif not schema_uri and not statistics_uri:
        source = "none: no URIs given and no registered model named"
    logger.info("baseline from %s: schema=%r statistics=%r", source, schema_uri, statistics_uri)
    return schema_uri, statistics_uri, source
