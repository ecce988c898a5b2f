"""Where the default two-tower model and EASE differ on ML-100K random80 (issue 2's open bar).

For each seed: the foundation model (``TrainConfig`` defaults, the history the query may see =
the train file), and EASE (closed-form item-item, lambda 500, the reference in
``../shared/data/BASELINES.md``) computed here in numpy. Both are scored as PROTOCOL.md says
(masked full catalogue, top 10); each held-out row is a hit or a miss for each model, and the
hits are broken down by the held-out item's popularity (training counts) and by the user's
activity (training rows), in quintiles; and the two-tower scores plus a popularity bonus
(beta * log(training count + 1)) test whether the gap is a missing popularity bias. Writes
``benchmarks/results/ease_gap.json``;
BENCHMARKS.md summarises it.

    python benchmarks/ease_gap.py                # seed 0, about 3 minutes on 2 cores
    python benchmarks/ease_gap.py --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.provenance import write_results  # noqa: E402

POPULARITY_BONUS_BETAS = (0.01, 0.02, 0.03, 0.05, 0.08)


def ease_item_weights(interactions: np.ndarray, regularization: float) -> np.ndarray:
    """EASE (Steck 2019): B = I - P diag(1 / diag(P)) with P = (X'X + lambda I)^-1, zero diagonal."""
    gram = interactions.T @ interactions
    gram[np.diag_indices_from(gram)] += regularization
    precision = np.linalg.inv(gram)
    weights = precision / -np.diag(precision)
    weights[np.diag_indices_from(weights)] = 0.0
    return weights


def row_hits(scores: np.ndarray, known: np.ndarray, test_rows: np.ndarray, test_cols: np.ndarray, k: int = 10):
    """Per held-out (user row, item column): whether the item is in the user's masked top k."""
    from tt_tf.evaluation.topk import top_k_per_row
    top = top_k_per_row(np.where(known, -np.inf, scores), k)
    in_top = np.zeros(known.shape, bool)
    np.put_along_axis(in_top, top, True, axis=1)
    return in_top[test_rows, test_cols]


def quintile_table(frame: pd.DataFrame, by: str) -> list:
    # quintiles of the rows; ranks break ties so every bucket holds a fifth of the rows
    buckets = pd.qcut(frame[by].rank(method="first"), 5, labels=False)
    rows = []
    for bucket, part in frame.groupby(buckets):
        rows.append({"quintile": int(bucket) + 1, "min": int(part[by].min()), "max": int(part[by].max()),
                     "rows": len(part), "two_tower": float(part.two_tower.mean()), "ease": float(part.ease.mean())})
    return rows


def run_seed(split_dir: Path, seed: int, regularization: float) -> dict:
    from tt_tf.data.tables import query_frame
    from tt_tf.training.config import TrainConfig
    from tt_tf.training.train import train_model
    train, test = pd.read_csv(split_dir / "train.csv"), pd.read_csv(split_dir / "test.csv")
    users, items = pd.read_csv(split_dir.parent / "users.csv"), pd.read_csv(split_dir.parent / "items.csv")
    result = train_model(train, users, items, TrainConfig(seed=seed), verbose=0)
    test_users = np.sort(test.user_id.unique())
    user_vectors = result.model.query_tower.encode(query_frame(test_users, users, train))
    item_vectors = result.model.candidate_tower.encode(items)
    column = pd.Series(np.arange(len(items)), index=items.item_id)
    user_row = pd.Series(np.arange(len(test_users)), index=test_users)
    all_users = np.sort(train.user_id.unique())
    matrix_row = pd.Series(np.arange(len(all_users)), index=all_users)
    matrix = np.zeros((len(all_users), len(items)), np.float64)
    matrix[matrix_row[train.user_id].to_numpy(), column[train.item_id].to_numpy()] = 1.0
    known = matrix[matrix_row[test_users].to_numpy()] > 0
    ease_scores = known.astype(np.float64) @ ease_item_weights(matrix, regularization)
    test_rows, test_cols = user_row[test.user_id].to_numpy(), column[test.item_id].to_numpy()
    two_tower_scores = user_vectors @ item_vectors.T
    log_counts = np.log(matrix.sum(axis=0) + 1.0)
    # whether the gap is a missing popularity bias: the same scores plus beta * log(count + 1)
    bonus = {f"{beta:g}": float(row_hits(two_tower_scores + beta * log_counts, known, test_rows, test_cols).mean())
             for beta in POPULARITY_BONUS_BETAS}
    frame = pd.DataFrame({
        "two_tower": row_hits(two_tower_scores, known, test_rows, test_cols),
        "ease": row_hits(ease_scores, known, test_rows, test_cols),
        "item_count": test.item_id.map(train.item_id.value_counts()).fillna(0).to_numpy(),
        "user_rows": test.user_id.map(train.user_id.value_counts()).to_numpy()})
    return {"seed": seed, "best_epoch": result.best_epoch, "recall@10": {"two_tower": float(frame.two_tower.mean()),
                                                                          "ease": float(frame.ease.mean())},
            "either": float((frame.two_tower | frame.ease).mean()), "popularity_bonus": bonus,
            "by_item_popularity": quintile_table(frame, "item_count"),
            "by_user_activity": quintile_table(frame, "user_rows")}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--ease-lambda", type=float, default=500.0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ease_gap.json"))
    args = parser.parse_args()
    from tt_tf.data.tables import DataError
    from tt_tf.datasets.movielens import find_shared_data
    try:
        split_dir = find_shared_data(ROOT) / "ml-100k-splits" / "random80"
    except DataError as error:
        sys.exit(f"ease_gap: nothing measured: {error}")
    runs = []
    for seed in args.seeds:
        runs.append(run_seed(split_dir, seed, args.ease_lambda))
        r = runs[-1]["recall@10"]
        print(f"seed {seed}: two-tower {r['two_tower']:.4f}, EASE {r['ease']:.4f}", flush=True)
    report = {"command": "python benchmarks/ease_gap.py --seeds " + " ".join(map(str, args.seeds))
                         + ("" if args.ease_lambda == 500 else f" --ease-lambda {args.ease_lambda:g}"),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "ease_lambda": args.ease_lambda, "runs": runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_results(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
