"""Alignment ablation on the synthetic impression log with planted truth (issue 6).

Per seed: ``make_alignment_data`` (800 users, 500 items, 10 sessions of 8 shown items),
sessions 0-7 train, 8-9 held out. Every variant trains the same towers (user id + history of
earlier clicks; item id + category) for a fixed number of epochs and is measured against the
truth:

* recall@10: held-out clicks, full catalogue, training clicks masked;
* value@10: sum of the known ranker's value over retrieval's top 10 / the best possible top 10;
* ranker_overlap@10: share of retrieval's top 10 in the known ranker's top 10;
* with a light ranker: the same two after retrieving 100 and re-ranking to 10, and the
  correlation of its value with the logged ranker's on held-out impressions (agreement);
* with a position debiaser: the largest error of the learned position curve (relative to
  position 0) against the planted ``position_bias``.

    python benchmarks/alignment_synthetic.py                   # every variant, seeds 0 1 2
    python benchmarks/alignment_synthetic.py --variants value-weighted reward-1 --seeds 0 --resume
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tt_tf._keras import keras  # noqa: E402
from tt_tf.alignment import (AlignedTwoTowerModel, LightRanker, SavedModelRanker, ValueDebiaser,  # noqa: E402
                             rerank)
from tt_tf.alignment.data import impression_dataset  # noqa: E402
from tt_tf.config import TrainConfig  # noqa: E402
from tt_tf.data import HISTORY_COLUMN, build_schema  # noqa: E402
from tt_tf.evaluation import FullCatalogueEvaluator  # noqa: E402
from tt_tf.synthetic_alignment import (TASKS, export_known_ranker, make_alignment_data,  # noqa: E402
                                       session_histories)
from tt_tf.train import build_model, set_seed  # noqa: E402

WEIGHTS = [1.0, 2.0, 4.0]
SOFT = [f"ranker_{t}" for t in TASKS]
TRAIN_SESSIONS = 8
EPOCHS = 5


def _ranker(soft=False):
    return LightRanker(len(TASKS), WEIGHTS, num_soft_tasks=len(TASKS) if soft else 0)


VARIANTS = {
    "clicks": dict(rows="clicks", value_weighted=False),
    "value-weighted": dict(),
    "debias-position": dict(debiaser=lambda: ValueDebiaser(num_positions=8)),
    "debias-position-user": dict(debiaser=lambda: ValueDebiaser(num_positions=8, use_user=True)),
    "light-ranker": dict(light_ranker=_ranker),
    "distillation": dict(light_ranker=lambda: _ranker(soft=True), soft_label_features=SOFT, distillation_weight=1.0),
    **{f"reward-{beta:g}": dict(reward_weight=beta, reward_model="known", reward_temperature=0.5)
       for beta in (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)},
    # the proxy trained jointly on the log's labels instead of the known ranker
    "reward-joint-1": dict(light_ranker=_ranker, reward_model="light_ranker", reward_weight=1.0,
                           reward_temperature=0.5),
}
METRICS = ["recall@10", "value@10", "ranker_overlap@10", "rerank_value@10", "rerank_overlap@10",
           "ranker_agreement", "position_error", "seconds"]


def _history_strings(clicks: pd.DataFrame, user_ids) -> list:
    ordered = clicks.sort_values(["user_id", "session", "position"])
    by_user = ordered.groupby("user_id")["item_id"].agg(lambda s: "|".join(map(str, s)))
    return [by_user.get(u, "") for u in user_ids]


def run_one(variant: str, seed: int, workdir: Path) -> dict:
    spec = dict(VARIANTS[variant])
    impressions, users, items, truth = make_alignment_data(num_users=800, num_items=500, sessions_per_user=10,
                                                           seed=seed)
    impressions[HISTORY_COLUMN] = session_histories(impressions)
    train = impressions[impressions.session < TRAIN_SESSIONS].reset_index(drop=True)
    test = impressions[impressions.session >= TRAIN_SESSIONS].reset_index(drop=True)
    set_seed(seed)
    config = TrainConfig(query_dimensions=[64, 32], candidate_dimensions=[64, 32], id_embedding_dim=32,
                         logq_correction=False, logits_temperature=0.2, seed=seed)
    schema = build_schema(train, users, items)
    rows = train[train.click > 0] if spec.pop("rows", "all") == "clicks" else train
    kwargs = {k: (v() if callable(v) else v) for k, v in spec.items()}
    if kwargs.get("reward_model") == "known":
        export_known_ranker(truth, workdir / f"ranker-{seed}")
        kwargs["reward_model"] = SavedModelRanker(workdir / f"ranker-{seed}", ["user_id"], ["item_id"], WEIGHTS)
    model = build_model(schema, config, model_class=AlignedTwoTowerModel, label_features=list(TASKS),
                        task_weights=WEIGHTS, **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    dataset = impression_dataset(rows, users, items, schema, extra_columns=list(TASKS) + ["position"] + SOFT,
                                 batch_size=512, seed=seed)
    started = time.perf_counter()
    model.fit(dataset, epochs=EPOCHS, verbose=0)
    seconds = time.perf_counter() - started

    clicks = train[train.click > 0]
    user_ids = users.user_id.to_numpy()
    query = pd.DataFrame({"user_id": user_ids, HISTORY_COLUMN: _history_strings(clicks, user_ids)})
    user_vectors = model.query_tower.encode(query)
    item_vectors = model.candidate_tower.encode(items)
    held_out = test[test.click > 0]
    evaluator = FullCatalogueEvaluator(items.item_id, item_vectors)
    metrics = {"recall@10": evaluator.evaluate(held_out.user_id.unique(),
                                               user_vectors[held_out.user_id.unique() - 1], held_out,
                                               known=clicks)["recall@10"]}
    values = truth.ranker_values(np.arange(len(user_ids)), np.arange(len(items)))
    ideal = np.sort(values, axis=1)[:, -10:]
    ranker_top = np.argsort(-values, axis=1)[:, :10]

    def quality(top):
        chosen = np.take_along_axis(values, top, axis=1)
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, ranker_top)])
        return float(chosen.sum() / ideal.sum()), float(overlap)

    top = np.argsort(-(user_vectors @ item_vectors.T), axis=1)[:, :10]
    metrics["value@10"], metrics["ranker_overlap@10"] = quality(top)
    if model.light_ranker is not None:
        reranked, _ = rerank(user_vectors, item_vectors, model.light_ranker, num_retrieve=100, k=10)
        metrics["rerank_value@10"], metrics["rerank_overlap@10"] = quality(reranked)
        predicted = model.light_ranker(user_vectors[test.user_id.to_numpy() - 1],
                                       item_vectors[test.item_id.to_numpy() - 1][:, None, :])["value"].numpy()[:, 0]
        logged = (test[SOFT].to_numpy() * WEIGHTS).sum(1)
        metrics["ranker_agreement"] = float(np.corrcoef(predicted, logged)[0, 1])
    if model.debiaser is not None:
        learned = model.debiaser.position_effects()
        metrics["position_error"] = float(np.abs(learned / learned[0]
                                                 - truth.position_bias / truth.position_bias[0]).max())
        metrics["position_curve"] = [round(float(x), 4) for x in learned / learned[0]]
        metrics["planted_curve"] = [round(float(x), 4) for x in truth.position_bias / truth.position_bias[0]]
    return {"variant": variant, "seed": seed, **metrics, "seconds": round(seconds, 1), "rows": len(rows),
            "config": {k: v for k, v in VARIANTS[variant].items() if not callable(v)}}


def summarise(runs: list) -> dict:
    summary = {}
    for variant in dict.fromkeys(r["variant"] for r in runs):
        mine = [r for r in runs if r["variant"] == variant]
        summary[variant] = {"seeds": len(mine)}
        for key in METRICS:
            values = [r[key] for r in mine if r.get(key) is not None]
            if values:
                summary[variant][key] = {"mean": statistics.mean(values),
                                         "std": statistics.stdev(values) if len(values) > 1 else 0.0}
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "alignment_synthetic.json"))
    parser.add_argument("--resume", action="store_true", help="keep the runs already in --out")
    args = parser.parse_args()
    runs = json.loads(Path(args.out).read_text())["runs"] if args.resume and Path(args.out).exists() else []
    with tempfile.TemporaryDirectory() as workdir:
        for seed in args.seeds:
            for variant in args.variants:
                if any(r["variant"] == variant and r["seed"] == seed for r in runs):
                    continue
                runs.append(run_one(variant, seed, Path(workdir)))
                last = runs[-1]
                print(f"{variant} seed {seed}: " + " ".join(f"{k} {last[k]:.4f}" for k in METRICS if k in last),
                      flush=True)
                report = {"command": "python benchmarks/alignment_synthetic.py",
                          "data": "make_alignment_data(num_users=800, num_items=500, sessions_per_user=10)",
                          "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                          "complete": all(any(r["variant"] == v and r["seed"] == s for r in runs)
                                          for v in args.variants for s in args.seeds),
                          "summary": summarise(runs), "runs": runs}
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
