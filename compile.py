"""Compiles every pipeline in pipelines/ to its committed golden spec.

    python compile.py                 write pipelines/<name>.yaml
    python compile.py --check         fail (exit 1) when a golden is stale, naming it
    python compile.py --image-registry REG --output-dir DIR
                                      specs whose images live in your registry, goldens untouched
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
from kfp.dsl.graph_component import GraphComponent

from components import images

ROOT = Path(__file__).resolve().parent
PIPELINES_DIR = ROOT / "pipelines"


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


def retarget_images(spec_text: str, registry: str | None, tag: str | None) -> str:
    """Rewrites this project's image references (only those) for another registry or tag."""
    documents = list(yaml.safe_load_all(spec_text))
    for executor in documents[0].get("deploymentSpec", {}).get("executors", {}).values():
        container = executor.get("container")
        if container and container.get("image") in images.ALL:
            name, _, version = container["image"].partition(":")
            container["image"] = f"{registry.rstrip('/') + '/' if registry else ''}{name}:{tag or version}"
    return yaml.safe_dump_all(documents, sort_keys=True)


def compile_to(pipeline: GraphComponent, path: Path) -> None:
    compiler.Compiler().compile(pipeline, package_path=str(path))


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

    stale = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, pipeline in discover().items():
            fresh = Path(tmp) / f"{name}.yaml"
            compile_to(pipeline, fresh)
            text = fresh.read_text()
            if retarget:
                args.output_dir.mkdir(parents=True, exist_ok=True)
                target = args.output_dir / f"{name}.yaml"
                target.write_text(retarget_images(text, args.image_registry, args.image_tag))
                print(f"wrote {target}")
                continue
            golden = PIPELINES_DIR / f"{name}.yaml"
            if args.check:
                if not golden.exists() or golden.read_text() != text:
                    stale.append(golden.relative_to(ROOT))
                continue
            if not golden.exists() or golden.read_text() != text:
                golden.write_text(text)
                print(f"wrote {golden.relative_to(ROOT)}")
    if stale:
        for path in stale:
            print(f"stale compiled spec: {path}", file=sys.stderr)
        print("run `python compile.py` and commit the result", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
