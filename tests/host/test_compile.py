import shutil
import subprocess
import sys
from pathlib import Path

import yaml

import compile as compile_module
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


def test_check_names_a_stale_spec_and_the_fix(tmp_path, monkeypatch, capsys):
    pipelines_dir = tmp_path / "pipelines"
    shutil.copytree(ROOT / "pipelines", pipelines_dir)
    golden = pipelines_dir / f"{next(iter(compile_module.discover()))}.yaml"
    golden.write_text(golden.read_text().replace("sdkVersion", "sdkVersionX"))
    monkeypatch.setattr(compile_module, "PIPELINES_DIR", pipelines_dir)
    monkeypatch.setattr(compile_module, "ROOT", tmp_path)

    assert compile_module.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert f"stale compiled spec: pipelines/{golden.name}" in err
    assert "python compile.py" in err


def test_retargeting_images_writes_elsewhere_and_keeps_goldens(tmp_path):
    goldens = [ROOT / "pipelines" / f"{name}.yaml" for name in compile_module.discover()]
    before = {p.name: p.read_bytes() for p in goldens}
    out = tmp_path / "specs"
    assert compile_module.main(
        ["--image-registry", "europe-docker.pkg.dev/acme/ct", "--image-tag", "7", "--output-dir", str(out)]
    ) == 0
    assert before == {p.name: p.read_bytes() for p in goldens}
    for name in before:
        spec = next(yaml.safe_load_all((out / name).read_text()))
        used = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
        assert used, name
        for image in used:
            assert image.startswith("europe-docker.pkg.dev/acme/ct/kfp-ct-"), image
            assert image.endswith(":7"), image


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
