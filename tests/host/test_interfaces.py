"""A component's KFP interface and its runtime never disagree about a default: every parameter
both declare has the same default in ``component.py`` (what the spec and the UI show) and in
``runtime.run`` (what tests and Python callers get). Read from the source, so the host needs
none of the runtime's libraries."""

import ast
from pathlib import Path

import pytest

import components

ROOT = Path(components.__file__).resolve().parent
FOLDERS = sorted(p.name for p in ROOT.iterdir() if (p / "component.py").exists())
DIFFERENT_BY_DESIGN = {
    # KFP has no optional integers: -1 in the interface means "not set" (None) in the runtime.
    ("deploy_model", "min_replicas"): (-1, None),
    ("deploy_model", "max_replicas"): (-1, None),
}


def module_constants(path: Path) -> dict:
    """Module-level ``NAME = literal`` assignments, also through ``from components.x import``
    (``TRAINING, SERVING = ...`` included)."""
    tree = ast.parse(path.read_text())
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = node.value
                elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    constants.update(
                        {t.id: v for t, v in zip(target.elts, node.value.elts, strict=True)}
                    )
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("components."):
            source = ROOT.parent / (node.module.replace(".", "/") + ".py")
            if source.is_file():
                imported = module_constants(source)
                constants.update({a.name: imported[a.name] for a in node.names if a.name in imported})
    return constants


def runtime_defaults(folder: str) -> dict:
    tree = ast.parse((ROOT / folder / "runtime.py").read_text())
    constants = module_constants(ROOT / folder / "runtime.py")
    run = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run")
    defaults = {}
    for arg, default in zip(run.args.kwonlyargs, run.args.kw_defaults, strict=True):
        if default is not None:
            if isinstance(default, ast.Name) and default.id in constants:
                default = constants[default.id]
            defaults[arg.arg] = ast.literal_eval(default)
    return defaults


def same(a, b) -> bool:
    empty = (None, (), [], {}, "")
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a == b or (a in empty and b in empty and type(a) is not str and type(b) is not str)


@pytest.mark.parametrize("folder", FOLDERS)
def test_interface_and_runtime_defaults_agree(folder):
    interface = getattr(components, folder).component_spec.inputs or {}
    runtime = runtime_defaults(folder)
    shared = sorted(set(interface) & set(runtime))
    disagreements = []
    for name in shared:
        declared, used = interface[name].default, runtime[name]
        if declared is None or (folder, name) in DIFFERENT_BY_DESIGN:
            assert DIFFERENT_BY_DESIGN.get((folder, name), (declared, used)) == (declared, used)
            continue
        if not same(declared, used):
            disagreements.append(f"{name}: component {declared!r}, runtime {used!r}")
    assert disagreements == []


def test_the_check_sees_parameters():
    """Guards the test itself: the big components share many defaulted parameters."""
    shared = {
        f: set(getattr(components, f).component_spec.inputs or {}) & set(runtime_defaults(f))
        for f in FOLDERS
    }
    assert len(shared["train_model"]) >= 10 and len(shared["evaluate_model"]) >= 10
