"""One training run as ``tt-tf train`` does it: train, evaluate on the validation rows, export
the bundle; and the synthetic demo run behind ``tt-tf demo``."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tt_tf.bundle.export import export_bundle
from tt_tf.bundle.reader import Bundle, merge_vector_shards
from tt_tf.data.synthetic import leave_last_out, make_synthetic
from tt_tf.data.tables import Columns, concat_tables, query_frame
from tt_tf.evaluation.full_catalogue import FullCatalogueEvaluator, popularity_metrics
from tt_tf.training.config import TrainConfig
from tt_tf.training.distribute import is_chief, task_name, task_share
from tt_tf.training.log_data import user_chunks
from tt_tf.training.train import columns_of, train_model

SHARE_WAIT_SECONDS = 600  # how long the chief waits for the other workers' table shares


def work_folder(out) -> Path:
    """The run's scratch folder (a streamed log's store): beside ``out``, one per cluster task."""
    task = task_name()
    return Path(str(out) + ".work") / task if task else Path(str(out) + ".work")


def train_run(interactions, users, items, valid, config: TrainConfig, out, verbose=1, run_info=None,
              impressions=None):
    """Train, evaluate on ``valid`` (masked, full catalogue), export the bundle to ``out``.
    ``interactions``: a DataFrame, or a ``HistoryStore`` for the streaming path; ``impressions``:
    the scorer's flattened log, trained with the config's alignment steps.

    Returns ``(manifest, training result)``. In a multi-worker run every worker encodes its share
    of the users and items (``{out}.shares``); the chief merges the shares and writes the one
    bundle, the others return ``(None, result)``.
    """
    work_dir = work_folder(out)
    result = train_model(interactions, users, items, config, valid=valid, verbose=verbose, work_dir=work_dir,
                         impressions=impressions)
    columns, log, valid = columns_of(config), result.log, result.valid
    users, items = result.users, result.items
    catalogue = items if items is not None else pd.DataFrame(
        {columns.item_id: log.id_counts()[columns.item_id].index.to_numpy()})
    seen = log.with_rows(valid)
    user_ids = list(dict.fromkeys(list(users[columns.user_id]) if users is not None else [])
                    | dict.fromkeys(seen.user_ids()))

    def user_frames(ids):
        ids = pd.Index(list(ids))
        for chunk in user_chunks(seen.user_counts(ids)):  # the chunk's histories bound the memory
            yield query_frame(ids[chunk], users, seen.history(ids[chunk]) if config.use_history else None, columns,
                              config.max_history_length)

    vectors = None
    if config.distribute == "multi_worker":
        vectors = worker_tables(result.model, catalogue, user_ids, user_frames, columns, Path(str(out) + ".shares"))
        if not is_chief():
            return None, result
    metrics = {"train_seconds": round(result.train_seconds, 2), "epochs": result.epochs_run,
               "best_epoch": result.best_epoch, "streaming": log.streaming, "rows": log.rows,
               "history_mode": result.history_mode, "examples_per_second": round(result.examples_per_second, 1),
               "history_encoder": "attention" if getattr(result.model.query_tower.input_block, "history_encoder",
                                                          None) is not None else "mean",
               "training_curves": {name: [float(v) for v in values] for name, values in result.history.items()}}
    if result.alignment is not None:  # what the alignment section chose, and what the debiaser learned
        metrics["alignment"] = {**result.alignment, **result.model.training_summary()["alignment"]}
    if valid is not None:
        valid_users = valid[columns.user_id].unique()
        known = log.history(valid_users)
        frame = query_frame(valid_users, users, known, columns)
        evaluator = FullCatalogueEvaluator(catalogue[columns.item_id], result.model.candidate_tower.encode(catalogue),
                                           config.eval_ks)
        metrics["valid_masked"] = evaluator.evaluate(valid_users, result.model.query_tower.encode(frame), valid,
                                                     known=known, columns=columns)
    started = time.perf_counter()
    manifest = export_bundle(out, result.model, result.schema, config.to_dict(), catalogue, user_frames(user_ids),
                             columns.user_id, columns.item_id, metrics, run_info, vectors=vectors)
    result.export_seconds = time.perf_counter() - started
    shutil.rmtree(Path(str(out) + ".work"), ignore_errors=True)
    shutil.rmtree(Path(str(out) + ".shares"), ignore_errors=True)
    return manifest, result


def worker_tables(model, catalogue, user_ids, user_frames, columns, folder):
    """This worker's share of the item and user tables (a contiguous slice of each, encoded by
    its copy of the towers) written to ``folder``; on the chief, every share merged:
    ``{"items": (ids, vectors), "users": (ids, vectors)}`` (None on the other workers)."""
    index, workers = task_share()
    folder.mkdir(parents=True, exist_ok=True)
    share = {kind: np.array_split(np.arange(total), workers)[index]
             for kind, total in (("item", len(catalogue)), ("user", len(user_ids)))}
    items = catalogue.iloc[share["item"]]
    mine = [user_ids[i] for i in share["user"]]
    user_vectors = [model.query_tower.encode(frame) for frame in user_frames(mine)]
    parts = {"user_ids": np.asarray(mine), "item_ids": items[columns.item_id].to_numpy(),
             "user_vecs": np.concatenate(user_vectors) if user_vectors else np.zeros((0, 1), np.float32),
             "item_vecs": model.candidate_tower.encode(items) if len(items) else np.zeros((0, 1), np.float32),
             "user_positions": share["user"], "item_positions": share["item"],
             "user_total": len(user_ids), "item_total": len(catalogue)}
    staging = folder / f".share-{index}.npz"
    np.savez(staging, **parts)
    staging.rename(folder / f"share-{index}.npz")  # a share is there whole or not at all
    if not is_chief():
        return None
    deadline = time.monotonic() + SHARE_WAIT_SECONDS
    paths = [folder / f"share-{w}.npz" for w in range(workers)]
    while not all(path.exists() for path in paths):
        if time.monotonic() > deadline:
            missing = [path.name for path in paths if not path.exists()]
            raise RuntimeError(f"workers did not write their table shares within {SHARE_WAIT_SECONDS}s: {missing}")
        time.sleep(0.5)
    shards = [dict(np.load(path, allow_pickle=False)) for path in paths]
    for shard in shards:
        for kind in ("user", "item"):
            if not len(shard[f"{kind}_ids"]):  # more workers than rows: an empty share
                shard[f"{kind}_vecs"] = None
    user_ids, user_vecs, item_ids, item_vecs = merge_vector_shards(shards)
    return {"items": (item_ids, item_vecs), "users": (user_ids, user_vecs)}


def demo_run(out, seed: int = 0, epochs: int = 8, verbose=1) -> dict:
    """Synthetic data -> train -> export -> test against popularity, through the exported bundle.

    Returns sizes, the two models' masked test metrics, the manifest and the seconds taken."""
    started = time.perf_counter()
    interactions, users, items = make_synthetic(seed=seed)
    train, valid, test = leave_last_out(interactions)
    config = TrainConfig(epochs=epochs, early_stopping_patience=2, min_epochs=1, seed=seed)
    manifest, _ = train_run(train, users, items, valid, config, out, verbose=verbose,
                            run_info={"data": "synthetic demo", "seed": seed})
    seen = concat_tables([train, valid])
    user_ids, user_vecs, item_ids, item_vecs = Bundle(out).embed(users, items, seen)
    return {"users": len(users), "items": len(items), "interactions": len(interactions),
            "train": len(train), "valid": len(valid), "test": len(test), "manifest": manifest,
            "model": FullCatalogueEvaluator(item_ids, item_vecs).evaluate(user_ids, user_vecs, test, known=seen),
            "popularity": popularity_metrics(seen, item_ids, test, known=seen, columns=Columns()),
            "seconds": time.perf_counter() - started}
