"""Where a training step's time goes, tt_tf vs TFRS on the cost-curve towers (issue 27).

For the catalogue and batch sizes given, alternating rounds (so every variant sees the same
machine), the median of:

- ``gradient``: the loss and its gradients (towers forward and backward, the loss), no update;
- ``apply``: one optimizer update from fixed gradients, for LazyAdam (tt_tf's default),
  Adagrad 0.1 (the TFRS tutorials') and Keras's Adam;
- ``fit``: whole ``fit`` epochs, as ``benchmarks/scale.py`` times them, for tt_tf's default
  (LazyAdam, static logQ, in-batch recall shown), tt_tf with Adagrad, tt_tf doing TFRS's work
  (Adagrad, no logQ, no ranking metrics: ``same_work``), and TFRS with Adagrad and LazyAdam.

So a gap in ``fit`` splits into the library's own work (``gradient``) and the optimizer's
(``apply``): the question is whether tt_tf does more than TFRS's minimum, or a different
update.

    python benchmarks/step_profile.py                 # the rows below parity in scale.json
    python benchmarks/step_profile.py --quick         # tiny, to check the script
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import tt_tf  # noqa: E402  (Keras 2 mode, before TFRS loads)

tt_tf.ensure_legacy_keras()

from benchmarks.provenance import write_results  # noqa: E402
from benchmarks.scale import EXAMPLES_PER_EPOCH, IdTower, TfrsModel, synthetic_rows, throughput, towers  # noqa: E402
from tt_tf._keras import keras, tf  # noqa: E402
from tt_tf.models.two_tower import TwoTowerModel  # noqa: E402
from tt_tf.negatives.frequency import StaticItemFrequency  # noqa: E402
from tt_tf.training.optimizers import LazyAdam  # noqa: E402

OPTIMIZERS = {"lazy_adam": lambda: LazyAdam(1e-3), "adagrad": lambda: keras.optimizers.Adagrad(0.1),
              "adam": lambda: keras.optimizers.Adam(1e-3)}


def tt_tf_model(num_items, frequency, in_batch_metrics_k=(10, 100)):
    """tt_tf as ``tt-tf train`` runs it; ``frequency=None, in_batch_metrics_k=()`` is the same work as
    TFRS's training step (no logQ, no ranking metrics)."""
    query, candidate = towers(50_000, num_items)
    return TwoTowerModel(IdTower("user_id", query), IdTower("item_id", candidate), candidate_id_feature="item_id",
                         logits_temperature=0.2, item_frequency=frequency, in_batch_metrics_k=in_batch_metrics_k)


def tfrs_model(num_items):
    query, candidate = towers(50_000, num_items)
    return TfrsModel(query, candidate, num_items, False)


def median_ms(function, calls) -> float:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def step_parts(model, batch, optimizer_names, calls):
    """{"gradient": ms, "apply_<optimizer>": ms} for ``model`` on one fixed ``batch``."""
    model.compute_loss(batch)  # builds the towers

    @tf.function
    def gradients(features):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(features, training=True)
        return tape.gradient(loss, model.trainable_variables)

    grads = gradients(batch)
    parts = {"gradient": lambda: [g.values if isinstance(g, tf.IndexedSlices) else g for g in gradients(batch)][0]
             .numpy()}
    for name in optimizer_names:
        optimizer = OPTIMIZERS[name]()
        optimizer.build(model.trainable_variables)
        apply = tf.function(lambda g, optimizer=optimizer: optimizer.apply_gradients(zip(g, model.trainable_variables)))
        parts[f"apply_{name}"] = lambda apply=apply, optimizer=optimizer: (apply(grads), optimizer.iterations.numpy())
    for function in parts.values():  # traced and warm before timing
        function()
        function()
    return {name: median_ms(function, calls) for name, function in parts.items()}


def profile_row(num_items, batch_size, rounds, calls):
    users, items = synthetic_rows(num_items, 200_000)
    frequency = StaticItemFrequency(np.arange(num_items).astype(str).tolist(),
                                    np.bincount(items, minlength=num_items).astype(np.float64) + 1.0)
    batch = {"user_id": tf.constant(users[:batch_size]), "item_id": tf.constant(items[:batch_size])}
    steps = max(15, EXAMPLES_PER_EPOCH // batch_size)
    fit_variants = {
        "tt_tf_default": lambda: throughput(tt_tf_model(num_items, frequency), users, items, batch_size, steps,
                                            optimizer=LazyAdam(1e-3)),
        "tt_tf_adagrad": lambda: throughput(tt_tf_model(num_items, frequency), users, items, batch_size, steps,
                                            optimizer=keras.optimizers.Adagrad(0.1)),
        "tt_tf_same_work": lambda: throughput(tt_tf_model(num_items, None, ()), users, items, batch_size, steps,
                                              optimizer=keras.optimizers.Adagrad(0.1)),
        "tfrs_adagrad": lambda: throughput(tfrs_model(num_items), users, items, batch_size, steps,
                                           optimizer=keras.optimizers.Adagrad(0.1)),
        "tfrs_lazy_adam": lambda: throughput(tfrs_model(num_items), users, items, batch_size, steps,
                                             optimizer=LazyAdam(1e-3)),
    }
    samples = {f"fit_{name}_examples_per_s": [] for name in fit_variants}
    parts = {}
    names = list(fit_variants)
    for round_index in range(rounds):
        # each round starts with a different variant: the first fit of a round pays for a cold machine
        for name in names[round_index % len(names):] + names[:round_index % len(names)]:
            samples[f"fit_{name}_examples_per_s"].append(fit_variants[name]())
        for library, model in (("tt_tf", tt_tf_model(num_items, frequency)), ("tfrs", tfrs_model(num_items)),
                               ("tt_tf_same_work", tt_tf_model(num_items, None, ()))):
            for part, ms in step_parts(model, batch, list(OPTIMIZERS), calls).items():
                parts.setdefault(f"{library}_{part}_ms", []).append(ms)
    row = {"num_items": num_items, "batch_size": batch_size, "rounds": rounds, "steps_per_epoch": steps,
           **{name: statistics.median(values) for name, values in {**samples, **parts}.items()},
           "samples": {**samples, **parts}}
    row["fit_ratio_default_vs_tfrs_adagrad"] = row["fit_tt_tf_default_examples_per_s"] / \
        row["fit_tfrs_adagrad_examples_per_s"]
    row["fit_ratio_same_optimizer_adagrad"] = row["fit_tt_tf_adagrad_examples_per_s"] / \
        row["fit_tfrs_adagrad_examples_per_s"]
    row["fit_ratio_same_optimizer_lazy_adam"] = row["fit_tt_tf_default_examples_per_s"] / \
        row["fit_tfrs_lazy_adam_examples_per_s"]
    row["fit_ratio_same_work"] = row["fit_tt_tf_same_work_examples_per_s"] / row["fit_tfrs_adagrad_examples_per_s"]
    row["gradient_ratio_tfrs_over_tt_tf"] = row["tfrs_gradient_ms"] / row["tt_tf_gradient_ms"]
    row["gradient_ratio_tfrs_over_same_work"] = row["tfrs_gradient_ms"] / row["tt_tf_same_work_gradient_ms"]
    fit = {name: f"{row[f'fit_{name}_examples_per_s']:,.0f}/s" for name in fit_variants}
    print(f"items {num_items:>9,} batch {batch_size:>5}: fit {fit}; gradient tt_tf {row['tt_tf_gradient_ms']:.2f} ms "
          f"(same work {row['tt_tf_same_work_gradient_ms']:.2f}) vs TFRS {row['tfrs_gradient_ms']:.2f} ms; apply "
          f"LazyAdam {row['tt_tf_apply_lazy_adam_ms']:.2f} ms, Adagrad {row['tt_tf_apply_adagrad_ms']:.2f} ms",
          flush=True)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", nargs="+", default=["100000x256", "100000x1024", "1000000x256", "1000000x1024"],
                        help="ITEMSxBATCH: the cost-curve rows to profile")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "step_profile.json"))
    args = parser.parse_args()
    rows = [(1_000, 256)] if args.quick else [tuple(int(n) for n in row.split("x")) for row in args.rows]
    report = {"command": "python benchmarks/step_profile.py" + (" --quick" if args.quick else ""),
              "rows": [profile_row(items, batch, 1 if args.quick else args.rounds, 5 if args.quick else 30)
                       for items, batch in rows]}
    write_results(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
