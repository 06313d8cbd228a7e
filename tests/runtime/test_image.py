"""The runtime image holds the pinned stack and runs as non-root."""

import os
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
