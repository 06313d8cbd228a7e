"""train_model_on_kubeflow on the host: the TrainJob's pods' cluster (components/train_model/
_hardware.py, pure JSON)."""

from __future__ import annotations

import json

import pytest

from components.train_model import _hardware

# What train_model_on_kubeflow gives every pod of a 3-node TrainJob "train-1a2b" (JobSet's
# headless service: <job>-node-0-<index>.<job>), without a task: the pods share one env.
CLUSTER = {"worker": [f"train-1a2b-node-0-{i}.train-1a2b:2222" for i in range(3)]}


def test_a_trainjob_pod_is_the_worker_of_its_job_completion_index():
    shared = json.dumps({"cluster": CLUSTER})
    for index in range(3):
        config = json.loads(_hardware.tf_config({"TF_CONFIG": shared, "JOB_COMPLETION_INDEX": str(index)}))
        assert config == {"cluster": CLUSTER, "task": {"type": "worker", "index": index}}
        assert _hardware.is_chief(json.dumps(config)) == (index == 0)  # worker 0: no chief in the cluster
    assert _hardware.cluster_workers(shared) == 3
    # A TF_CONFIG with its own task (a TFJob's) keeps it; without an index it is left alone.
    own = json.dumps({"cluster": CLUSTER, "task": {"type": "worker", "index": 2}})
    assert _hardware.tf_config({"TF_CONFIG": own, "JOB_COMPLETION_INDEX": "0"}) == own
    assert _hardware.tf_config({"TF_CONFIG": shared}) == shared


def test_a_bad_job_completion_index_is_named():
    with pytest.raises(ValueError, match="JOB_COMPLETION_INDEX must be a non-negative integer, got 'x'"):
        _hardware.tf_config({"TF_CONFIG": json.dumps({"cluster": CLUSTER}), "JOB_COMPLETION_INDEX": "x"})
