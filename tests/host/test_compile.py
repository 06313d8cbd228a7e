import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kfp import compiler, dsl
from kfp import components as kfp_components

import compile as compile_module
import components
from components import images

ROOT = Path(compile_module.__file__).parent


def test_goldens_are_fresh():
    assert compile_module.main(["--check"]) == 0


def test_every_pipeline_has_a_golden():
    names = set(compile_module.discover())
    assert names, "no pipeline discovered"
    for name in names:
        assert (ROOT / "pipelines" / f"{name}.yaml").is_file(), name


def test_compilation_is_byte_deterministic_across_processes():
    # Separate interpreters: hash seeds (and protobuf map order) differ between processes.
    for _ in range(2):
        check = [sys.executable, "compile.py", "--check"]
        result = subprocess.run(check, cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def test_every_component_has_a_golden_component_yaml():
    for name in components.__all__:
        spec = yaml.safe_load((ROOT / "components" / name / "component.yaml").read_text())
        assert spec["pipelineInfo"]["name"] == name.replace("_", "-")


def test_component_yamls_work_in_a_users_pipeline(tmp_path):
    loaded = {
        name: kfp_components.load_component_from_file(str(ROOT / "components" / name / "component.yaml"))
        for name in ("fingerprint_data", "compute_statistics", "infer_schema")
    }

    @dsl.pipeline(name="users-schema")
    def users_schema(data_uri: str):
        data = loaded["fingerprint_data"](data_uri=data_uri)
        stats = loaded["compute_statistics"](
            data_uri=data.outputs["data_uri"], data_fingerprint=data.outputs["fingerprint"]
        )
        loaded["infer_schema"](statistics=stats.outputs["statistics"], label="churned")

    compiler.Compiler().compile(users_schema, str(tmp_path / "users.yaml"))
    spec = yaml.safe_load((tmp_path / "users.yaml").read_text())
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["compute-statistics"]["inputs"]["parameters"]["data_fingerprint"]["taskOutputParameter"] == {
        "outputParameterKey": "fingerprint", "producerTask": "fingerprint-data"
    }
    assert tasks["infer-schema"]["inputs"]["artifacts"]["statistics"]["taskOutputArtifact"] == {
        "outputArtifactKey": "statistics", "producerTask": "compute-statistics"
    }
    # The same container as the Python component: image, command and the inlined function.
    for name in loaded:
        golden = yaml.safe_load((ROOT / "components" / name / "component.yaml").read_text())
        (expected,) = golden["deploymentSpec"]["executors"].values()
        executor = spec["deploymentSpec"]["executors"][f"exec-{name.replace('_', '-')}"]
        assert executor == expected
        assert executor["container"]["image"] == images.RUNTIME


def test_check_names_a_stale_spec_and_the_fix(tmp_path, monkeypatch, capsys):
    relatives = list(compile_module.goldens())
    for relative in relatives:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / relative, tmp_path / relative)
    monkeypatch.setattr(compile_module, "ROOT", tmp_path)
    assert compile_module.main(["--check"]) == 0
    stale = [next(r for r in relatives if r.startswith(prefix)) for prefix in ("pipelines/", "components/")]
    for relative in stale:
        golden = tmp_path / relative
        golden.write_text(golden.read_text().replace("sdkVersion", "sdkVersionX"))

    assert compile_module.main(["--check"]) == 1
    err = capsys.readouterr().err
    for relative in stale:
        assert f"stale compiled spec: {relative}" in err
    assert "python compile.py" in err


def test_retargeting_images_writes_elsewhere_and_keeps_goldens(tmp_path):
    goldens = [ROOT / relative for relative in compile_module.goldens()]
    before = {p: p.read_bytes() for p in goldens}
    out = tmp_path / "specs"
    assert compile_module.main(
        ["--image-registry", "europe-docker.pkg.dev/acme/ct", "--image-tag", "7", "--output-dir", str(out)]
    ) == 0
    assert before == {p: p.read_bytes() for p in goldens}
    for golden in goldens:
        spec = next(yaml.safe_load_all((out / golden.relative_to(ROOT)).read_text()))
        used = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
        assert used, golden
        for image in used:
            assert image.startswith("europe-docker.pkg.dev/acme/ct/kfp-ct-"), image
            assert image.endswith(":7"), image


def test_a_malformed_registry_is_refused_by_name(capsys):
    with pytest.raises(SystemExit):
        compile_module.main(["--image-registry", "https://reg.example", "--output-dir", "unused"])
    assert "'https://reg.example'" in capsys.readouterr().err


def test_retarget_leaves_foreign_images_alone():
    text = yaml.safe_dump(
        {
            "deploymentSpec": {
                "executors": {
                    "a": {"container": {"image": images.RUNTIME}},
                    "b": {"container": {"image": "alpine:3.20"}},
                }
            }
        }
    )
    spec = yaml.safe_load(compile_module.retarget_images(text, "reg.example/x", None))
    executors = spec["deploymentSpec"]["executors"]
    assert executors["a"]["container"]["image"] == f"reg.example/x/{images.RUNTIME}"
    assert executors["b"]["container"]["image"] == "alpine:3.20"
