"""Each component parameter is declared once: in the KFP signature of ``component.py``.

``runtime.run`` lists a component parameter by name only (no type, no default: those come from
the component through ``interface.defaults_from``), accepts every one of them (so
``interface.call`` drops none), and the component body forwards them with
``interface.call(runtime.run, locals(), ...)`` instead of a hand-written copy of the list.
Read from the source, so the host needs none of the runtime's libraries.
"""

import ast
import inspect
from pathlib import Path

import pytest

import components
from components import interface

ROOT = Path(components.__file__).resolve().parent
FOLDERS = sorted(p.name for p in ROOT.iterdir() if (p / "component.py").exists())
DIFFERENT_BY_DESIGN = {
    # KFP has no optional integers: -1 in the interface means "not set", None in Python.
    ("deploy_model", "min_replicas"): (-1, None),
    ("deploy_model", "max_replicas"): (-1, None),
}


def function(path: Path, name: str) -> ast.FunctionDef:
    body = ast.parse(path.read_text()).body
    return next(n for n in body if isinstance(n, ast.FunctionDef) and n.name == name)


def runtime_run(folder: str) -> ast.FunctionDef:
    return function(ROOT / folder / "runtime.py", "run")


def declared(folder: str) -> dict[str, str]:
    return interface.parameters(ROOT / folder / "component.py", folder)


def forwarding_call(folder: str) -> ast.Call:
    body = function(ROOT / folder / "component.py", folder)
    calls = [
        node
        for node in ast.walk(body)
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "interface.call"
    ]
    assert len(calls) == 1, f"{folder}: the body forwards with one interface.call(runtime.run, locals())"
    return calls[0]


@pytest.mark.parametrize("folder", FOLDERS)
def test_runtime_accepts_every_component_parameter(folder):
    run = runtime_run(folder)
    accepted = {a.arg for a in run.args.kwonlyargs}
    assert run.args.args == [] and run.args.kwarg is None, f"{folder}: run takes keyword-only arguments"
    assert [name for name in declared(folder) if name not in accepted] == []


@pytest.mark.parametrize("folder", FOLDERS)
def test_runtime_keeps_no_second_copy_of_a_declared_parameter(folder):
    run = runtime_run(folder)
    copies = []
    for arg, default in zip(run.args.kwonlyargs, run.args.kw_defaults, strict=True):
        if arg.arg not in declared(folder):
            continue
        if (folder, arg.arg) in DIFFERENT_BY_DESIGN:
            component_default, runtime_default = DIFFERENT_BY_DESIGN[(folder, arg.arg)]
            assert interface.defaults(ROOT / folder / "component.py", folder)[arg.arg] == component_default
            assert default is not None and ast.literal_eval(default) == runtime_default
            continue
        if default is not None:
            copies.append(f"{arg.arg} = {ast.unparse(default)}")
        if arg.annotation is not None:
            copies.append(f"{arg.arg}: {ast.unparse(arg.annotation)}")
    assert copies == [], f"{folder}/runtime.py repeats what component.py declares"


@pytest.mark.parametrize("folder", FOLDERS)
def test_runtime_run_takes_its_defaults_from_the_component(folder):
    decorators = [ast.unparse(d) for d in runtime_run(folder).decorator_list]
    assert "interface.defaults_from(__file__)" in decorators


@pytest.mark.parametrize("folder", FOLDERS)
def test_component_body_forwards_its_parameters_without_listing_them(folder):
    call = forwarding_call(folder)
    assert [ast.unparse(a) for a in call.args] == ["runtime.run", "locals()"]
    explicit = {k.arg: ast.unparse(k.value) for k in call.keywords}
    relisted = [name for name, value in explicit.items() if name in declared(folder) and value == name]
    assert relisted == [], f"{folder}: locals() already forwards {relisted}"
    # Explicit arguments must exist on run: interface.call would fail in the container otherwise.
    accepted = {a.arg for a in runtime_run(folder).args.kwonlyargs}
    assert sorted(set(explicit) - accepted) == []
    # KFP runs the body from its source alone: it must import what it uses itself.
    body = list(ast.walk(function(ROOT / folder / "component.py", folder)))
    imported = {(n.module, a.name) for n in body if isinstance(n, ast.ImportFrom) for a in n.names}
    assert ("components", "interface") in imported
    assert (f"components.{folder}", "runtime") in imported


def test_the_checks_see_parameters():
    """Guards the tests themselves: the big components declare many parameters."""
    assert len(declared("train_model")) >= 20 and len(declared("evaluate_model")) >= 20
    assert {"min_replicas", "resources"} <= set(declared("deploy_model"))
    assert "data" not in declared("train_model") and "status" not in declared("summarize_run")


COMPONENT = '''
from kfp import dsl
from components import images

@dsl.component(base_image=images.RUNTIME)
def fake(
    data: Input[Dataset],
    out: Output[Artifact],
    status: dsl.PipelineTaskFinalStatus,
    label: str,
    optional: Input[Artifact] = None,
    offset: int = -1,
    scale: float = -0.5,
    names: list = ["a", "b"],
    limits: dict = {"auc": 0.7},
    resources: dict = None,
    typed: List[str] = [],
    flag: bool = False,
):
    pass
'''


@pytest.fixture
def fake(tmp_path) -> Path:
    folder = tmp_path / "fake"
    folder.mkdir()
    (folder / "component.py").write_text(COMPONENT)
    return folder


def test_defaults_reads_literals_and_leaves_out_artifacts(fake):
    assert interface.defaults(fake / "component.py", "fake") == {
        "offset": -1, "scale": -0.5, "names": ["a", "b"], "limits": {"auc": 0.7}, "resources": None,
        "typed": [], "flag": False,
    }
    assert list(interface.parameters(fake / "component.py", "fake")) == [
        "label", "offset", "scale", "names", "limits", "resources", "typed", "flag",
    ]


def test_a_default_that_is_not_a_literal_is_refused(fake):
    (fake / "component.py").write_text("def fake(image: str = images.RUNTIME):\n    pass\n")
    with pytest.raises(interface.InterfaceError, match=r"images\.RUNTIME.*not a literal"):
        interface.defaults(fake / "component.py", "fake")
    with pytest.raises(interface.InterfaceError, match="no function 'other'"):
        interface.defaults(fake / "component.py", "other")


def test_decorated_run_gets_the_component_defaults(fake):
    @interface.defaults_from(fake / "runtime.py")
    def run(*, path: str, hook: int = 3, label, offset, names, limits, resources, flag):
        return dict(locals())

    signature = inspect.signature(run)
    assert signature.parameters["offset"].default == -1
    assert signature.parameters["offset"].annotation is int
    assert signature.parameters["label"].default is inspect.Parameter.empty  # required there too
    assert signature.parameters["hook"].default == 3  # runtime-only: its own

    received = [run(path="p", label="y"), run(path="p", label="y", offset=5)]
    assert received[0] == {
        "path": "p", "hook": 3, "label": "y", "offset": -1, "names": ["a", "b"],
        "limits": {"auc": 0.7}, "resources": None, "flag": False,
    }
    assert received[1]["offset"] == 5
    received[0]["names"].append("c")  # each call gets a fresh copy of a mutable default
    assert run(path="p", label="y")["names"] == ["a", "b"]
    with pytest.raises(TypeError, match="label"):
        run(path="p")


def test_call_forwards_only_the_parameters_run_accepts(fake):
    @interface.defaults_from(fake / "runtime.py")
    def run(*, data_path: str = "", label, offset, resources):
        return dict(locals())

    body_locals = {
        "data": object(), "optional": None, "status": object(), "label": "y", "offset": 2,
        "resources": None, "names": ["a"], "runtime": object(),
    }
    assert interface.call(run, body_locals, data_path="d", offset=-3) == {
        "data_path": "d", "label": "y", "offset": -3, "resources": None,
    }

    def undecorated(**kwargs):
        return kwargs

    with pytest.raises(interface.InterfaceError, match="not decorated"):
        interface.call(undecorated, body_locals)


def test_a_declared_parameter_must_be_keyword_only(fake):
    with pytest.raises(interface.InterfaceError, match="keyword-only"):
        interface.defaults_from(fake / "runtime.py")(lambda label, **kw: None)


COMPOSED = {
    "check_data": ("compute_statistics", "infer_schema", "validate_data"),
    "resolve_inputs": ("fingerprint_data", "resolve_baseline"),
}


@pytest.mark.parametrize("composite", sorted(COMPOSED))
def test_a_composite_declares_its_parts_parameters_with_their_defaults(composite):
    # A composite task must declare the parameters it forwards (KFP reads the signature), so
    # each is written twice: this keeps the two declarations one parameter.
    mine = getattr(components, composite).component_spec.inputs
    for part in COMPOSED[composite]:
        for name, spec in getattr(components, part).component_spec.inputs.items():
            if name in mine:
                assert (mine[name].default, mine[name].type) == (spec.default, spec.type), (
                    f"{composite}.{name} differs from {part}.{name}"
                )
