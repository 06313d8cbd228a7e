"""In the image, with kfp and every runtime library: ``runtime.run`` of each component shows
and receives the defaults of the compiled component spec (what the UI and a pipeline get),
with nothing written twice (tests/host/test_interfaces.py checks the source)."""

import importlib
import inspect

import pytest

import components

EMPTY = inspect.Parameter.empty
DIFFERENT_BY_DESIGN = {
    # KFP has no optional integers: -1 in the spec means "not set", None in Python.
    ("deploy_model", "min_replicas"): (-1, None),
    ("deploy_model", "max_replicas"): (-1, None),
}


PARAMETER_TYPES = {"String", "Integer", "Float", "Boolean", "List", "Struct"}


def spec_defaults(name: str) -> dict:
    """The compiled spec's default of every optional parameter (artifacts left out)."""
    inputs = getattr(components, name).component_spec.inputs or {}
    return {
        key: spec.default
        for key, spec in inputs.items()
        if spec.type in PARAMETER_TYPES and (spec.default is not None or spec.optional)
    }


@pytest.fixture(params=components.__all__)
def name(request) -> str:
    return request.param


@pytest.fixture
def runtime(name):
    return importlib.import_module(f"components.{name}.runtime")


def test_signature_shows_the_spec_defaults(name, runtime):
    parameters = inspect.signature(runtime.run).parameters
    expected = {
        key: DIFFERENT_BY_DESIGN.get((name, key), (default, default))[1]
        for key, default in spec_defaults(name).items()
    }
    assert {key: parameters[key].default for key in expected if key in parameters} == expected


def test_a_call_with_only_the_required_arguments_receives_the_spec_defaults(name, runtime, monkeypatch):
    received = {}
    monkeypatch.setattr(runtime.run, "__wrapped__", lambda **kwargs: received.update(kwargs))
    required = {
        key: f"<{key}>" for key, p in inspect.signature(runtime.run).parameters.items() if p.default is EMPTY
    }
    runtime.run(**required)
    expected = {k: v for k, v in spec_defaults(name).items() if (name, k) not in DIFFERENT_BY_DESIGN}
    assert {key: received.get(key, "<not passed>") for key in expected} == expected
    assert set(required) <= set(received)


def test_the_checks_see_the_defaults():
    """Guards the tests themselves: most parameters have a default in the big components."""
    assert len(spec_defaults("train_model")) >= 19 and len(spec_defaults("evaluate_model")) >= 20


def test_the_kfp_no_optional_int_case_stays_explicit():
    from components.deploy_model import runtime

    parameters = inspect.signature(runtime.run).parameters
    for key, (in_spec, in_python) in DIFFERENT_BY_DESIGN.items():
        assert components.deploy_model.component_spec.inputs[key[1]].default == in_spec
        assert parameters[key[1]].default is in_python
