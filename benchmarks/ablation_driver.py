"""Shared driver of the ML-100K loo ablations: one TrainConfig change per variant, seeds
outermost, results written after every run (``--resume`` keeps them)."""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from pathlib import Path

import pandas as pd

from benchmarks.provenance import write_results  # noqa: E402
from tt_tf.data.tables import query_frame
from tt_tf.datasets.movielens import find_shared_data
from tt_tf.evaluation.full_catalogue import FullCatalogueEvaluator, top_k_diversity
from tt_tf.training.config import TrainConfig
from tt_tf.training.train import train_model

ROOT = Path(__file__).resolve().parents[1]
METRICS = ["recall@10", "recall@100", "ndcg@10", "coverage@10", "long_tail_share@10", "seconds_per_epoch"]


def run_one(split_dir: Path, variant: str, overrides: dict, seed: int) -> dict:
    train, valid, test = (pd.read_csv(split_dir / f"{name}.csv") for name in ("train", "valid", "test"))
    users, items = pd.read_csv(split_dir.parent / "users.csv"), pd.read_csv(split_dir.parent / "items.csv")
    config = TrainConfig(seed=seed, **overrides)
    result = train_model(train, users, items, config, valid=valid, verbose=0)
    seen = pd.concat([train, valid], ignore_index=True)
    test_users = test.user_id.unique()
    user_vectors = result.model.query_tower.encode(query_frame(test_users, users, seen))
    item_vectors = result.model.candidate_tower.encode(items)
    evaluator = FullCatalogueEvaluator(items.item_id, item_vectors)
    metrics = evaluator.evaluate(test_users, user_vectors, test, known=seen)
    counts = train.item_id.value_counts().reindex(items.item_id).fillna(0).to_numpy()
    diversity = top_k_diversity(user_vectors, item_vectors, counts, 10, evaluator.known_rows(test_users, seen))
    return {"variant": variant, "seed": seed, **{k: metrics[k] for k in ("recall@10", "recall@100", "ndcg@10")},
            **diversity, "epochs": result.epochs_run, "best_epoch": result.best_epoch,
            "train_seconds": round(result.train_seconds, 1),
            "seconds_per_epoch": round(result.train_seconds / max(result.epochs_run, 1), 2),
            "config": overrides}


def summarise(runs: list, metrics=METRICS) -> dict:
    """Mean and standard deviation of each metric per variant, over the seeds that have it."""
    summary = {}
    for variant in dict.fromkeys(r["variant"] for r in runs):
        mine = [r for r in runs if r["variant"] == variant]
        summary[variant] = {"seeds": len(mine)}
        for key in metrics:
            values = [r[key] for r in mine if r.get(key) is not None]
            if values:
                summary[variant][key] = {"mean": statistics.mean(values),
                                         "std": statistics.stdev(values) if len(values) > 1 else 0.0}
    return summary


def run_ablation(variants: dict, description: str, script: str, out_name: str, run, metrics=METRICS,
                 context=None):
    """The command line of an ablation: ``run(variant, spec, seed)`` returns one result row;
    seeds outermost, so a cut-short run still covers every variant; results are written after
    every run and ``--resume`` keeps them."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(variants), choices=list(variants))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / out_name))
    parser.add_argument("--resume", action="store_true", help="keep the runs already in --out")
    args = parser.parse_args()
    runs = json.loads(Path(args.out).read_text())["runs"] if args.resume and Path(args.out).exists() else []
    for seed in args.seeds:
        for variant in args.variants:
            if any(r["variant"] == variant and r["seed"] == seed for r in runs):
                continue
            runs.append(run(variant, variants[variant], seed))
            last = runs[-1]
            print(f"{variant} seed {seed}: " + " ".join(f"{k} {last[k]:.4f}" for k in metrics if k in last),
                  flush=True)
            report = {"command": f"python benchmarks/{script}", **(context or {}),
                      "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                      "complete": all(any(r["variant"] == v and r["seed"] == s for r in runs)
                                      for v in args.variants for s in args.seeds),
                      "summary": summarise(runs, metrics), "runs": runs}
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            write_results(args.out, report)
    print(f"wrote {args.out}")


def main(variants: dict, description: str, script: str, out_name: str):
    """An ablation of TrainConfig changes on MovieLens 100K loo."""
    def run(variant, overrides, seed):
        return run_one(find_shared_data(ROOT) / "ml-100k-splits" / "loo", variant, overrides, seed)
    run_ablation(variants, description, script, out_name, run, METRICS, {"split": "loo (masked)"})
