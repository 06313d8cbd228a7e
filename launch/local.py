"""Run components and compiled pipelines on this machine with kfp.local's DockerRunner, in the
same images the cluster uses."""

from __future__ import annotations

import os
from pathlib import Path

from kfp import local


def init(pipeline_root: str | Path, *, enable_caching: bool = False) -> Path:
    """Points kfp.local at Docker and ``pipeline_root`` (created, made absolute).

    Containers run as the calling user, so every output under ``pipeline_root`` is owned by
    whoever started the run, and on the host network, so they reach the local MLflow and model
    servers on localhost.
    """
    root = Path(pipeline_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    runner = local.DockerRunner(user=f"{os.getuid()}:{os.getgid()}", network_mode="host")
    local.init(runner=runner, pipeline_root=str(root), enable_caching=enable_caching)
    return root
