"""A ported Merlin program trains as fast as tt_tf's own pipeline (issue 22): the same towers and
loss on the same MovieLens 100K training rows, fed (a) the Merlin way, ``TwoTowerModelV2`` +
``fit(Dataset, batch_size=...)`` through ``Loader``, and (b) the way ``tt-tf train`` feeds it,
``TwoTowerModel`` + ``tt_tf.data.tables.training_dataset`` (vocabulary lookups of raw ids).
Alternating rounds, median examples/s of timed epochs after a warm-up epoch.

    python benchmarks/merlin_port_speed.py            # MovieLens 100K from ../shared/data
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import tt_tf as mm  # noqa: E402
from benchmarks.provenance import write_results  # noqa: E402
from tt_tf._keras import keras  # noqa: E402
from tt_tf.data.tables import build_schema, training_dataset  # noqa: E402
from tt_tf.datasets.entertainment import get_movielens  # noqa: E402
from tt_tf.datasets.movielens import find_shared_data, load_ml100k_raw  # noqa: E402
from tt_tf.schema import Tags  # noqa: E402

BATCH, DIMS, TEMPERATURE = 1024, [128, 64], 0.1


def tower(schema):
    return mm.Encoder(schema, mm.MLPBlock(DIMS, no_activation_last_layer=True), post=mm.L2Norm())


def timed_epochs(model, data, epochs, rows, **fit_args) -> list:
    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            rates.append(rows / (time.perf_counter() - self.started))

    rates = []
    model.compile(optimizer=mm.LazyAdam(1e-3))
    model.fit(data, epochs=1, verbose=0, **fit_args)  # warm-up: tracing
    model.fit(data, epochs=epochs, verbose=0, callbacks=[Timer()], **fit_args)
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "merlin_port_speed.json"))
    args = parser.parse_args()
    folder = find_shared_data() / "ml-100k"
    train, _ = get_movielens(path=folder, variant="ml-100k")
    schema = train.schema.select_by_tag([Tags.ITEM_ID, Tags.USER_ID, Tags.ITEM, Tags.USER])
    train.schema = schema
    # the same rows, raw, for tt_tf's own pipeline (its schema: vocabularies of the raw values)
    raw = load_ml100k_raw(folder)
    users = raw["users"].rename(columns={"zip": "zip_code"})[["user_id", "gender", "zip_code", "age"]]
    items = raw["items"][["item_id", "genres"]]
    interactions = raw["interactions"]
    interactions = interactions[interactions.groupby("user_id").cumcount() >= 10]  # the ua rule's training rows
    native_schema = build_schema(interactions, users, items, use_history=False,
                                 overrides={"age": "categorical", "zip_code": "categorical"})
    rows = train.num_rows
    assert rows == len(interactions), (rows, len(interactions))
    samples = {"merlin_api": [], "tt_tf_pipeline": []}
    for _ in range(args.rounds):
        merlin = mm.TwoTowerModelV2(tower(schema.select_by_tag(Tags.USER)), tower(schema.select_by_tag(Tags.ITEM)),
                                    logits_temperature=TEMPERATURE)
        samples["merlin_api"] += timed_epochs(merlin, train, args.epochs, rows, batch_size=BATCH)
        native = mm.TwoTowerModel(tower(native_schema.select_by_tag(Tags.USER)),
                                  tower(native_schema.select_by_tag(Tags.ITEM)), logits_temperature=TEMPERATURE)
        data = training_dataset(interactions, users, items, native_schema, batch_size=BATCH)
        samples["tt_tf_pipeline"] += timed_epochs(native, data, args.epochs, rows)
    report = {"command": "python benchmarks/merlin_port_speed.py", "rows": rows, "batch_size": BATCH,
              "median_examples_per_s": {name: statistics.median(v) for name, v in samples.items()},
              "samples": samples}
    report["ratio_merlin_api_to_tt_tf_pipeline"] = report["median_examples_per_s"]["merlin_api"] / \
        report["median_examples_per_s"]["tt_tf_pipeline"]
    print({k: round(v) for k, v in report["median_examples_per_s"].items()},
          f"ratio {report['ratio_merlin_api_to_tt_tf_pipeline']:.2f}")
    write_results(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
