"""The only place that names a container image.

Every component's ``base_image`` comes from here. The tags are ``VERSION`` plus ``LOCK``, a
digest of the images' lock files, so a new dependency version is a new tag and shows in the
compiled specs (scripts/lock-requirements.sh regenerates the locks and sets ``LOCK``). To run
on a cluster, push the images to your registry, then
either, in your own pipeline code, one call before the pipeline is defined::

    from components import images, train_model, validate_data
    images.use("europe-docker.pkg.dev/acme/ct", tag="0.1.0")

or, for this project's compiled specs and component.yaml files,
``python compile.py --image-registry REGISTRY [--image-tag TAG] --output-dir DIR``.

This module stays importable without its package (``runpy.run_path``, scripts/in-runtime.sh).
"""

import hashlib
import re
from pathlib import Path

VERSION = "0.1.0"

LOCK = "c85542998ac1"
"""``lock_digest`` of the lock files the images were built from (kept literal: nothing is read
at import, so compiled specs are the same everywhere)."""

LOCK_FILES = ("images/runtime/requirements.lock", "images/trainer-gpu/requirements.lock")
"""Every package of the images at an exact version with its hashes, relative to the checkout."""

TAG = f"{VERSION}-{LOCK}"
"""The images' tag: the project version and the locks they were built from."""

RUNTIME = f"kfp-ct-runtime:{TAG}"
"""CPU runtime: TFDV, TensorFlow, MLflow, KServe, kfp executor (images/runtime)."""

TRAINER_GPU = f"kfp-ct-trainer-gpu:{TAG}"
"""The runtime plus the CUDA libraries TensorFlow needs (images/trainer-gpu)."""

ALL = (RUNTIME, TRAINER_GPU)
"""This project's images as built (no registry, ``TAG``), whatever ``use`` chose."""


def lock_digest(root: str | Path) -> str:
    """The first 12 hex digits of the SHA-256 of ``LOCK_FILES`` under ``root``, in order."""
    digest = hashlib.sha256()
    for name in LOCK_FILES:
        digest.update((Path(root) / name).read_bytes())
    return digest.hexdigest()[:12]

# Docker's reference grammar, simplified: host[:port] then lowercase path components; no
# scheme, tag or digest (those would make "<registry>/<name>:<tag>" a different image).
_REGISTRY = re.compile(r"[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def reference(image: str, registry: str | None = None, tag: str | None = None) -> str:
    """``image`` (one of ``ALL``) as pulled from ``registry`` with ``tag``.

    Args:
        image: One of ``ALL``.
        registry: e.g. ``europe-docker.pkg.dev/acme/ct`` or ``localhost:5000``; empty or None:
            no registry.
        tag: The tag; empty or None: the image's own (``TAG``).

    Raises:
        ValueError: naming an image that is not ours, or a malformed registry or tag.
    """
    if image not in ALL:
        raise ValueError(f"{image!r} is not one of this project's images {ALL}")
    registry = (registry or "").rstrip("/")
    if registry and not _REGISTRY.fullmatch(registry):
        raise ValueError(
            f"image registry {registry!r} is not of the form host[:port][/path] "
            "(no scheme, tag or digest), e.g. europe-docker.pkg.dev/acme/ct"
        )
    if tag and not _TAG.fullmatch(tag):
        raise ValueError(f"image tag {tag!r} is not a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})")
    name, _, version = image.partition(":")
    return f"{registry + '/' if registry else ''}{name}:{tag or version}"


def use(registry: str | None = None, tag: str | None = None) -> None:
    """Points the components, and every pipeline defined after this call, at your images.

    One call instead of ``set_container_image`` on every task: it sets ``RUNTIME`` and
    ``TRAINER_GPU`` and the image of every component exported by ``components``. A pipeline
    takes its tasks' images when it is defined (``@dsl.pipeline`` runs the function), so call
    this first, before defining your pipelines or importing this project's ``pipelines``.
    Nothing is read from the environment: the compiled spec follows the calls alone. Each
    call starts from the project's images; ``use()`` restores them.

    Args:
        registry: Where you pushed the images, e.g. ``europe-docker.pkg.dev/acme/ct``; empty:
            none (the images as built).
        tag: Their tag; empty: ``TAG``.

    Raises:
        ValueError: a malformed registry or tag (nothing is changed then).
    """
    global RUNTIME, TRAINER_GPU
    chosen = {image: reference(image, registry, tag) for image in ALL}
    project_image = {RUNTIME: ALL[0], TRAINER_GPU: ALL[1]}  # from the previous call's names
    # Imported here: the package imports this module before its components exist.
    import components

    for name in components.__all__:
        container = getattr(components, name).component_spec.implementation.container
        container.image = chosen[project_image[container.image]]
    RUNTIME, TRAINER_GPU = chosen[ALL[0]], chosen[ALL[1]]
