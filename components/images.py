"""The only place that names a container image.

Every component's ``base_image`` comes from here, and the tags follow ``VERSION``, so an image
change shows in the compiled specs. To run on a cluster, push the images to your registry and
compile with ``python compile.py --image-registry REGISTRY --output-dir DIR``.
"""

VERSION = "0.1.0"

RUNTIME = f"kfp-ct-runtime:{VERSION}"
"""CPU runtime: TFDV, TensorFlow, MLflow, KServe, kfp executor (images/runtime)."""

TRAINER_GPU = f"kfp-ct-trainer-gpu:{VERSION}"
"""The runtime plus the CUDA libraries TensorFlow needs (images/trainer-gpu)."""

ALL = (RUNTIME, TRAINER_GPU)
