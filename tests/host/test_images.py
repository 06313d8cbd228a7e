"""The images install exactly their lock files, and the image tag names the locks."""

import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import components
from components import images

ROOT = Path(components.__file__).resolve().parent.parent
RUNTIME = ROOT / "images" / "runtime"
TRAINER = ROOT / "images" / "trainer-gpu"
RUNTIME_NAME = images.RUNTIME.partition(":")[0]
REGENERATE = "regenerate the locks with `bash scripts/lock-requirements.sh`"


def requirements(path: Path) -> list[Requirement]:
    """The requirements of a human-edited requirements.txt (comments and blank lines skipped)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def locked(path: Path) -> dict[str, tuple[Version, int]]:
    """A lock file's packages: canonical name -> (version, number of hashes)."""
    entry = r"^([A-Za-z0-9._-]+)==(\S+)((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})*)"
    entries = re.findall(entry, path.read_text(), re.M)
    assert entries, f"{path} locks no packages"
    return {canonicalize_name(name): (Version(v), hashes.count("--hash=")) for name, v, hashes in entries}


def disagreements(reqs: list[Requirement], lock: dict[str, tuple[Version, int]]) -> list[str]:
    problems = []
    for req in reqs:
        name = canonicalize_name(req.name)
        if name not in lock:
            problems.append(f"{req} is not in the lock")
        elif not req.specifier.contains(lock[name][0], prereleases=True):
            problems.append(f"{req} but the lock has {req.name}=={lock[name][0]}")
    return problems


IMAGES = {
    "runtime": ([RUNTIME / "requirements.txt"], RUNTIME / "requirements.lock"),
    "trainer-gpu": (
        [RUNTIME / "requirements.txt", TRAINER / "requirements.txt"],
        TRAINER / "requirements.lock",
    ),
}


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_every_requirement_is_locked_at_a_version_it_allows(image):
    inputs, lock_file = IMAGES[image]
    lock = locked(lock_file)
    problems = disagreements([r for path in inputs for r in requirements(path)], lock)
    names = " + ".join(str(path.relative_to(ROOT)) for path in inputs)
    assert problems == [], f"{lock_file.relative_to(ROOT)} disagrees with {names}: {problems}; {REGENERATE}"


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_every_locked_package_has_hashes(image):
    # pip --require-hashes refuses a lock with an unhashed entry, but only when the image builds.
    lock = locked(IMAGES[image][1])
    assert [name for name, (_, hashes) in lock.items() if hashes == 0] == []


def test_the_trainer_keeps_every_runtime_package_at_its_locked_version():
    runtime, trainer = locked(RUNTIME / "requirements.lock"), locked(TRAINER / "requirements.lock")
    trainer_versions = {name: str(version) for name, (version, _) in trainer.items()}
    moved = {
        name: (str(version), trainer_versions.get(name))
        for name, (version, _) in runtime.items()
        if trainer_versions.get(name) != str(version)
    }
    assert moved == {}, f"the trainer's lock moves runtime packages (runtime, trainer): {moved}; {REGENERATE}"


def test_the_comparison_catches_a_missing_package_and_a_version_outside_the_specifier():
    lock = {"tensorflow": (Version("2.21.0"), 2), "pandas": (Version("3.0.0"), 1)}
    reqs = [Requirement(r) for r in ("tensorflow==2.21.0", "pandas>=2.2,<3", "moto[server]==5.2.5")]
    assert disagreements(reqs, lock) == [
        "pandas<3,>=2.2 but the lock has pandas==3.0.0",
        "moto[server]==5.2.5 is not in the lock",
    ]


def test_the_tag_names_the_locks_the_images_install():
    assert images.LOCK == images.lock_digest(ROOT), (
        f"components/images.py has LOCK = {images.LOCK!r} but the lock files hash to "
        f"{images.lock_digest(ROOT)!r}: {REGENERATE} (it sets LOCK), rebuild the images and "
        "recompile (python compile.py)"
    )


def test_the_dockerfiles_install_their_locks_with_hashes_and_nothing_else():
    for lock in images.LOCK_FILES:
        dockerfile = (ROOT / lock).parent / "Dockerfile"
        text = dockerfile.read_text()
        assert f"COPY {lock} /tmp/requirements.lock" in text, dockerfile
        installs = re.findall(r"pip install ([^\n\\&]*)", text)
        from_index = [args for args in installs if "/opt/project" not in args]
        # Every install from the index is hash-checked and resolves nothing; one is the lock.
        assert all("--require-hashes --no-deps" in args for args in from_index), (dockerfile, from_index)
        assert any(args.strip().endswith("-r /tmp/requirements.lock") for args in from_index), dockerfile


def test_manifests_run_the_current_runtime_image():
    # Kubernetes manifests cannot import images.py: they name the tag, and follow the lock.
    stale = []
    for path in sorted((ROOT / "manifests").rglob("*.yaml")):
        text = path.read_text()
        named = re.findall(re.escape(f"{RUNTIME_NAME}:") + r"\S+", text)
        stale += [f"{path.relative_to(ROOT)}: {image}" for image in named if image != images.RUNTIME]
        kustomizations = [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]
        for entry in (entry for doc in kustomizations for entry in doc.get("images", [])):
            if entry.get("newName", "").endswith(RUNTIME_NAME) and entry.get("newTag") != images.TAG:
                stale.append(f"{path.relative_to(ROOT)}: newTag {entry.get('newTag')}")
    assert stale == []
