"""One alignment experiment on the synthetic impression log, measured against its truth.

Shared by ``benchmarks/alignment_synthetic.py`` and ``notebooks/04_alignment.ipynb``."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tt_tf._keras import keras
from tt_tf.alignment.data import impression_dataset
from tt_tf.alignment.light_ranker import rerank
from tt_tf.alignment.model import AlignedTwoTowerModel
from tt_tf.alignment.reward import SavedModelRanker
from tt_tf.alignment.synthetic import TASKS, export_known_ranker, make_alignment_data, session_histories
from tt_tf.data.tables import HISTORY_COLUMN, build_schema
from tt_tf.evaluation.full_catalogue import FullCatalogueEvaluator
from tt_tf.training.config import TrainConfig
from tt_tf.training.train import build_model, set_seed

TASK_WEIGHTS = [1.0, 2.0, 4.0]
SOFT_LABELS = [f"ranker_{t}" for t in TASKS]


def clicked_histories(clicks: pd.DataFrame, user_ids) -> list:
    """Each user's clicked items, oldest first, as the history column's ``a|b|c`` string."""
    ordered = clicks.sort_values(["user_id", "session", "position"])
    by_user = ordered.groupby("user_id")["item_id"].agg(lambda s: "|".join(map(str, s)))
    return [by_user.get(u, "") for u in user_ids]


def alignment_experiment(model_kwargs: dict | None = None, seed: int = 0, rows: str = "all", num_users: int = 800,
                         num_items: int = 500, sessions_per_user: int = 10, train_sessions: int = 8, epochs: int = 5,
                         batch_size: int = 512, config: TrainConfig | None = None, workdir=None):
    """Train an ``AlignedTwoTowerModel`` with ``model_kwargs`` on sessions before
    ``train_sessions`` and measure it. ``model_kwargs["reward_model"] == "known"`` uses the
    planted ranker, exported as a SavedModel, as a frozen reward model. ``rows="clicks"``
    trains on clicked impressions only (plain retrieval).

    Returns (metrics, model): recall@10 on held-out clicks; value@10 (the known ranker's value
    of retrieval's top 10 over the best possible) and ranker_overlap@10; with a light ranker
    the same after retrieving 100 and re-ranking to 10, and ranker_agreement (correlation of
    its value with the logged ranker's on held-out impressions); with a position debiaser
    position_error (largest error of the learned curve, relative to position 0, against the
    planted one) and both curves.
    """
    if rows not in ("all", "clicks"):
        raise ValueError(f"rows must be 'all' or 'clicks', got {rows!r}")
    model_kwargs = dict(model_kwargs or {})
    impressions, users, items, truth = make_alignment_data(num_users=num_users, num_items=num_items,
                                                           sessions_per_user=sessions_per_user, seed=seed)
    impressions[HISTORY_COLUMN] = session_histories(impressions)
    train = impressions[impressions.session < train_sessions].reset_index(drop=True)
    test = impressions[impressions.session >= train_sessions].reset_index(drop=True)
    set_seed(seed)
    # mean-pooled history: the attention encoder needs more than these few epochs to pay here
    config = config or TrainConfig(query_dimensions=[64, 32], candidate_dimensions=[64, 32], id_embedding_dim=32,
                                   logq_correction=False, logits_temperature=0.2, history_encoder="mean", seed=seed)
    schema = build_schema(train, users, items)
    with tempfile.TemporaryDirectory(dir=workdir) as scratch:
        if model_kwargs.get("reward_model") == "known":
            export_known_ranker(truth, Path(scratch) / "ranker")
            model_kwargs["reward_model"] = SavedModelRanker(Path(scratch) / "ranker", ["user_id"], ["item_id"],
                                                            TASK_WEIGHTS)
        model = build_model(schema, config, model_class=AlignedTwoTowerModel,
                            **{"label_features": list(TASKS), "task_weights": TASK_WEIGHTS, **model_kwargs})
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
        dataset = impression_dataset(train[train.click > 0] if rows == "clicks" else train, users, items, schema,
                                     extra_columns=list(TASKS) + ["position"] + SOFT_LABELS,
                                     batch_size=batch_size, seed=seed)
        started = time.perf_counter()
        model.fit(dataset, epochs=epochs, verbose=0)
        seconds = time.perf_counter() - started

    clicks = train[train.click > 0]
    user_ids = users.user_id.to_numpy()
    user_vectors = model.query_tower.encode(
        pd.DataFrame({"user_id": user_ids, HISTORY_COLUMN: clicked_histories(clicks, user_ids)}))
    item_vectors = model.candidate_tower.encode(items)
    held_out = test[test.click > 0]
    test_users = held_out.user_id.unique()
    metrics = {"recall@10": FullCatalogueEvaluator(items.item_id, item_vectors).evaluate(
        test_users, user_vectors[test_users - 1], held_out, known=clicks)["recall@10"]}
    values = truth.ranker_values(np.arange(len(user_ids)), np.arange(len(items)))
    ideal = np.sort(values, axis=1)[:, -10:].sum()
    ranker_top = np.argsort(-values, axis=1)[:, :10]

    def quality(top):
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, ranker_top)])
        return float(np.take_along_axis(values, top, axis=1).sum() / ideal), float(overlap)

    metrics["value@10"], metrics["ranker_overlap@10"] = quality(
        np.argsort(-(user_vectors @ item_vectors.T), axis=1)[:, :10])
    if model.light_ranker is not None:
        reranked, _ = rerank(user_vectors, item_vectors, model.light_ranker, num_retrieve=100, k=10)
        metrics["rerank_value@10"], metrics["rerank_overlap@10"] = quality(reranked)
        predicted = model.light_ranker(user_vectors[test.user_id.to_numpy() - 1],
                                       item_vectors[test.item_id.to_numpy() - 1][:, None, :])["value"].numpy()[:, 0]
        logged = (test[SOFT_LABELS].to_numpy() * TASK_WEIGHTS).sum(1)
        metrics["ranker_agreement"] = float(np.corrcoef(predicted, logged)[0, 1])
    if model.debiaser is not None and model.debiaser.num_positions:
        learned = model.debiaser.position_effects()
        planted = truth.position_bias / truth.position_bias[0]
        metrics["position_error"] = float(np.abs(learned / learned[0] - planted).max())
        metrics["position_curve"] = [round(float(x), 4) for x in learned / learned[0]]
        metrics["planted_curve"] = [round(float(x), 4) for x in planted]
    metrics["seconds"] = round(seconds, 1)
    metrics["rows"] = int(len(clicks) if rows == "clicks" else len(train))
    return metrics, model
