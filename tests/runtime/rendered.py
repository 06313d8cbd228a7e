"""The manifests as a user applies them (``kubectl kustomize``), for the runtime tests that run
their containers' commands.

The image has no kubectl; the host venv's (requirements/host.txt installs it, a static binary)
is in the checkout that scripts/in-runtime.sh mounts, so these tests never skip for want of it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl") or shutil.which("kubectl", path=str(ROOT / ".venv" / "bin"))


def render(overlay: str) -> dict[str, list[dict]]:
    """``kubectl kustomize manifests/<overlay>``, by kind."""
    assert KUBECTL, "kubectl is missing: run scripts/setup-venv.sh (requirements/host.txt installs it)"
    out = subprocess.run(
        [KUBECTL, "kustomize", str(ROOT / "manifests" / overlay)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": os.environ.get("HOME", "/tmp")},
    ).stdout
    by_kind: dict[str, list[dict]] = {}
    for doc in yaml.safe_load_all(out):
        if doc:
            by_kind.setdefault(doc["kind"], []).append(doc)
    return by_kind


def command(container: dict, values: dict[str, str]) -> list[str]:
    """The container's ``command + args`` with each ``--flag=value`` whose value is a key of
    ``values`` (or whose flag is) replaced. Fails unless every key was used exactly once, so a
    manifest that stops passing one of them fails the test instead of being run unchanged."""
    used = dict.fromkeys(values, 0)
    args = []
    for arg in container.get("args", []):
        flag, sep, value = arg.partition("=")
        key = value if value in values else flag if flag in values else None
        if sep and key is not None:
            used[key] += 1
            arg = f"{flag}={values[key]}"
        args.append(arg)
    assert all(n == 1 for n in used.values()), (
        f"expected each of {sorted(values)} once in {container['args']}"
    )
    assert not any("{{" in a for a in args), f"an unfilled KServe placeholder is left in {args}"
    return [*container["command"], *args]
