"""Foundation acceptance numbers on MovieLens 100K, through the real CLI.

For each split and seed: ``tt-tf train`` with default settings (loo: train + valid files;
random80: train only), ``tt-tf embed`` with ``--history`` = every interaction the query may
see (train + valid), then masked full-catalogue scoring of the test file as PROTOCOL.md says.
Writes ``benchmarks/results/foundation_ml100k.json``; BENCHMARKS.md summarises it.

    python benchmarks/foundation_ml100k.py                 # the three splits, seeds 0 1 2
    python benchmarks/foundation_ml100k.py --splits loo --seeds 0
    python benchmarks/foundation_ml100k.py --resume     # keep finished runs of the JSON, do the rest
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.provenance import write_results  # noqa: E402
from tt_tf.datasets.movielens import find_shared_data  # noqa: E402
from tt_tf.evaluation.full_catalogue import FullCatalogueEvaluator, popularity_metrics  # noqa: E402

# the foundation issue's bars; loo_random_ties (next-item claims are judged on it) has none yet
BARS = {"loo": 0.095, "loo_random_ties": None, "random80": 0.18}


def tt_tf(*args):
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tt_tf.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if done.returncode != 0:
        raise SystemExit(f"tt-tf {args[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - started, done.stdout


def run_one(split_dir: Path, split: str, seed: int, workdir: Path) -> dict:
    run_dir = workdir / f"{split}-seed{seed}"
    train_file, valid_file, test_file = split_dir / "train.csv", split_dir / "valid.csv", split_dir / "test.csv"
    args = ["train", "--interactions", train_file, "--users", split_dir.parent / "users.csv",
            "--items", split_dir.parent / "items.csv", "--out", run_dir, "--seed", seed, "--quiet"]
    history_files = [train_file]
    if valid_file.exists():
        args += ["--valid", valid_file]
        history_files.append(valid_file)
    wall, _ = tt_tf(*args)
    vectors = workdir / f"{split}-seed{seed}.npz"
    tt_tf("embed", run_dir, "--users", split_dir.parent / "users.csv", "--items", split_dir.parent / "items.csv",
          "--history", *history_files, "--out", vectors)
    data = np.load(vectors, allow_pickle=False)
    history = pd.concat([pd.read_csv(f) for f in history_files], ignore_index=True)
    test = pd.read_csv(test_file)
    evaluator = FullCatalogueEvaluator(data["item_ids"], data["item_vecs"])
    masked = evaluator.evaluate(data["user_ids"], data["user_vecs"], test, known=history)
    unmasked = evaluator.evaluate(data["user_ids"], data["user_vecs"], test, known=None)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    return {"split": split, "seed": seed, "masked": masked, "unmasked_recall@100": unmasked["recall@100"],
            "train_seconds": manifest["metrics"]["train_seconds"], "train_command_seconds": round(wall, 1),
            "epochs": manifest["metrics"]["epochs"], "best_epoch": manifest["metrics"]["best_epoch"],
            "history_mode": manifest["metrics"]["history_mode"],
            "examples_per_second": manifest["metrics"]["examples_per_second"], "run_id": manifest["run_id"]}


def summarise(runs: list, split: str, split_dir: Path) -> dict:
    mine = [r for r in runs if r["split"] == split]
    keys = ["recall@10", "ndcg@10", "recall@50", "recall@100", "mrr"]
    summary = {}
    for key in keys:
        values = [r["masked"][key] for r in mine]
        summary[key] = {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}
    for key in ("train_seconds", "examples_per_second", "epochs"):
        values = [r[key] for r in mine]
        summary[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    train = pd.read_csv(split_dir / "train.csv")
    history = pd.concat([train] + ([pd.read_csv(split_dir / "valid.csv")] if (split_dir / "valid.csv").exists()
                                   else []))
    items = pd.read_csv(split_dir.parent / "items.csv")
    popular = popularity_metrics(history, items.item_id, pd.read_csv(split_dir / "test.csv"), known=history)
    summary["popularity_recall@10"] = popular["recall@10"]
    summary["bar_recall@10"] = BARS[split]
    summary["meets_bar"] = None if BARS[split] is None else summary["recall@10"]["mean"] >= BARS[split]
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splits", nargs="+", default=["loo", "loo_random_ties", "random80"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "foundation_ml100k.json"))
    parser.add_argument("--resume", action="store_true", help="keep the runs already in --out")
    args = parser.parse_args()
    splits_root = find_shared_data(ROOT) / "ml-100k-splits"
    runs = []
    if args.resume and Path(args.out).exists():
        runs = [r for r in json.loads(Path(args.out).read_text())["runs"]
                if r["split"] in args.splits and r["seed"] in args.seeds]

    def write_report():
        done = [split for split in args.splits if any(r["split"] == split for r in runs)]
        report = {
            "command": "python benchmarks/" + Path(__file__).name + " --splits " + " ".join(args.splits)
                       + " --seeds " + " ".join(map(str, args.seeds)),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
            "complete": len(runs) == len(args.splits) * len(args.seeds),
            "summary": {split: summarise(runs, split, splits_root / split) for split in done},
            "runs": runs,
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_results(args.out, report)
        return report

    with tempfile.TemporaryDirectory() as tmp:
        for split in args.splits:
            for seed in args.seeds:
                if any(r["split"] == split and r["seed"] == seed for r in runs):
                    continue
                result = run_one(splits_root / split, split, seed, Path(tmp))
                runs.append(result)
                print(f"{split} seed {seed}: recall@10 {result['masked']['recall@10']:.4f} "
                      f"ndcg@10 {result['masked']['ndcg@10']:.4f} recall@100 {result['masked']['recall@100']:.4f} "
                      f"train {result['train_seconds']:.0f}s ({result['examples_per_second']:.0f} ex/s, "
                      f"{result['epochs']} epochs)", flush=True)
                report = write_report()
    report = write_report()
    for split, summary in report["summary"].items():
        r10 = summary["recall@10"]
        print(f"{split}: recall@10 {r10['mean']:.4f} ± {r10['std']:.4f} (bar {summary['bar_recall@10']}, "
              f"popularity {summary['popularity_recall@10']:.4f}); "
              f"median train {summary['train_seconds']['median']:.0f}s")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
