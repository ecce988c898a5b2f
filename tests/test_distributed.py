"""tf.distribute: mirrored replicas and loopback workers train like one device on the global
batch (issue 8). Each check runs tests/distributed_worker.py in fresh processes, because
logical devices and TF_CONFIG must be set before TensorFlow starts."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tt_tf.training.distribute import is_chief, make_strategy

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "distributed_worker.py"


def run_worker(*args, env=None, timeout=600):
    environment = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    environment.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, str(WORKER), *map(str, args)], capture_output=True, text=True,
                          env=environment, timeout=timeout, cwd=ROOT)


def last_json(done):
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # fresh TensorFlow processes
def test_mirrored_replicas_equal_one_device_on_the_global_batch():
    out = last_json(run_worker("equivalence"))
    assert out["replicas"] == 2
    # each replica returns its rows' share of the global mean: they add up to the one-device loss
    assert sum(out["replica_losses"]) == pytest.approx(out["single_loss"], rel=1e-5)
    assert len(set(out["replica_losses"])) == 2  # the replicas really saw different rows
    assert out["max_gradient_difference"] < 1e-5  # all_gather carries the gradient back
    for name, state in out["estimator"].items():
        assert state["replicas_equal"], name
        assert state["max_difference_to_one_device"] < 1e-6, name
    assert out["refused"] and "in-batch negatives" in out["refused"] and "catalogue" in out["refused"]


@pytest.mark.slow  # fresh TensorFlow processes
def test_cross_batch_memory_across_replicas_equals_one_device():
    out = last_json(run_worker("memory"))
    for step in out["steps"]:
        assert sum(step["replica_losses"]) == pytest.approx(step["single_loss"], rel=1e-5)
        assert step["max_gradient_difference"] < 1e-5
    # the memory joined the loss: a later step's loss differs from what in-batch alone gives
    assert out["written"] == 30  # 3 global batches of 10, wrapped around 16 slots
    assert out["memories_equal"]
    assert out["memory_difference_to_one_device"] < 1e-6


def test_strategy_names_and_chief_detection():
    with pytest.raises(ValueError, match="distribute must be one of"):
        make_strategy("parameter_server")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        os.environ.pop("TF_CONFIG", None)
        make_strategy("multi_worker")
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    assert is_chief({})
    assert is_chief({"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}})})
    assert not is_chief({"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})})
    with_chief = {**cluster, "chief": ["127.0.0.1:3"]}
    assert not is_chief({"TF_CONFIG": json.dumps({"cluster": with_chief, "task": {"type": "worker", "index": 0}})})
    assert is_chief({"TF_CONFIG": json.dumps({"cluster": with_chief, "task": {"type": "chief", "index": 0}})})


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_loopback_workers_and_mirrored_replicas_match_one_worker(tmp_path):
    for mode in ("default", "mirrored"):
        done = run_worker("fit", mode, tmp_path / f"{'one' if mode == 'default' else mode}.json")
        assert done.returncode == 0, done.stderr[-3000:]
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    workers = []
    for index in range(2):
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), "TF_CONFIG": config}
        # each worker reads the whole data set; tf.data shards every global batch between them
        workers.append(subprocess.Popen([sys.executable, str(WORKER), "fit", "multi_worker", tmp_path / "two.json"],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
                                        cwd=ROOT))
    for worker in workers:
        _, err = worker.communicate(timeout=900)
        assert worker.returncode == 0, err[-3000:]
    results = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in ("one", "mirrored", "two")}
    reference = np.array(results["one"]["valid_recall_at_10"])
    for name in ("mirrored", "two"):
        # same global batch, same data order: the same model up to float summation order
        np.testing.assert_allclose(results[name]["valid_recall_at_10"], reference, atol=0.02)
        np.testing.assert_allclose(results[name]["loss"], results["one"]["loss"], rtol=0.02)


@pytest.mark.slow  # fresh TensorFlow processes
def test_backup_and_restore_resumes_a_killed_run(tmp_path):
    log = tmp_path / "epochs.log"
    killed = run_worker("backup", tmp_path / "backup", log, 1)
    assert killed.returncode == 17  # died at the end of epoch 1 (0-based)
    assert log.read_text().split() == ["0", "1"]
    resumed = last_json(run_worker("backup", tmp_path / "backup", log))
    # the restarted run continues at epoch 2 instead of starting over
    assert log.read_text().split() == ["0", "1", "2", "3"]
    assert resumed["epochs_run"] == 2
