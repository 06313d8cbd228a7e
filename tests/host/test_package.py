"""The project as another team gets it: the wheel, installed with its declared dependencies into
a fresh virtual environment outside the checkout, used by a pipeline of that team's own."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from kfp import compiler, dsl

from components import fingerprint_data, images

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "components", "launch", "pipelines", "manifests")
"""What the wheel is built from (images/runtime/Dockerfile copies the same)."""
REGISTRY, TAG = "registry.example.com/team-a/ct", "2026.11-rc1"


def run(command, **kwargs) -> subprocess.CompletedProcess:
    # The venv's own interpreter, nothing from the checkout: no PYTHONPATH, cwd elsewhere.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    result = subprocess.run(command, capture_output=True, text=True, env=env, **kwargs)
    assert result.returncode == 0, f"{command}: {result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """The bin/ folder of a fresh venv holding only the wheel and what it declares."""
    tmp = tmp_path_factory.mktemp("package")
    started = time.monotonic()
    # Built from a copy: building in the checkout writes build/ there, and a stale build/lib
    # could put files in the wheel that the sources no longer have.
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, src / name)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp / "dist"), str(src)])
    (wheel,) = (tmp / "dist").glob("kfp_continuous_training-*.whl")
    built = time.monotonic()
    # No pip of its own: the host's pip installs into it (--python), with the host's pip
    # configuration and cache; --no-compile because byte-compiling google-cloud-aiplatform
    # is most of an install's time and these tests import a small part of it.
    run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "venv")])
    run([sys.executable, "-m", "pip", "--python", str(tmp / "venv" / "bin" / "python"), "install",
         "--quiet", "--no-compile", "--progress-bar", "off", str(wheel)])
    print(f"wheel built in {built - started:.1f} s, installed in {time.monotonic() - built:.1f} s")
    return tmp / "venv" / "bin"


USER_PIPELINE = '''
from kfp import compiler, dsl

from components import images

images.use({registry!r}, tag={tag!r})  # the one call: every component, before any pipeline

from components import compute_statistics, fingerprint_data, infer_schema  # noqa: E402


@dsl.pipeline(name="team-a-schema")
def team_a_schema(data_uri: str, label: str = "churned"):
    data = fingerprint_data(data_uri=data_uri).set_caching_options(False)
    stats = compute_statistics(data_uri=data.outputs["data_uri"],
                               data_fingerprint=data.outputs["fingerprint"])
    infer_schema(statistics=stats.outputs["statistics"], label=label)


compiler.Compiler().compile(team_a_schema, "team_a_schema.yaml")
'''


def test_a_users_pipeline_compiles_with_the_chosen_registry_and_tag(venv, tmp_path):
    (tmp_path / "team_a_schema.py").write_text(USER_PIPELINE.format(registry=REGISTRY, tag=TAG))
    run([str(venv / "python"), "team_a_schema.py"], cwd=tmp_path)

    spec = yaml.safe_load((tmp_path / "team_a_schema.yaml").read_text())
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"fingerprint-data", "compute-statistics", "infer-schema"}
    used = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert used == {images.reference(images.RUNTIME, REGISTRY, TAG)}
    assert used == {f"{REGISTRY}/{images.RUNTIME.split(':')[0]}:{TAG}"}


def test_the_library_comes_from_the_venv_with_its_package_data(venv, tmp_path):
    probe = textwrap.dedent("""
        import json
        from importlib.resources import files
        import components, launch, pipelines
        from components import kserve
        shipped = files("pipelines")
        print(json.dumps({
            "modules": [m.__file__ for m in (components, launch, pipelines)],
            "template": kserve.template_path(),
            "component_yaml": files("components").joinpath("train_model/component.yaml").is_file(),
            "goldens": [shipped.joinpath(f).is_file() for f in ("training.yaml", "schedules.yaml")],
        }))
    """)
    found = json.loads(run([str(venv / "python"), "-c", probe], cwd=tmp_path).stdout)
    site = venv.parent / "lib"
    for module in found["modules"]:
        assert Path(module).is_relative_to(site), module
    template = Path(found["template"])
    assert template.is_relative_to(site), template
    assert template.read_text() == (ROOT / "manifests/kserve/base/inferenceservice.yaml").read_text()
    assert found["component_yaml"] and all(found["goldens"])


def test_the_kfp_ct_command_runs_from_the_venv(venv, tmp_path):
    usage = run([str(venv / "kfp-ct"), "--help"], cwd=tmp_path).stdout
    for command in ("submit", "schedules", "serve", "lineage", "reproduce"):
        assert command in usage


def test_use_retargets_the_components_and_pipelines_defined_after_it(tmp_path):
    try:
        images.use(REGISTRY, tag=TAG)

        @dsl.pipeline(name="two-images")
        def two_images(data_uri: str):
            fingerprint_data(data_uri=data_uri)
            fingerprint_data(data_uri=data_uri).set_container_image(images.TRAINER_GPU)

        compiler.Compiler().compile(two_images, str(tmp_path / "two.yaml"))
    finally:
        images.use()
    spec = yaml.safe_load((tmp_path / "two.yaml").read_text())
    used = sorted(e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values())
    assert used == sorted(f"{REGISTRY}/{image.split(':')[0]}:{TAG}" for image in images.ALL)
    # use() restores the project's images: later pipelines (and the goldens) are untouched.
    assert (images.RUNTIME, images.TRAINER_GPU) == images.ALL
    assert fingerprint_data.component_spec.implementation.container.image == images.RUNTIME


@pytest.mark.parametrize(
    ("registry", "expected"),
    [
        ("localhost:5000", "localhost:5000/NAME:TAG"),
        ("europe-docker.pkg.dev/acme/ct/", "europe-docker.pkg.dev/acme/ct/NAME:TAG"),
        ("", "NAME:TAG"),
    ],
)
def test_reference_forms(registry, expected):
    name = images.RUNTIME.split(":")[0]
    assert images.reference(images.RUNTIME, registry, "TAG") == expected.replace("NAME", name)


@pytest.mark.parametrize(
    ("registry", "tag", "named"),
    [("https://reg.example/ct", None, "'https://reg.example/ct'"),
     ("reg.example/Team", None, "'reg.example/Team'"),
     ("reg.example/ct:1.0", None, "'reg.example/ct:1.0'"),
     ("reg.example/ct", "1.0/x", "'1.0/x'"),
     ("reg.example/ct", "-rc", "'-rc'")],
)
def test_malformed_registries_and_tags_are_refused_and_change_nothing(registry, tag, named):
    with pytest.raises(ValueError, match=named):
        images.use(registry, tag=tag)
    assert (images.RUNTIME, images.TRAINER_GPU) == images.ALL
    assert fingerprint_data.component_spec.implementation.container.image == images.RUNTIME
