"""Compiles every pipeline and every component to its committed golden spec.

    python compile.py                 write pipelines/<name>.yaml, components/<name>/component.yaml
    python compile.py --check         fail (exit 1) when a golden is stale, naming it
    python compile.py --image-registry REG [--image-tag TAG] --output-dir DIR
                                      the same specs, in DIR's pipelines/ and components/,
                                      with images from your registry; goldens untouched
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import tempfile
from pathlib import Path

import yaml
from kfp import compiler
from kfp.dsl.base_component import BaseComponent
from kfp.dsl.graph_component import GraphComponent

from components import images

ROOT = Path(__file__).resolve().parent


def discover() -> dict[str, GraphComponent]:
    """Every pipeline in pipelines/: module ``pipelines/<name>.py`` defines the pipeline ``<name>``
    (modules starting with "_" are helpers)."""
    import pipelines

    found = {}
    for info in sorted(pkgutil.iter_modules(pipelines.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"pipelines.{info.name}")
        pipeline = getattr(module, info.name, None)
        if not isinstance(pipeline, GraphComponent):
            raise SystemExit(f"pipelines/{info.name}.py must define the pipeline `{info.name}`")
        found[info.name] = pipeline
    return found


def goldens() -> dict[str, BaseComponent]:
    """Every committed spec, by its path under the project root, and what compiles to it:
    ``pipelines/<name>.yaml`` for each pipeline, ``components/<name>/component.yaml`` for each
    component (``kfp.components.load_component_from_file`` loads those)."""
    import components

    specs: dict[str, BaseComponent] = {f"pipelines/{name}.yaml": p for name, p in discover().items()}
    for name in components.__all__:
        specs[f"components/{name}/component.yaml"] = getattr(components, name)
    return specs


def retarget_images(spec_text: str, registry: str | None, tag: str | None) -> str:
    """Rewrites this project's image references (only those) for another registry or tag."""
    documents = list(yaml.safe_load_all(spec_text))
    for executor in documents[0].get("deploymentSpec", {}).get("executors", {}).values():
        container = executor.get("container")
        if container and container.get("image") in images.ALL:
            container["image"] = images.reference(container["image"], registry, tag)
    return yaml.safe_dump_all(documents, sort_keys=True)


def compile_to(spec: BaseComponent, path: Path) -> None:
    compiler.Compiler().compile(spec, package_path=str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when a committed spec is stale")
    parser.add_argument("--image-registry", help="e.g. us-docker.pkg.dev/my-project/ct")
    parser.add_argument("--image-tag", help="override the image tag (default: project version)")
    parser.add_argument("--output-dir", type=Path, help="where retargeted specs go")
    args = parser.parse_args(argv)

    retarget = bool(args.image_registry or args.image_tag)
    if retarget and not args.output_dir:
        parser.error("--image-registry/--image-tag need --output-dir (the goldens stay as they are)")
    if args.check and retarget:
        parser.error("--check compares the goldens; it takes no image options")

    if retarget:  # a malformed registry or tag fails here, before anything is compiled
        try:
            images.reference(images.ALL[0], args.image_registry, args.image_tag)
        except ValueError as exc:
            parser.error(str(exc))
    stale = []
    with tempfile.TemporaryDirectory() as tmp:
        for relative, spec in goldens().items():
            fresh = Path(tmp) / "spec.yaml"
            compile_to(spec, fresh)
            text = fresh.read_text()
            if retarget:
                target = args.output_dir / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(retarget_images(text, args.image_registry, args.image_tag))
                print(f"wrote {target}")
                continue
            golden = ROOT / relative
            if golden.exists() and golden.read_text() == text:
                continue
            if args.check:
                stale.append(relative)
            else:
                golden.write_text(text)
                print(f"wrote {relative}")
    if stale:
        for path in stale:
            print(f"stale compiled spec: {path}", file=sys.stderr)
        print("run `python compile.py` and commit the result", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
