"""Every component's compiled interface: image, no runtime pip install, documented I/O."""

import pytest
from kfp.dsl import base_component

import components
from components import images


@pytest.fixture(params=components.__all__)
def component(request) -> base_component.BaseComponent:
    return getattr(components, request.param)


def test_runs_in_a_project_image_without_installing_anything(component):
    container = component.component_spec.implementation.container
    assert container.image in images.ALL
    command = " ".join(container.command or [])
    assert "pip install" not in command
    assert "kfp.dsl.executor_main" in command


def test_docstring_documents_every_input_and_output(component):
    spec = component.component_spec
    assert spec.description, f"{component.name} has no docstring"
    for name, spec_input in (spec.inputs or {}).items():
        assert spec_input.description, f"{component.name}: input '{name}' is not documented"
    docstring = component.python_func.__doc__
    for name in spec.outputs or {}:
        if name != "Output":  # a return value is documented under Returns:
            assert f"{name}:" in docstring, f"{component.name}: output '{name}' is not documented"
