"""One training run as ``tt-tf train`` does it: train, evaluate on the validation rows, export
the bundle; and the synthetic demo run behind ``tt-tf demo``."""
from __future__ import annotations

import time

from tt_tf.bundle.export import export_bundle
from tt_tf.bundle.reader import Bundle
from tt_tf.data.synthetic import leave_last_out, make_synthetic
from tt_tf.data.tables import Columns, concat_tables, query_frame
from tt_tf.evaluation.full_catalogue import FullCatalogueEvaluator, popularity_metrics
from tt_tf.training.config import TrainConfig
from tt_tf.training.distribute import is_chief
from tt_tf.training.train import columns_of, prepare_tables, train_model


def train_run(interactions, users, items, valid, config: TrainConfig, out, verbose=1, run_info=None):
    """Train, evaluate on ``valid`` (masked, full catalogue), export the bundle to ``out``.

    Returns ``(manifest, training result)``; a non-chief worker of a multi-worker run trains
    its share and returns ``(None, result)``: the chief writes the bundle.
    """
    result = train_model(interactions, users, items, config, valid=valid, verbose=verbose)
    if config.distribute == "multi_worker" and not is_chief():
        return None, result
    columns = columns_of(config)
    _, users, items, _ = prepare_tables(interactions, users, items, None, columns)
    interactions, valid = result.train, result.valid
    catalogue = items if items is not None else interactions[[columns.item_id]].drop_duplicates()
    metrics = {"train_seconds": round(result.train_seconds, 2), "epochs": result.epochs_run,
               "best_epoch": result.best_epoch,
               "history_mode": result.history_mode, "examples_per_second": round(result.examples_per_second, 1),
               "history_encoder": "attention" if getattr(result.model.query_tower.input_block, "history_encoder",
                                                          None) is not None else "mean",
               "training_curves": {name: [float(v) for v in values] for name, values in result.history.items()}}
    if valid is not None:
        valid_users = valid[columns.user_id].unique()
        frame = query_frame(valid_users, users, interactions, columns)
        evaluator = FullCatalogueEvaluator(catalogue[columns.item_id], result.model.candidate_tower.encode(catalogue),
                                           config.eval_ks)
        metrics["valid_masked"] = evaluator.evaluate(valid_users, result.model.query_tower.encode(frame), valid,
                                                     known=interactions, columns=columns)
    seen = concat_tables([interactions, valid])
    user_ids = list(dict.fromkeys(list(users[columns.user_id]) if users is not None else [])
                    | dict.fromkeys(seen[columns.user_id]))
    user_frame = query_frame(user_ids, users, seen if config.use_history else None, columns)
    manifest = export_bundle(out, result.model, result.schema, config.to_dict(), catalogue, user_frame,
                             columns.user_id, columns.item_id, metrics, run_info)
    return manifest, result


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
