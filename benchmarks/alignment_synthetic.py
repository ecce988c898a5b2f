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

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ablation_driver import run_ablation  # noqa: E402

from benchmarks.alignment_experiment import SOFT_LABELS, TASK_WEIGHTS, alignment_experiment  # noqa: E402
from tt_tf.alignment import LightRanker, ValueDebiaser  # noqa: E402


def _ranker(soft=False):
    return LightRanker(len(TASK_WEIGHTS), TASK_WEIGHTS, num_soft_tasks=len(TASK_WEIGHTS) if soft else 0)


VARIANTS = {
    "clicks": dict(rows="clicks", value_weighted=False),
    "value-weighted": dict(),
    "debias-position": dict(debiaser=lambda: ValueDebiaser(num_positions=8)),
    "debias-position-user": dict(debiaser=lambda: ValueDebiaser(num_positions=8, use_user=True)),
    "light-ranker": dict(light_ranker=_ranker),
    "distillation": dict(light_ranker=lambda: _ranker(soft=True), soft_label_features=SOFT_LABELS,
                         distillation_weight=1.0),
    **{f"reward-{beta:g}": dict(reward_weight=beta, reward_model="known", reward_temperature=0.5)
       for beta in (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)},
    # the proxy trained jointly on the log's labels instead of the known ranker
    "reward-joint-1": dict(light_ranker=_ranker, reward_model="light_ranker", reward_weight=1.0,
                           reward_temperature=0.5),
}
METRICS = ["recall@10", "value@10", "ranker_overlap@10", "rerank_value@10", "rerank_overlap@10",
           "ranker_agreement", "position_error", "seconds"]


def run_one(variant: str, spec: dict, seed: int) -> dict:
    spec = dict(spec)
    rows = spec.pop("rows", "all")
    metrics, _ = alignment_experiment({k: (v() if callable(v) else v) for k, v in spec.items()}, seed=seed,
                                      rows=rows)
    return {"variant": variant, "seed": seed, **metrics,
            "config": {k: v for k, v in VARIANTS[variant].items() if not callable(v)}}


if __name__ == "__main__":
    run_ablation(VARIANTS, __doc__, "alignment_synthetic.py", "alignment_synthetic.json", run_one, METRICS,
                 {"data": "make_alignment_data(num_users=800, num_items=500, sessions_per_user=10)"})
