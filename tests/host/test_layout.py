"""House rules that keep the tree navigable (see README, "Where things live")."""

import ast
import re
from pathlib import Path

import components
from components import images

ROOT = Path(components.__file__).resolve().parent.parent
COMPONENT_DIRS = sorted(
    p for p in (ROOT / "components").iterdir() if p.is_dir() and (p / "component.py").exists()
)
PYTHON_FILES = [
    p
    for p in ROOT.rglob("*.py")
    if not any(part in {".venv", "local_outputs", "build"} for part in p.parts)
]


def test_only_images_module_names_an_image():
    image_literal = re.compile(r"kfp-ct-(runtime|trainer-gpu)|base_image\s*=\s*['\"]")
    offenders = [
        str(p.relative_to(ROOT))
        for p in PYTHON_FILES
        if p != ROOT / "components" / "images.py" and image_literal.search(p.read_text())
    ]
    assert offenders == []


def test_every_component_folder_is_exported_under_its_own_name():
    names = [p.name for p in COMPONENT_DIRS]
    assert names, "no component folders found"
    assert sorted(components.__all__) == names
    for name in names:
        assert getattr(components, name).name == name.replace("_", "-")


def test_every_component_has_interface_and_runtime():
    for folder in COMPONENT_DIRS:
        assert (folder / "runtime.py").is_file(), f"{folder.name} has no runtime.py"


def test_runtime_modules_never_import_kfp():
    for folder in COMPONENT_DIRS:
        for path in folder.glob("*.py"):
            if path.name == "component.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    modules = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    modules = [node.module or ""]
                else:
                    continue
                assert not any(m == "kfp" or m.startswith("kfp.") for m in modules), path


def test_image_tags_follow_the_project_version_and_the_locks():
    for image in images.ALL:
        assert image.endswith(f":{images.VERSION}-{images.LOCK}")


SHARED = sorted(p.stem for p in (ROOT / "components").glob("*.py") if p.stem != "__init__")
"""The shared layer: top-level modules of components/ (URI layer, tables, schemas, model
contract, KServe client, model server, registry, verdicts, lineage keys)."""
ENTRY_POINTS = {"reproduce"}
"""Shared-layer modules that run components end to end by design (re-training from lineage)."""


def component_imports(path: Path) -> set[str]:
    """The ``components.<name>`` names a module imports (``from components import x`` too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + (
                [f"components.{a.name}" for a in node.names] if node.module == "components" else []
            )
        else:
            continue
        names |= {m.split(".")[1] for m in modules if m.startswith("components.")}
    return names


COMPOSITES = {
    "check_data": {"compute_statistics", "infer_schema", "validate_data"},
    "resolve_inputs": {"fingerprint_data", "resolve_baseline"},
    "train_model_on_kubeflow": {"train_model"},  # the launcher writes the job of train_model's entry point
    "train_model_on_vertex": {"train_model"},  # the launcher writes the job of train_model's entry point
}
"""Components that run other components' runtimes in one task by design (fewer pods, one heavy
import); each lists exactly the components it composes."""


def test_component_folders_import_only_the_shared_layer_and_themselves():
    offenders = []
    for folder in COMPONENT_DIRS:
        for path in folder.glob("*.py"):
            allowed = set(SHARED) | {folder.name} | COMPOSITES.get(folder.name, set())
            for name in component_imports(path) - allowed:
                offenders.append(f"{path.relative_to(ROOT)} imports components.{name}")
    assert offenders == []


def test_the_shared_layer_imports_no_component():
    folders = {p.name for p in COMPONENT_DIRS}
    offenders = [
        f"components/{name}.py imports components.{imported}"
        for name in SHARED
        if name not in ENTRY_POINTS
        for imported in component_imports(ROOT / "components" / f"{name}.py") & folders
    ]
    assert offenders == []
    assert {"uris", "kserve", "model_server", "model_io", "registry", "tfdv_io", "verdict"} <= set(SHARED)
