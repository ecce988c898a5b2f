"""``tf.distribute`` strategies for training, selected by name from the config or the CLI.

``mirrored``: one process, every local GPU, or ``logical_cpus`` virtual CPU devices when there
is no GPU (how the tests and a CPU machine exercise it). ``multi_worker``: one process per
worker, the cluster in the ``TF_CONFIG`` environment variable (workers on 127.0.0.1 in the
tests). The model gathers the in-batch negatives of all replicas (a row sees the global
batch), so a run with R replicas and per-replica batch b trains like one device with batch R b.
"""
from __future__ import annotations

import json
import os

from tt_tf._keras import tf

STRATEGIES = ("default", "mirrored", "multi_worker")


def split_cpu(count: int) -> list:
    """Split the first physical CPU into ``count`` logical devices; must run before TensorFlow
    initialises its devices (before the first op). Returns the logical device names."""
    if count < 1:
        raise ValueError(f"logical_cpus must be >= 1, got {count}")
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        existing = tf.config.list_logical_devices("CPU")
        if len(existing) != count:
            raise ValueError(f"TensorFlow already initialised {len(existing)} CPU device(s); logical_cpus={count} "
                             "must be set before the first TensorFlow op (e.g. at the start of the process)") \
                from None
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def make_strategy(name: str = "default", logical_cpus: int | None = None) -> tf.distribute.Strategy:
    """The strategy ``name`` (one of ``STRATEGIES``)."""
    if name not in STRATEGIES:
        raise ValueError(f"distribute must be one of {STRATEGIES}, got {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if tf.config.list_physical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        devices = split_cpu(logical_cpus or 2)
        # CPU replicas need a cross-device op that runs on CPU
        return tf.distribute.MirroredStrategy(devices, cross_device_ops=tf.distribute.ReductionToOneDevice())
    config = os.environ.get("TF_CONFIG")
    if not config:
        raise ValueError("distribute=multi_worker needs TF_CONFIG, e.g. "
                         '{"cluster": {"worker": ["127.0.0.1:12345", "127.0.0.1:12346"]}, '
                         '"task": {"type": "worker", "index": 0}}')
    try:
        json.loads(config)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON: {error.msg}") from None
    return tf.distribute.MultiWorkerMirroredStrategy()


def _tf_config(environ=None) -> dict | None:
    config = (environ if environ is not None else os.environ).get("TF_CONFIG")
    return json.loads(config) if config else None


def is_chief(environ=None) -> bool:
    """True on the process that writes outputs: outside multi-worker training, the ``chief``
    task, or worker 0 of a cluster without one (``TF_CONFIG``)."""
    parsed = _tf_config(environ)
    if parsed is None:
        return True
    task = parsed.get("task", {})
    if task.get("type") == "chief":
        return True
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0 and "chief" not in parsed.get("cluster", {})


def task_name(environ=None) -> str:
    """``worker-1``, ``chief-0``: this process's task in ``TF_CONFIG`` ("" outside a cluster),
    which keeps the scratch folders of workers sharing a file system apart."""
    parsed = _tf_config(environ)
    if parsed is None:
        return ""
    task = parsed.get("task", {})
    return f"{task.get('type', 'worker')}-{int(task.get('index', 0))}"


def task_share(environ=None) -> tuple:
    """``(position, count)``: this task among the cluster's chief and workers, the chief first
    (which share of a job is its); ``(0, 1)`` outside a cluster."""
    parsed = _tf_config(environ)
    if parsed is None:
        return 0, 1
    cluster, task = parsed.get("cluster", {}), parsed.get("task", {})
    count = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    return int(task.get("index", 0)) + (0 if task.get("type") == "chief" or "chief" not in cluster else 1), count
