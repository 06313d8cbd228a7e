"""The runtime image holds the pinned stack and runs as non-root."""

import os
import subprocess
import sys
from importlib.metadata import version


def test_pinned_stack_imports():
    import kfp
    import kserve  # noqa: F401
    import mlflow  # noqa: F401
    import tensorflow as tf
    import tensorflow_data_validation as tfdv

    assert tfdv.__version__ == "1.21.0"
    assert tf.__version__.startswith("2.21.")
    assert kfp.__version__ == "2.17.0"
    assert version("mlflow").startswith("3.17.")
    assert version("kserve").startswith("0.21.")


def test_tensorboard_is_available_for_tf_summary(tmp_path):
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        assert tf.summary.scalar("x", 1.0, step=0)


def test_runs_as_non_root():
    assert os.getuid() != 0


def test_project_package_is_installed():
    from importlib.metadata import distribution

    from components import images

    assert distribution("kfp-continuous-training").version == images.VERSION


# Printed on every task before the image quieted them: GitPython's banner (no git in the image;
# MLflow looks up the source commit on every run, then warns itself) and TFDV's IPython notice.
NOISE = ("Bad git executable", "Failed to import Git", "Unable to import IPython")
QUIET_RUN = """
import logging, warnings
import mlflow
import tensorflow_data_validation
mlflow.set_tracking_uri("sqlite:///mlflow.db")
with mlflow.start_run() as run:  # MLflow asks GitPython for the source commit here
    mlflow.log_param("a", 1)
warnings.warn("ct-real-warning")
logging.getLogger("ct").warning("ct-real-log-warning")
print(mlflow.get_run(run.info.run_id).info.status)
"""


def test_a_task_prints_no_known_noise_and_real_warnings_still_show(tmp_path):
    # A fresh process outside any git checkout, as a task starts; the image's environment as is
    # (without what earlier tests' MLflow clients exported, e.g. MLFLOW_EXPERIMENT_ID).
    image_env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [sys.executable, "-c", QUIET_RUN], cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env=image_env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("FINISHED")
    assert [n for n in NOISE if n in done.stderr] == [], done.stderr
    # Quieted at the source, not by filtering: warnings and logged warnings still reach stderr.
    assert "UserWarning: ct-real-warning" in done.stderr
    assert "ct-real-log-warning" in done.stderr


def test_image_holds_no_build_leftovers():
    # What no task runs is left out of the image (images/runtime/Dockerfile, #16 §5).
    import importlib.util
    import sysconfig
    from pathlib import Path

    import tensorflow as tf

    site = Path(sysconfig.get_paths()["purelib"])
    assert not (site / "tensorflow" / "include").exists()  # C++ headers for custom ops
    suites = [p for pattern in ("*/tests", "*/*/tests") for p in site.glob(pattern)]
    assert [p for p in suites if "feast" not in p.parts] == []  # the packages' own test suites
    apt_cache = Path("/var/cache/apt")
    assert not list(apt_cache.glob("archives/*.deb")) and not list(apt_cache.glob("*.bin"))
    # Byte code stays: the tasks' user cannot write the venv, so each task would compile again.
    assert Path(importlib.util.cache_from_source(tf.__file__)).is_file()


def test_talking_to_mlflow_does_not_import_feast():
    # feast registers an MLflow request-header plugin that MLflow loads on its first request
    # (all of feast, about 3 s per task); the image drops it: none of our tasks needs its token.
    code = (
        "import sys\n"
        "from mlflow.tracking.request_header import registry\n"
        "print(sorted(type(p).__name__ for p in registry._request_header_provider_registry))\n"
        "print('feast' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    providers, feast_imported = done.stdout.strip().splitlines()[-2:]
    assert "FeastMLflowHeaderProvider" not in providers
    assert feast_imported == "False"
    import feast  # noqa: F401 - feast itself still works where it is used
