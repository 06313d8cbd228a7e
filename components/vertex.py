"""What the components that call Vertex AI share: argument checks, labels, the API's errors.

Plain Python: imports google-cloud-aiplatform inside the functions that need it (never kfp).
"""

from __future__ import annotations

import json
import logging
import os
import re

logger = logging.getLogger(__name__)

PIPELINE_LABELS_ENV = "VERTEX_AI_PIPELINES_RUN_LABELS"
"""Vertex AI Pipelines' run labels (JSON) for resources a task creates (billing attribution)."""

_PROJECT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]|\d+")  # project ID, or project number
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")


class VertexApiError(RuntimeError):
    """Vertex AI refused or failed a call (the API's error is the cause)."""


def label_value(text: str) -> str:
    """``text`` as a label value: lowercase letters, digits, '_' and '-', at most 63."""
    return re.sub(r"[^a-z0-9_-]", "-", text.lower())[:63]


def check_where(project: str, location: str) -> None:
    """Refuses a project or region Vertex AI would not know, by name.

    Raises:
        ValueError: not a project ID or number, or not a Vertex AI region.
    """
    from google.cloud.aiplatform import constants

    if not _PROJECT.fullmatch(project or ""):
        raise ValueError(
            f"project {project!r} is not a Google Cloud project ID (6-30 lowercase letters, digits, "
            "'-') or number; outside Vertex AI Pipelines pass project and location"
        )
    if location not in constants.base.SUPPORTED_REGIONS:
        raise ValueError(
            f"location {location!r} is not a Vertex AI region (e.g. us-central1, europe-west4)"
        )


def check_labels(labels: dict) -> None:
    """Raises ValueError naming the first label that is not a Vertex AI label."""
    for key, value in labels.items():
        if not (_LABEL_KEY.fullmatch(str(key)) and isinstance(value, str) and _LABEL_VALUE.fullmatch(value)):
            raise ValueError(
                f"label {key!r}: {value!r} is not a Vertex label (lowercase letters, digits, '_', '-'; "
                "keys start with a letter; at most 63 characters)"
            )


def pipeline_labels() -> dict[str, str]:
    """The Vertex AI Pipelines run's labels (``PIPELINE_LABELS_ENV``); {} outside a run."""
    text = os.environ.get(PIPELINE_LABELS_ENV, "")
    try:
        found = json.loads(text) if text else {}
    except json.JSONDecodeError:
        logger.warning("%s is not JSON (%r): its labels are left out", PIPELINE_LABELS_ENV, text)
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def quoted(text: str) -> str:
    """``text`` as a string literal in a Vertex AI list filter."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
