"""train_model's cluster from the platform: TF_CONFIG, else Vertex AI's CLUSTER_SPEC
(components/train_model/_hardware.py; pure JSON, so it runs on the host)."""

from __future__ import annotations

import json

import pytest

from components.train_model import _hardware

# What Vertex AI sets on the second replica of workerpool1 in a job of 1 + 2 replicas
# (https://cloud.google.com/vertex-ai/docs/training/distributed-training#cluster-spec-format).
POOLS = {
    "workerpool0": ["cmle-training-workerpool0-1d969d3ba6-0:2222"],
    "workerpool1": [
        "cmle-training-workerpool1-1d969d3ba6-0:2222", "cmle-training-workerpool1-1d969d3ba6-1:2222",
    ],
}


def cluster_spec(pool: str, index: int, pools: dict = POOLS) -> str:
    return json.dumps(
        {"cluster": pools, "environment": "cloud", "task": {"type": pool, "index": index, "trial": ""},
         "job": '{"python_module":"","package_uris":[],"job_args":[]}'}
    )


def test_vertex_pools_become_chief_and_workers_and_the_task_keeps_its_replica():
    config = json.loads(_hardware.tf_config({"CLUSTER_SPEC": cluster_spec("workerpool1", 1)}))
    assert config == {
        "cluster": {"chief": POOLS["workerpool0"], "worker": POOLS["workerpool1"]},
        "task": {"type": "worker", "index": 1},
    }
    chief = _hardware.tf_config({"CLUSTER_SPEC": cluster_spec("workerpool0", 0)})
    assert json.loads(chief)["task"] == {"type": "chief", "index": 0}
    assert _hardware.is_chief(chief) and not _hardware.is_chief(json.dumps(config))
    assert _hardware.cluster_workers(chief) == 3
    assert _hardware.plan([], [], chief).strategy == "multi_worker_mirrored"


def test_tf_config_wins_over_cluster_spec_and_neither_is_one_worker():
    tf_config = json.dumps({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}})
    both = {"TF_CONFIG": tf_config, "CLUSTER_SPEC": cluster_spec("workerpool1", 0)}
    assert _hardware.tf_config(both) == tf_config
    assert _hardware.tf_config({}) is None
    alone = cluster_spec("workerpool0", 0, {"workerpool0": ["a:2222"]})
    single = _hardware.tf_config({"CLUSTER_SPEC": alone})
    assert _hardware.cluster_workers(single) == 1 and _hardware.plan([], [], single).strategy == "default"


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("{not json", "not Vertex AI's JSON"),
        (json.dumps({"cluster": POOLS}), "not Vertex AI's JSON"),
        (cluster_spec("workerpool0", 0, {**POOLS, "workerpool2": ["ps:2222"]}), r"workerpool2 \(ps\)"),
        (cluster_spec("workerpool0", 0, {**POOLS, "workerpool3": ["ev:2222"]}), r"workerpool3 \(evaluator\)"),
        (cluster_spec("workerpool0", 0, {"chief": ["a:1"]}), "worker pool 'chief'"),
        (cluster_spec("workerpool2", 0), "task is in pool 'workerpool2'"),
    ],
)
def test_a_cluster_spec_train_model_cannot_use_is_refused_by_name(spec, named):
    with pytest.raises(ValueError, match=named):
        _hardware.tf_config({"CLUSTER_SPEC": spec})
