"""One declaration per component parameter: the KFP signature in ``component.py``.

A component's parameters (names, types, defaults, docs) are written once, in the KFP function
of ``components/<name>/component.py``: that is what the compiled spec and the UI show. The
runtime takes them from there instead of keeping a second copy:

- ``runtime.run`` is decorated with ``@interface.defaults_from(__file__)``: a parameter the
  component declares is listed in ``run``'s signature by name only, and gets the component's
  type and default from ``component.py`` (read with ``ast``, so nothing here imports kfp);
- the component body forwards its parameters with ``interface.call(runtime.run, locals(),
  <artifact paths and conversions>)`` instead of naming each one again.

``tests/host/test_interfaces.py`` fails when the two sides disagree.
"""

from __future__ import annotations

import ast
import builtins
import copy
import functools
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

PARAMETER_TYPES = frozenset({"str", "int", "float", "bool", "list", "dict", "List", "Dict"})
"""Annotations of KFP parameters (values); anything else (``Input[...]``, ``Output[...]``,
``dsl.PipelineTaskFinalStatus``) is an artifact or a value the orchestrator fills in."""

_COMPONENT_PARAMETERS = "__component_parameters__"


class InterfaceError(TypeError):
    """A component's declaration and its runtime do not fit together."""


def _function(component_py: str | Path, function_name: str) -> ast.FunctionDef:
    path = Path(component_py)
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function_name:
            return node
    raise InterfaceError(f"{path} defines no function {function_name!r}")


def _base_name(annotation: ast.expr | None) -> str:
    """``str`` for ``str``, ``List`` for ``List[str]`` / ``typing.List[str]``, "" when absent."""
    if isinstance(annotation, ast.Subscript):
        annotation = annotation.value
    if isinstance(annotation, ast.Attribute):
        return annotation.attr
    if isinstance(annotation, ast.Name):
        return annotation.id
    return ""


def _arguments(function: ast.FunctionDef) -> list[tuple[ast.arg, ast.expr | None]]:
    """Every argument with its default expression (None when it has none)."""
    args = function.args
    positional = args.posonlyargs + args.args
    padded = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    return list(zip(positional, padded, strict=True)) + list(
        zip(args.kwonlyargs, args.kw_defaults, strict=True)
    )


def parameters(component_py: str | Path, function_name: str) -> dict[str, str]:
    """The component's KFP parameters (values, not artifacts): ``{name: annotation source}``,
    in declaration order."""
    return {
        arg.arg: ast.unparse(arg.annotation)
        for arg, _ in _arguments(_function(component_py, function_name))
        if _base_name(arg.annotation) in PARAMETER_TYPES
    }


def defaults(component_py: str | Path, function_name: str) -> dict[str, Any]:
    """The literal defaults of the component's KFP parameters, read from its source.

    Artifacts (``data: Input[Dataset] = None``) are not parameters and are left out; so are
    parameters without a default. A default that is not a literal (a constant such as
    ``images.X``, a call) is refused: KFP compiles the value, so the source must show it.

    Raises:
        InterfaceError: the function is missing or a parameter's default is not a literal.
    """
    declared = parameters(component_py, function_name)
    values = {}
    for arg, default in _arguments(_function(component_py, function_name)):
        if arg.arg not in declared or default is None:
            continue
        try:
            values[arg.arg] = ast.literal_eval(default)  # handles -1, lists, dicts, None
        except ValueError as exc:
            raise InterfaceError(
                f"{component_py}: the default of {function_name}({arg.arg}=...) is "
                f"{ast.unparse(default)!r}, not a literal; write the value itself"
            ) from exc
    return values


def _annotation(source: str) -> Any:
    """The builtin type for ``str``/``int``/...; the annotation's source text otherwise."""
    value = getattr(builtins, source, None)
    return value if isinstance(value, type) else source


def defaults_from(runtime_file: str | Path) -> Callable[[Callable], Callable]:
    """Decorates ``runtime.run`` with the parameters its ``component.py`` declares.

    ``runtime_file`` is the runtime module's ``__file__``; the component is the function named
    like the folder in ``component.py`` beside it. A parameter the component declares is
    listed in ``run``'s signature by name only (keyword-only, no annotation, no default): a
    call that omits it gets the component's default (a fresh copy of a list or dict), and
    ``inspect.signature(run)`` shows the component's type and default. Runtime-only
    parameters (paths, test hooks) keep their own. A parameter whose runtime meaning differs
    on purpose may keep a runtime default (deploy_model's replicas: KFP has no optional int,
    so -1 in the spec is None in Python); that one is the runtime's, not the component's.

    Raises:
        InterfaceError: at import, when ``run`` takes a declared parameter positionally.
    """
    folder = Path(runtime_file).resolve().parent
    component_py, name = folder / "component.py", folder.name
    declared = parameters(component_py, name)
    declared_defaults = defaults(component_py, name)

    def decorate(run: Callable) -> Callable:
        signature = inspect.signature(run)
        fill: dict[str, Any] = {}
        shown = []
        for parameter in signature.parameters.values():
            if parameter.name in declared:
                if parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
                    raise InterfaceError(
                        f"{run.__module__}.run must take {parameter.name!r} as keyword-only "
                        f"(after *), as every component parameter"
                    )
                if parameter.default is inspect.Parameter.empty and parameter.name in declared_defaults:
                    fill[parameter.name] = declared_defaults[parameter.name]
                    parameter = parameter.replace(default=declared_defaults[parameter.name])
                if parameter.annotation is inspect.Parameter.empty:
                    parameter = parameter.replace(annotation=_annotation(declared[parameter.name]))
            shown.append(parameter)

        @functools.wraps(run)
        def wrapper(*args, **kwargs):
            for key, value in fill.items():
                if key not in kwargs:
                    kwargs[key] = copy.deepcopy(value)
            # Through __wrapped__ (functools' name for the decorated function), so a test can
            # put a recorder there and see exactly what run receives.
            return wrapper.__wrapped__(*args, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=shown)
        setattr(wrapper, _COMPONENT_PARAMETERS, tuple(declared))
        return wrapper

    return decorate


def call(run: Callable, parameters: Mapping[str, Any], /, **explicit: Any) -> Any:
    """Calls ``run`` with the component's parameters taken from ``parameters`` (the body's
    ``locals()``), plus ``explicit`` keyword arguments (artifact paths and URIs, converted
    values), which win over a parameter of the same name.

    Only names the component declares as KFP parameters are taken (never artifacts, nor a
    None-valued optional artifact, nor the body's own imports), and only those ``run``
    accepts; tests/host/test_interfaces.py makes sure ``run`` accepts every one.

    Raises:
        InterfaceError: ``run`` is not decorated with ``defaults_from``.
    """
    declared = getattr(run, _COMPONENT_PARAMETERS, None)
    if declared is None:
        raise InterfaceError(
            f"{getattr(run, '__module__', run)}.{getattr(run, '__name__', '')} is not decorated "
            "with interface.defaults_from(__file__), so its component's parameters are unknown"
        )
    accepted = inspect.signature(run).parameters
    arguments = {name: parameters[name] for name in declared if name in parameters and name in accepted}
    arguments.update(explicit)
    return run(**arguments)
