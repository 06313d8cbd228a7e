"""What produced a registered model, read from MLflow only (its REST API: the host has no
mlflow package): ``python -m launch lineage --model NAME@ALIAS`` (or ``NAME/VERSION``); and
``python -m launch reproduce``, which re-runs its training and evaluation in the runtime image."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from components.registry import LINEAGE_FILES, lineage_tag, parse_model_ref


def _get(tracking_uri: str, path: str, **query) -> dict:
    url = f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        body = exc.read()[:300].decode(errors="replace")
        raise ValueError(f"MLflow at {tracking_uri} answered {exc.code} for {path} {query}: {body}") from exc


def lineage(tracking_uri: str, model: str) -> dict:
    """The lineage record of ``model`` ("name@alias" or "name/version")."""
    name, alias, number = parse_model_ref(model)
    if alias:
        version = _get(tracking_uri, "registered-models/alias", name=name, alias=alias)["model_version"]
    else:
        version = _get(tracking_uri, "model-versions/get", name=name, version=number)["model_version"]
    tags = {t["key"]: t["value"] for t in version.get("tags", [])}
    record = {
        "model": name,
        "version": version["version"],
        "aliases": version.get("aliases", []),
        "source": version.get("source", ""),
        "data": {"uri": tags.get("data_uri", ""), "fingerprint": tags.get("data_hash", "")},
        "stored": {key: tags[lineage_tag(key)] for key in LINEAGE_FILES if lineage_tag(key) in tags},
        "pipeline_run_id": tags.get("pipeline_run_id", ""),
        "pipeline_artifacts": json.loads(tags.get("pipeline_artifact_uris", "{}")),
        "image_version": tags.get("image_version", ""),
        "evaluation": {k[len("evaluation."):]: v for k, v in tags.items() if k.startswith("evaluation.")},
        "replaced_version": tags.get("replaced_version", ""),
        "hyperparameters": {},
    }
    if tags.get("training_run_id"):
        run = _get(tracking_uri, "runs/get", run_id=tags["training_run_id"])["run"]
        record["hyperparameters"] = {p["key"]: p["value"] for p in run["data"].get("params", [])}
    return record


def reproduce(tracking_uri: str, model: str) -> dict:
    """Re-runs training and evaluation from the lineage record in the runtime image on this
    machine's CPU (components/reproduce.py); returns its comparison record."""
    import os

    import docker

    from components import images

    data_uri = lineage(tracking_uri, model)["data"]["uri"]
    volumes = {}
    if data_uri and "://" not in data_uri:  # local data: the container sees the same path
        folder = os.path.dirname(os.path.abspath(data_uri))
        volumes[folder] = {"bind": folder, "mode": "ro"}
    module = "components.reproduce"
    command = ["python", "-m", module, "--tracking-uri", tracking_uri, "--model", model]
    try:
        out = docker.from_env().containers.run(
            images.RUNTIME, command, network_mode="host", volumes=volumes, remove=True
        )
    except docker.errors.ContainerError as exc:
        raise ValueError(f"reproducing {model} failed: {(exc.stderr or b'').decode()[-2000:]}") from exc
    return json.loads(out.decode().strip().splitlines()[-1])  # the record is the last line


def render_reproduction(record: dict) -> str:
    lines = [f"{record['model']} version {record['version']} re-trained on {record['data_uri']}",
             f"  {'metric':<24} {'recorded':>12} {'reproduced':>12} {'difference':>12}"]
    for name, m in record["metrics"].items():
        lines.append(f"  {name:<24} {m['recorded']:>12.6f} {m['reproduced']:>12.6f} {m['difference']:>12.2e}")
    return "\n".join(lines)


def render(record: dict) -> str:
    """A person's reading of the record."""
    lines = [
        f"{record['model']} version {record['version']}"
        + (f" (@{', @'.join(record['aliases'])})" if record["aliases"] else ""),
        f"  model files      {record['source']}",
        f"  data             {record['data']['uri']}",
        f"  fingerprint      {record['data']['fingerprint']}",
    ]
    lines += [f"  {key:<16} {uri}" for key, uri in record["stored"].items()]
    lines += [
        f"  pipeline run     {record['pipeline_run_id']}",
        f"  image version    {record['image_version']}",
        f"  replaced version {record['replaced_version'] or '(none: first production version)'}",
    ]
    if record["evaluation"]:
        lines.append("  evaluation")
        lines += [f"    {key} = {value}" for key, value in sorted(record["evaluation"].items())]
    if record["hyperparameters"]:
        lines.append("  hyperparameters")
        lines += [f"    {key} = {value}" for key, value in sorted(record["hyperparameters"].items())]
    return "\n".join(lines)
