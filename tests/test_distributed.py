"""tf.distribute: mirrored replicas and loopback workers train like one device on the global
batch (issue 8). Each check runs tests/distributed_worker.py in fresh processes, because
logical devices and TF_CONFIG must be set before TensorFlow starts."""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tt_tf.training.distribute import is_chief, make_strategy, task_share

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
    assert out["refused"] and "needs in-batch negatives" in out["refused"]


@pytest.mark.slow  # fresh TensorFlow processes
def test_catalogue_sampler_and_known_positive_masking_across_replicas_equal_one_device():
    out = last_json(run_worker("samplers"))
    for name in ("catalogue", "known_positives", "both"):
        for step in out[name]:
            # each replica's loss is its rows' share of the global mean over the same columns
            assert sum(step["replica_losses"]) == pytest.approx(step["single_loss"], rel=1e-5), name
            assert len(set(step["replica_losses"])) == 2, name
            assert step["max_gradient_difference"] < 1e-5, name


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


def test_each_task_knows_its_share_the_chief_first():
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    with_chief = {**cluster, "chief": ["127.0.0.1:3"]}

    def share(cluster, kind, index):
        return task_share({"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})})
    assert task_share({}) == (0, 1)
    assert [share(cluster, "worker", i) for i in (0, 1)] == [(0, 2), (1, 2)]
    assert [share(with_chief, "chief", 0), share(with_chief, "worker", 0), share(with_chief, "worker", 1)] == \
        [(0, 3), (1, 3), (2, 3)]


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


def write_log(folder):
    """A small synthetic log as two Parquet files, with its user and item tables."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tt_tf.data.synthetic import make_synthetic
    interactions, users, items = make_synthetic(num_users=200, num_items=60, mean_interactions=10, seed=3)
    (folder / "log").mkdir(parents=True)
    for index, part in enumerate(np.array_split(np.arange(len(interactions)), 2)):
        pq.write_table(pa.Table.from_pandas(interactions.iloc[part], preserve_index=False),
                       str(folder / "log" / f"part-{index}.parquet"), row_group_size=300)
    users.to_parquet(folder / "users.parquet")
    items.to_parquet(folder / "items.parquet")
    return interactions, users, items


def start_cli_workers(folder, config, out="run"):
    """``tt-tf train --distribute multi_worker`` as two loopback workers (worker 0 is the chief)."""
    (folder / "config.json").write_text(json.dumps(config))
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    workers = []
    for index in range(2):
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT),
                       "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "tt_tf.cli", "train", "--interactions", "log", "--users", "users.parquet",
             "--items", "items.parquet", "--config", "config.json", "--out", out, "--streaming",
             "--distribute", "multi_worker", "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment, cwd=folder))
    return workers


@pytest.mark.slow  # two TensorFlow processes
def test_two_cli_workers_write_one_merged_bundle_that_loads_and_serves(tmp_path):
    from tests.serving.serving_helpers import make_client
    from tt_tf.bundle.format import ITEM_TABLE, USER_TABLE, read_embeddings
    from tt_tf.bundle.publish import publish
    from tt_tf.bundle.reader import Bundle
    from tt_tf.stores import open_store
    interactions, users, items = write_log(tmp_path)
    workers = start_cli_workers(tmp_path, {"epochs": 2, "query_dimensions": [32], "candidate_dimensions": [32],
                                           "batch_size": 128, "auto_validation_users": 50})
    outputs = [worker.communicate(timeout=900)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert "bundle written" in outputs[0] and "worker done" in outputs[1]
    run = tmp_path / "run"
    assert not (tmp_path / "run.shares").exists() and not (tmp_path / "run.work").exists()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["num_items"] == len(items) and manifest["num_users"] == len(users)
    assert manifest["metrics"]["streaming"] and manifest["metrics"]["valid_masked"]["rows"] == 50
    # the merged shares are the tables the exported towers give, row for row
    bundle = Bundle(run)
    user_ids, user_vecs, item_ids, item_vecs = bundle.embed(users, items, interactions)
    exported_items = read_embeddings(run / ITEM_TABLE, "item_id")
    exported_users = read_embeddings(run / USER_TABLE, "user_id")
    assert list(exported_items[0]) == list(item_ids)
    np.testing.assert_allclose(exported_items[1], item_vecs, atol=1e-4)
    order = {user: row for row, user in enumerate(exported_users[0])}
    np.testing.assert_allclose(exported_users[1][[order[u] for u in user_ids]], user_vecs, atol=1e-4)
    store = open_store(str(tmp_path / "store"))
    publish(run, store, items)
    with make_client(store, run) as client:
        answer = client.post("/invocations", json={"customer": int(users["user_id"].iloc[0]), "numberoffers": 3})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["final_result"]) == 3


@pytest.mark.slow  # two TensorFlow processes, killed and restarted
def test_killed_cli_workers_resume_from_the_last_backed_up_epoch(tmp_path):
    write_log(tmp_path)
    backup = tmp_path / "backup"
    config = {"epochs": 6, "query_dimensions": [32], "candidate_dimensions": [32], "batch_size": 64,
              "auto_validation_users": 0, "backup_dir": str(backup)}
    workers = start_cli_workers(tmp_path, config)
    deadline = time.monotonic() + 600
    # BackupAndRestore writes a checkpoint at each epoch end: kill worker 1 after the second one
    while not list(backup.rglob("*.index")) or len(list(backup.rglob("checkpoint"))) < 1:
        assert time.monotonic() < deadline and workers[1].poll() is None, "no epoch was backed up"
        time.sleep(0.2)
    time.sleep(1.0)
    workers[1].kill()
    workers[0].kill()  # its peer gone, the chief cannot go on: the cluster restarts as a whole
    for worker in workers:
        worker.communicate(timeout=60)
    assert not (tmp_path / "run" / "manifest.json").exists()
    restarted = start_cli_workers(tmp_path, config)
    outputs = [worker.communicate(timeout=900)[0] for worker in restarted]
    assert [worker.returncode for worker in restarted] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    # the restarted cluster ran only the epochs left after the backed-up one
    assert 1 <= manifest["metrics"]["epochs"] < config["epochs"]


@pytest.mark.slow  # two TensorFlow processes
def test_the_readme_loopback_example_runs_as_written(tmp_path):
    import re
    block = next(b for b in re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
                 if "--distribute multi_worker" in b)
    interactions, _, _ = write_log(tmp_path)
    (tmp_path / "log").rename(tmp_path / "logs")
    (tmp_path / "config.yaml").write_text("epochs: 1\nbatch_size: 64\nquery_dimensions: [16]\n"
                                          "candidate_dimensions: [16]\nauto_validation_users: 20\n")
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT),
                   "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    environment.pop("TF_CONFIG", None)
    done = subprocess.run(["bash", "-c", "set -e\n" + block], cwd=tmp_path, env=environment, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    manifest = json.loads((tmp_path / "runs" / "mw" / "manifest.json").read_text())
    assert manifest["num_users"] == interactions["user_id"].nunique()
