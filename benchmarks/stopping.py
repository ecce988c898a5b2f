"""How much the default stop rule costs, and how much it varies, over seeds and data sets.

Each run trains with the defaults but never stops early (``epochs`` epochs), and records after
every epoch what the stop rule sees (the validation metrics) and what it does not (the test
metrics, full catalogue, masked). Stop rules are then replayed on the recorded validation curve:
the rule is a function of that curve only, and the trajectory does not depend on it, so the
replay gives exactly the epoch a default run stops at and the weights it restores. Per run:
stop epoch, restored (best) epoch, test recall@10 there and at the oracle epoch (the test-best
one, which only this benchmark can know), the cost against the oracle, and the training time
up to the stop (epoch times measured here, without this benchmark's test evaluation).

Data sets: ML-100K ``loo_random_ties`` (train + valid files) and ``random80`` (train only: the
default holds out its own validation rows), and a synthetic log from the project's generator
with a 20k-item catalogue, popularity skew and timestamps (leave-last-out).

    python benchmarks/stopping.py                          # 3 data sets x 5 seeds, 30 epochs
    python benchmarks/stopping.py --datasets synthetic20k --seeds 0
    python benchmarks/stopping.py --replay                 # re-judge the recorded curves only
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.provenance import write_results  # noqa: E402
from tt_tf._keras import keras  # noqa: E402
from tt_tf.data.synthetic import leave_last_out, make_synthetic  # noqa: E402
from tt_tf.data.tables import Columns, concat_tables, query_frame  # noqa: E402
from tt_tf.datasets.movielens import load_ml100k_split  # noqa: E402
from tt_tf.evaluation.full_catalogue import FullCatalogueEvaluator, ranking_metrics  # noqa: E402
from tt_tf.training.config import TrainConfig  # noqa: E402
from tt_tf.training.stopping import (  # noqa: E402
    MIN_EPOCHS_BOUNDS,
    MIN_STEPS,
    PATIENCE_BOUNDS,
    PATIENCE_STEPS,
    StopOnPlateau,
    StopRule,
    resolve_epochs,
)
from tt_tf.training.train import split_validation, train_model  # noqa: E402

DATASETS = ("loo_random_ties", "random80", "synthetic20k")
OUT = ROOT / "benchmarks" / "results" / "stopping.json"
# the rule every default run used before issue 26: EarlyStopping(patience=3) on recall@10
BEFORE = {"monitor": "val_recall_at_10", "patience": 3, "min_epochs": 1, "noise_floor": 0.0}
TARGET_COST = 0.03
TIME_BUDGET = 1.5  # time to the stop, relative to the rule before
CANDIDATE_MONITORS = ("val_recall_at_10", "val_ndcg_at_10", "val_ndcg_at_100", "val_mrr", "val_recall_at_100")


def load(dataset: str) -> dict:
    if dataset == "synthetic20k":
        interactions, users, items = make_synthetic(num_users=3000, num_items=20_000, mean_interactions=25,
                                                    zipf_exponent=0.9, seed=0)
        train, valid, test = leave_last_out(interactions)
        return {"train": train, "valid": valid, "test": test, "users": users, "items": items}
    return load_ml100k_split(dataset)


class TestCurve(keras.callbacks.Callback):
    """After every epoch: masked full-catalogue ranks of the test rows, and the epoch's wall
    time without this callback's own work."""

    def __init__(self, data: dict, train: pd.DataFrame, valid: pd.DataFrame, columns: Columns,
                 keep_ranks: bool = False):
        super().__init__()
        self.keep_ranks = keep_ranks
        seen = concat_tables([train, valid])
        self.valid, self.train = valid, train
        self.valid_queries = query_frame(valid[columns.user_id].unique(), data["users"], train, columns)
        self.ranks = {"valid": [], "test": []}
        self.test = data["test"]
        self.items = data["items"]
        self.queries = query_frame(self.test[columns.user_id].unique(), data["users"], seen, columns)
        self.known = seen
        self.columns = columns
        self.metrics, self.epoch_seconds = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(time.perf_counter() - self.started)
        evaluator = FullCatalogueEvaluator(self.items[self.columns.item_id],
                                           self.model.candidate_tower.encode(self.items))
        ranks = evaluator.ranks(self.queries[self.columns.user_id], self.model.query_tower.encode(self.queries),
                                self.test, self.known, self.columns)
        self.metrics.append(ranking_metrics(ranks))
        if not self.keep_ranks:  # the validation metrics themselves come from train_model's callback
            return
        self.ranks["test"].append(ranks)
        self.ranks["valid"].append(evaluator.ranks(
            self.valid_queries[self.columns.user_id], self.model.query_tower.encode(self.valid_queries),
            self.valid, self.train, self.columns))


def run_one(dataset: str, seed: int, epochs: int, variant: str = "default", rank_cache: Path | None = None) -> dict:
    """``default``: the default rule applied live (its learning-rate reductions change the
    trajectory), recording on past its stop; ``constant``: the trajectory before issue 26
    (one learning rate throughout), on which rules without reductions can be replayed."""
    data = load(dataset)
    config = TrainConfig(seed=seed, epochs=epochs)
    columns = Columns(config.user_id, config.item_id, config.timestamp)
    valid = data.get("valid")
    if valid is None:  # what train_model does without a validation file, done here to know the rows
        train, valid = split_validation(data["train"], config, columns)
    else:
        train = data["train"]
    curve = TestCurve(data, train, valid, columns, keep_ranks=rank_cache is not None)
    # the rule train_model builds, told to keep training after its stop (the oracle needs the rest)
    stopper = StopOnPlateau(StopRule.from_config(config, -(-len(train) // config.batch_size)), config.monitor,
                            stop=False) if variant == "default" else None
    started = time.perf_counter()
    result = train_model(train, data["users"], data["items"], dataclasses.replace(config, early_stopping=False),
                         valid=valid, callbacks=[c for c in (stopper, curve) if c is not None], verbose=0)
    wall = time.perf_counter() - started
    if rank_cache is not None:  # every epoch's ranks, to try other monitors later without training
        rank_cache.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(rank_cache / f"{dataset}-seed{seed}.npz",
                            **{part: np.array(ranks) for part, ranks in curve.ranks.items()})
    valid_curves = {key: [float(v) for v in values] for key, values in result.history.items()
                    if key.startswith("val_")}
    live = {} if stopper is None else {"stop_epoch": stopper.stopped_epoch or epochs, "kept_epoch": stopper.kept_epoch,
                                       "learning_rate": [float(v) for v in result.history["learning_rate"]]}
    return {"dataset": dataset, "seed": seed, "epochs": epochs, "variant": variant, **live,
            "rows": {"train": len(train), "valid": len(valid), "test": len(data["test"])},
            "valid": valid_curves, "test": [m for m in curve.metrics],
            "epoch_seconds": [round(s, 3) for s in curve.epoch_seconds], "wall_seconds": round(wall, 1)}


def steps_per_epoch(run: dict) -> int:
    return -(-run["rows"]["train"] // TrainConfig().batch_size)


def first_reduction(run: dict) -> int:
    """The last epoch trained at the first learning rate (the run's length when it never fell)."""
    rates = run.get("learning_rate") or []
    return next((epoch for epoch in range(1, len(rates)) if rates[epoch] < rates[epoch - 1]), run["epochs"])


def outcome(run: dict, stop_epoch: int, kept_epoch: int) -> dict:
    test = [m["recall@10"] for m in run["test"]]
    oracle_epoch = int(np.argmax(test)) + 1
    return {"seed": run["seed"], "stop_epoch": stop_epoch, "kept_epoch": kept_epoch, "oracle_epoch": oracle_epoch,
            "test_recall@10": test[kept_epoch - 1], "oracle_recall@10": test[oracle_epoch - 1],
            "cost": 1.0 - test[kept_epoch - 1] / test[oracle_epoch - 1],
            "train_seconds": round(sum(run["epoch_seconds"][:stop_epoch]), 1)}


def judge(run: dict, rule: StopRule, monitor: str) -> dict:
    """Replay ``rule`` (no learning-rate reductions) on the run's recorded validation curve;
    ``exact`` when the curve up to the stop was trained at one learning rate."""
    stop_epoch, kept_epoch = rule.replay(run["valid"][monitor], run["valid"].get(monitor + "_stderr"))
    return {**outcome(run, stop_epoch, kept_epoch), "exact": stop_epoch <= first_reduction(run)}


def judge_live(run: dict) -> dict:
    """What the default rule did during the run."""
    return outcome(run, run["stop_epoch"], run["kept_epoch"])


def candidate_rules():
    """The grid the default was picked from: monitor x noise floor x patience and minimum (in
    optimizer steps, as ``"auto"`` converts them)."""
    for monitor in CANDIDATE_MONITORS:
        for noise_floor in (0.0, 0.5, 1.0, 2.0):
            for patience_steps in (300, 600, 900):
                for min_steps in (0, 600, 1200):
                    yield {"monitor": monitor, "noise_floor": noise_floor, "patience_steps": patience_steps,
                           "min_steps": min_steps}


def candidate_rule(candidate: dict, steps: int) -> StopRule:
    return StopRule(patience=resolve_epochs("auto", steps, candidate["patience_steps"], PATIENCE_BOUNDS),
                    min_epochs=max(1, resolve_epochs("auto", steps, candidate["min_steps"], (1, MIN_EPOCHS_BOUNDS[1]))),
                    noise_floor=candidate["noise_floor"])


def compare_candidates(runs: list) -> list:
    """Every candidate rule on every recorded ``constant`` run: the worst cost against the oracle, the mean
    test recall@10 per data set, and the median time to the stop relative to the rule before."""
    rows = []
    before = StopRule(patience=BEFORE["patience"], min_epochs=BEFORE["min_epochs"], noise_floor=BEFORE["noise_floor"])
    runs = [r for r in runs if r.get("variant", "constant") == "constant"]
    if not runs:
        return []
    for candidate in candidate_rules():
        row = {**candidate, "max_cost": 0.0, "costs": []}
        for dataset in DATASETS:
            mine = [r for r in runs if r["dataset"] == dataset]
            if not mine:
                continue
            judged = [judge(r, candidate_rule(candidate, steps_per_epoch(r)), candidate["monitor"]) for r in mine]
            baseline = [judge(r, before, BEFORE["monitor"]) for r in mine]
            row["max_cost"] = max(row["max_cost"], max(j["cost"] for j in judged))
            row["costs"] += [j["cost"] for j in judged]
            row[f"{dataset}_recall@10"] = statistics.mean(j["test_recall@10"] for j in judged)
            row[f"{dataset}_time_ratio"] = statistics.median(j["train_seconds"] for j in judged) / \
                statistics.median(b["train_seconds"] for b in baseline)
        row["mean_cost"] = statistics.mean(row.pop("costs"))
        row["within_time"] = all(row[f"{d}_time_ratio"] <= TIME_BUDGET for d in DATASETS if f"{d}_time_ratio" in row)
        rows.append(row)
    # the pick: within the time budget on every data set, the smallest worst-case cost (to a tenth
    # of a percent: finer is one row of one run), then the smallest mean cost, then the longer minimum
    return sorted(rows, key=lambda row: (not row["within_time"], round(row["max_cost"], 3), row["mean_cost"],
                                         -row["min_steps"]))


def spread(judged: list) -> dict:
    recalls = [j["test_recall@10"] for j in judged]
    return {"runs": judged, "recall@10_mean": statistics.mean(recalls),
            "recall@10_std": statistics.stdev(recalls) if len(recalls) > 1 else 0.0,
            "max_cost": max(j["cost"] for j in judged), "mean_cost": statistics.mean(j["cost"] for j in judged),
            "median_train_seconds": statistics.median(j["train_seconds"] for j in judged)}


def test_noise(runs: list) -> dict:
    """How much test recall@10 moves from one epoch to the next once learning has levelled off
    (the second half of each run), relative to the run's best: the oracle picks the top of that
    wobble, which no rule reading another sample (the validation rows) can follow."""
    relative_sd, oracle_lift = [], []
    for run in runs:
        test = np.array([m["recall@10"] for m in run["test"]])
        tail = test[len(test) // 2:]
        relative_sd.append(float(np.std(np.diff(tail), ddof=1) / np.sqrt(2) / test.max()))
        oracle_lift.append(float(1.0 - np.median(tail) / test.max()))
    return {"epoch_sd_relative": statistics.median(relative_sd),
            "oracle_over_second_half_median": statistics.median(oracle_lift)}


def default_is_pick(candidates: list) -> bool:
    """Whether TrainConfig's defaults are the grid's first candidate."""
    if not candidates:
        return False
    config, pick = TrainConfig(), candidates[0]
    return (config.monitor, config.stop_noise_floor, PATIENCE_STEPS, MIN_STEPS, config.lr_reductions) == \
        (pick["monitor"], pick["noise_floor"], pick["patience_steps"], pick["min_steps"], 0)


def summarise(runs: list) -> dict:
    """Per data set: the default rule and the rule before issue 26. A default without
    learning-rate reductions leaves the trajectory as it was, so both are replayed on the
    ``constant`` runs (exactly); a default with reductions is judged as it ran (``default``
    runs), and the rule before on the same runs (exact up to the first reduction)."""
    before = StopRule(patience=BEFORE["patience"], min_epochs=BEFORE["min_epochs"], noise_floor=BEFORE["noise_floor"])
    config = TrainConfig()
    summary = {}
    for dataset in DATASETS:
        variant = "constant" if config.lr_reductions == 0 else "default"
        mine = [r for r in runs if r["dataset"] == dataset and r.get("variant", "constant") == variant]
        if not mine:
            continue
        steps = steps_per_epoch(mine[0])
        default = StopRule.from_config(config, steps)
        judged = [judge(r, default, config.monitor) if variant == "constant" else judge_live(r) for r in mine]
        out = {"steps_per_epoch": steps, "default_rule": default.describe(), "judged_on": variant,
               "default": spread(judged), "before": spread([judge(r, before, BEFORE["monitor"]) for r in mine])}
        out["meets_cost_target"] = out["default"]["max_cost"] <= TARGET_COST
        # the ceiling of any rule that keeps an epoch by its validation value: train every epoch
        # and keep the validation-best one (no stop at all)
        out["keep_validation_best_of_all"] = spread([
            judge(r, StopRule(patience=r["epochs"], min_epochs=r["epochs"]), config.monitor) for r in mine])
        out["time_ratio"] = out["default"]["median_train_seconds"] / out["before"]["median_train_seconds"]
        out["test_noise"] = test_noise(mine)
        summary[dataset] = out
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--rank-cache", type=Path, help="also save every epoch's ranks here (npz per run)")
    parser.add_argument("--variant", default="default", choices=("default", "constant"),
                        help="default: the default rule, live; constant: one learning rate, for replays")
    parser.add_argument("--replay", action="store_true", help="no training: re-judge the runs in --out")
    args = parser.parse_args()
    out = Path(args.out)
    runs = json.loads(out.read_text())["runs"] if out.exists() else []
    command = f"python benchmarks/{Path(__file__).name} --datasets {' '.join(args.datasets)} " \
              f"--seeds {' '.join(map(str, args.seeds))} --epochs {args.epochs} --variant {args.variant}"

    def write():
        candidates = compare_candidates(runs)
        done = sum(1 for r in runs if r["dataset"] in args.datasets and r["seed"] in args.seeds
                   and r.get("variant", "constant") == args.variant)
        return write_results(out, {"command": command, "complete": done == len(args.datasets) * len(args.seeds),
                                   "before": BEFORE, "monitor": TrainConfig().monitor,
                                   "target_cost": TARGET_COST, "summary": summarise(runs),
                                   "candidates": candidates[:40], "default_is_the_pick": default_is_pick(candidates),
                                   "runs": runs})

    if not args.replay:
        for dataset in args.datasets:
            for seed in args.seeds:
                def same(r):
                    return (r["dataset"], r["seed"], r.get("variant", "constant")) == (dataset, seed, args.variant)
                if any(same(r) and r["epochs"] == args.epochs for r in runs):
                    continue
                run = run_one(dataset, seed, args.epochs, args.variant, args.rank_cache)
                runs[:] = [r for r in runs if not same(r)] + [run]
                best = max(m["recall@10"] for m in run["test"])
                print(f"{dataset} seed {seed}: {run['wall_seconds']:.0f}s, test recall@10 best {best:.4f}", flush=True)
                write()
    report = write()
    for dataset, result in report["summary"].items():
        for name in ("before", "default"):
            if name in result:
                rule = result[name]
                print(f"{dataset} {name}: recall@10 {rule['recall@10_mean']:.4f} ± {rule['recall@10_std']:.4f}, "
                      f"max cost {rule['max_cost']:.1%}, median train {rule['median_train_seconds']:.0f}s")
        if "time_ratio" in result:
            print(f"{dataset}: time ratio {result['time_ratio']:.2f}, cost target met: {result['meets_cost_target']}")


if __name__ == "__main__":
    main()
