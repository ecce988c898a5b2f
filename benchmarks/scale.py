"""Cost curves on synthetic data (issue 8): training throughput vs batch size and catalogue size
(tt_tf vs TFRS on the same towers, in one run), exact top-100 search time vs catalogue size
against the memory-bandwidth bound, and faiss HNSW recall@100 vs queries/s.

    python benchmarks/scale.py                      # full curves (about 10 minutes on 2 CPU cores)
    python benchmarks/scale.py --quick              # tiny sizes, to check the script

The device is named in the results (CPU here; on a GPU machine TensorFlow uses the GPU for the
training rows, with ``--mixed-precision`` for mixed_float16).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import tt_tf  # noqa: E402  (Keras 2 mode, before TFRS loads)

tt_tf.ensure_legacy_keras()  # a statement between the blocks: import sorting keeps tt_tf first

import tensorflow_recommenders as tfrs  # noqa: E402

from benchmarks.provenance import write_results  # noqa: E402
from tt_tf._keras import keras, tf  # noqa: E402
from tt_tf.data.schema import ColumnSchema, Schema  # noqa: E402
from tt_tf.models.two_tower import TwoTowerModel  # noqa: E402
from tt_tf.negatives.frequency import StaticItemFrequency  # noqa: E402
from tt_tf.training.optimizers import LazyAdam  # noqa: E402

DIM = 64


def device_name() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    return f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"


def synthetic_rows(num_items: int, num_rows: int, num_users: int = 50_000, seed: int = 0):
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, num_items + 1) ** 0.8
    items = rng.choice(num_items, size=num_rows, p=popularity / popularity.sum())
    users = rng.integers(0, num_users, num_rows)
    return users.astype(np.int64), items.astype(np.int64)


def towers(num_users: int, num_items: int):
    def tower(vocabulary, name):
        return keras.Sequential([keras.layers.Embedding(vocabulary, DIM), keras.layers.Dense(256, activation="relu"),
                                 keras.layers.Dense(DIM)], name=name)
    return tower(num_users, "query"), tower(num_items, "candidate")


class IdTower(keras.layers.Layer):
    """Feeds one id feature of the batch dict to a Keras tower (TwoTowerModel passes dicts)."""

    def __init__(self, feature, tower, **kwargs):
        super().__init__(**kwargs)
        self.feature, self.tower = feature, tower

    @property
    def schema(self) -> Schema:
        """The one feature the tower reads: what lets TwoTowerModel score a repeated item once."""
        return Schema([ColumnSchema(self.feature, "int64")])

    def call(self, features, training=None):
        return self.tower(features[self.feature], training=training)


class TfrsModel(tfrs.models.Model):
    """TFRS as its tutorials write it: the same towers, a Retrieval task; ``factorized_metrics``
    adds FactorizedTopK over the catalogue (the tutorials' default)."""

    def __init__(self, query, candidate, num_items, factorized_metrics):
        super().__init__()
        self.query, self.candidate = query, candidate
        metrics = None
        if factorized_metrics:
            candidates = tf.data.Dataset.range(num_items).batch(8192).map(lambda ids: (ids, candidate(ids)))
            metrics = tfrs.metrics.FactorizedTopK(candidates=tfrs.layers.factorized_top_k.Streaming(k=100)
                                                  .index_from_dataset(candidates))
        self.task = tfrs.tasks.Retrieval(metrics=metrics)

    def compute_loss(self, features, training=False):
        return self.task(self.query(features["user_id"]), self.candidate(features["item_id"]),
                         compute_metrics=not training)


def throughput(model, users, items, batch_size, steps, warmup=3, repeats=3, optimizer=None) -> float:
    """Median examples/s over ``repeats`` epochs of ``steps`` steps, after a warm-up epoch;
    Keras's Adam unless ``optimizer`` is given."""
    dataset = tf.data.Dataset.from_tensor_slices({"user_id": users, "item_id": items}).repeat() \
        .batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    model.compile(optimizer=optimizer or keras.optimizers.Adam(1e-3))
    model.fit(dataset, steps_per_epoch=warmup, epochs=1, verbose=0)

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            rates.append(batch_size * steps / (time.perf_counter() - self.started))

    rates = []
    model.fit(dataset, steps_per_epoch=steps, epochs=repeats, verbose=0, callbacks=[Timer()])
    return statistics.median(rates)


# TFRS as its users train it: Keras's Adam, the tutorials' Adagrad (sparse embedding updates),
# and LazyAdam; the headline ratio is against the fastest of them on the same towers
EXAMPLES_PER_EPOCH = 61_440
TFRS_OPTIMIZERS = {"adam": lambda: keras.optimizers.Adam(1e-3), "adagrad": lambda: keras.optimizers.Adagrad(0.1),
                   "lazy_adam": lambda: LazyAdam(1e-3)}


def training_curves(item_sizes, batch_sizes, steps):
    rows = []
    for num_items in item_sizes:
        users, items = synthetic_rows(num_items, 200_000)
        frequency = StaticItemFrequency(np.arange(num_items).astype(str).tolist(),
                                        np.bincount(items, minlength=num_items).astype(np.float64) + 1.0)
        for batch_size in batch_sizes:
            # at least EXAMPLES_PER_EPOCH examples per timed epoch: a few small steps time mostly noise
            row = {"num_items": num_items, "batch_size": batch_size,
                   "steps_per_epoch": max(steps, EXAMPLES_PER_EPOCH // batch_size)}
            steps_here = row["steps_per_epoch"]

            def ours(logq=True):
                query, candidate = towers(50_000, num_items)
                return TwoTowerModel(IdTower("user_id", query), IdTower("item_id", candidate),
                                     candidate_id_feature="item_id", logits_temperature=0.2,
                                     item_frequency=frequency if logq else None)
            # tt_tf as `tt-tf train` runs it (LazyAdam, static logQ), without logQ (what logQ
            # costs), and with Keras's Adam (the optimizer's share)
            row["tt_tf_examples_per_s"] = throughput(ours(), users, items, batch_size, steps_here,
                                                     optimizer=LazyAdam(1e-3))
            row["tt_tf_no_logq_examples_per_s"] = throughput(ours(logq=False), users, items, batch_size, steps_here,
                                                             optimizer=LazyAdam(1e-3))
            row["tt_tf_adam_examples_per_s"] = throughput(ours(), users, items, batch_size, steps_here)
            for name, optimizer in TFRS_OPTIMIZERS.items():
                query, candidate = towers(50_000, num_items)
                row[f"tfrs_{name}_examples_per_s"] = throughput(TfrsModel(query, candidate, num_items, False), users,
                                                                items, batch_size, steps_here, optimizer=optimizer())
            fastest = max(TFRS_OPTIMIZERS, key=lambda name: row[f"tfrs_{name}_examples_per_s"])
            row["tfrs_fastest"] = fastest
            row["ratio_vs_fastest_tfrs"] = row["tt_tf_examples_per_s"] / row[f"tfrs_{fastest}_examples_per_s"]
            row["ratio_vs_tfrs_adam"] = row["tt_tf_examples_per_s"] / row["tfrs_adam_examples_per_s"]
            rows.append(row)
            print(f"train items {num_items:>8,} batch {batch_size:>5}: tt_tf {row['tt_tf_examples_per_s']:,.0f}/s "
                  f"(no logQ {row['tt_tf_no_logq_examples_per_s']:,.0f}, Adam {row['tt_tf_adam_examples_per_s']:,.0f}) "
                  + " ".join(f"TFRS {name} {row[f'tfrs_{name}_examples_per_s']:,.0f}/s" for name in TFRS_OPTIMIZERS)
                  + f" -> {row['ratio_vs_fastest_tfrs']:.2f}x the fastest ({fastest})", flush=True)
    return rows


def tfrs_tutorial_row(num_items, batch_size, steps):
    """TFRS with FactorizedTopK computed in training, as its tutorials compile it."""
    users, items = synthetic_rows(num_items, 200_000)
    query, candidate = towers(50_000, num_items)
    model = TfrsModel(query, candidate, num_items, True)
    model.compute_loss = lambda features, training=False: model.task(  # metrics every step
        model.query(features["user_id"]), model.candidate(features["item_id"]), compute_metrics=True)
    return {"num_items": num_items, "batch_size": batch_size,
            "tfrs_with_factorized_topk_examples_per_s": throughput(model, users, items, batch_size, steps)}


def memory_bandwidth(size_mb=512, repeats=5) -> float:
    """Bytes per second of a streaming read (numpy sum over a large float32 array)."""
    array = np.ones(size_mb * 2 ** 20 // 4, np.float32)
    array.sum()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        array.sum()
        times.append(time.perf_counter() - started)
    return array.nbytes / statistics.median(times)


def exact_search_curve(item_sizes, query_batches=(1, 64), repeats=7):
    """Exact top-100 per query batch, as tt_tf does it (``tt_tf.evaluation.topk.top_k_by_dot``: matmul
    + ``tt_tf.evaluation.topk``) and as a bare matmul + argpartition + sort of the 100. The bound is the
    time to stream the item matrix once at the measured bandwidth: one query cannot beat it, a
    batch of queries shares one pass (and becomes compute-bound)."""
    from tt_tf.evaluation.topk import top_k_by_dot

    def bare(batch, matrix):
        scores = batch @ matrix.T
        top = np.argpartition(-scores, 99, axis=1)[:, :100]
        np.take_along_axis(scores, top, axis=1).argsort(axis=1)

    bandwidth = memory_bandwidth()
    rng = np.random.default_rng(0)
    rows = []
    for num_items in item_sizes:
        matrix = rng.normal(size=(num_items, DIM)).astype(np.float32)
        for queries in query_batches:
            batch = rng.normal(size=(queries, DIM)).astype(np.float32)
            times = {"tt_tf": [], "argpartition": []}
            for _ in range(repeats):  # the two alternate, so both see the same machine
                for name, search in (("tt_tf", lambda: top_k_by_dot(batch, matrix, 100)),
                                     ("argpartition", lambda: bare(batch, matrix))):
                    started = time.perf_counter()
                    search()
                    times[name].append(time.perf_counter() - started)
            seconds = statistics.median(times["tt_tf"])
            bare_seconds = statistics.median(times["argpartition"])
            bound = matrix.nbytes / bandwidth
            rows.append({"num_items": num_items, "queries_per_batch": queries, "median_s": seconds,
                         "argpartition_median_s": bare_seconds,
                         "ms_per_query": 1000 * seconds / queries, "bytes_scanned": matrix.nbytes,
                         "bandwidth_bound_s": bound, "ratio_to_bound": seconds / bound})
            print(f"exact top-100 items {num_items:>9,} x {queries:>3} queries: {1000 * seconds:.2f} ms "
                  f"(argpartition {1000 * bare_seconds:.2f} ms; bound {1000 * bound:.2f} ms, {seconds / bound:.1f}x)",
                  flush=True)
    return {"bandwidth_bytes_per_s": bandwidth, "rows": rows}


def hnsw_curve(num_items, ef_values, queries=500):
    import faiss
    rng = np.random.default_rng(1)
    # clustered vectors, as learned embeddings are (uniform random ones are HNSW's worst case)
    centres = rng.normal(size=(256, DIM))
    matrix = (centres[rng.integers(0, 256, num_items)] + 0.5 * rng.normal(size=(num_items, DIM))).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    batch = matrix[rng.integers(0, num_items, queries)] + 0.1 * rng.normal(size=(queries, DIM)).astype(np.float32)
    exact = np.argpartition(-(batch @ matrix.T), 99, axis=1)[:, :100]
    started = time.perf_counter()
    index = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 200
    index.add(matrix)
    build = time.perf_counter() - started
    rows = []
    for ef in ef_values:
        index.hnsw.efSearch = ef
        started = time.perf_counter()
        _, found = index.search(np.ascontiguousarray(batch), 100)
        seconds = time.perf_counter() - started
        recall = np.mean([len(set(a) & set(b)) / 100 for a, b in zip(found, exact)])
        rows.append({"ef_search": ef, "recall_at_100": float(recall), "queries_per_s": queries / seconds})
        print(f"hnsw items {num_items:,} ef {ef}: recall@100 {recall:.3f}, {queries / seconds:,.0f} q/s", flush=True)
    started = time.perf_counter()
    scores = batch @ matrix.T
    np.argpartition(-scores, 99, axis=1)
    exact_qps = queries / (time.perf_counter() - started)
    return {"num_items": num_items, "build_s": build, "exact_queries_per_s": exact_qps, "rows": rows}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scale.json"))
    parser.add_argument("--parts", nargs="+", default=["training", "search", "hnsw"],
                        choices=["training", "search", "hnsw"], help="re-measure these parts, keep the others in --out")
    parser.add_argument("--note", default="", help="a sentence on how this run was measured, shown in BENCHMARKS.md")
    args = parser.parse_args()
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    if args.quick:
        items, batches, steps, search_items, hnsw_items = [1_000], [256], 5, [10_000], 5_000
    else:
        items, batches, steps = [10_000, 100_000, 1_000_000], [256, 1024, 4096], 15
        search_items, hnsw_items = [10_000, 100_000, 1_000_000], 100_000
    previous = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    report = {**previous, "command": "python benchmarks/scale.py" + (" --quick" if args.quick else ""),
              "device": device_name(), "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "mixed_precision": args.mixed_precision, "note": args.note}
    if "training" in args.parts:
        report["training"] = training_curves(items, batches, steps)
        report["tfrs_tutorial"] = tfrs_tutorial_row(items[0], batches[-1] if args.quick else 1024, max(steps // 3, 3))
    if "search" in args.parts:
        report["exact_search"] = exact_search_curve(search_items)
    if "hnsw" in args.parts:
        report["hnsw"] = hnsw_curve(hnsw_items, [16, 32, 64, 128, 256])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_results(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
