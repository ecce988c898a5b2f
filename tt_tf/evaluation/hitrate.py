"""hit_rate@K in the DSSM-pipeline style (``../shared/reference/pipeline-eval.md``), computed
exactly, with an optional comparison of a faiss HNSW index against the exact answer.

Per user: the top K items by inner product over every item vector (the union over the user's
vectors when a user has several, e.g. multi-interest); hits = distinct recalled ids in the
user's ground truth; ``hit_rate = hits / |ground truth|``. Total = Σ hits / Σ |ground truth|
(micro). Users without a vector, ground-truth items without a vector, and users whose ground
truth is empty (before or after those exclusions) are left out and counted; in a temporal split,
``exclude_new`` first leaves out the users and items first seen in the evaluation window.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from tt_tf.evaluation.topk import top_k_by_dot


@dataclasses.dataclass
class HitRateResult:
    total: float                  # Σ hits / Σ |ground truth| over evaluated users
    details: pd.DataFrame         # user_id, top_ids, top_scores, hits, ground_truth, hit_rate, missed
    counts: dict                  # evaluated and excluded users / items
    approximate: dict | None = None  # faiss vs exact, when asked for

    def summary(self) -> dict:
        approximate = {"approximate": self.approximate} if self.approximate else {}
        return {"hit_rate": self.total, **self.counts, **approximate}


def _ground_truth_sets(ground_truth: pd.DataFrame, user_id: str, item_id: str) -> dict:
    """user -> set of item ids, from long rows (one item per row) or ``A|B|C`` strings/lists."""
    sets: dict = {}
    for user, items in zip(ground_truth[user_id].astype(str), ground_truth[item_id]):
        if isinstance(items, str):
            values = [v for v in items.split("|") if v.strip()]
        elif isinstance(items, (list, tuple, set, np.ndarray)):
            values = list(items)
        elif items is None or (isinstance(items, float) and np.isnan(items)):
            values = []
        else:
            values = [items]
        sets.setdefault(user, set()).update(str(v).strip() for v in values)
    return sets


def hit_rate(item_ids, item_vectors, user_ids, user_vectors, ground_truth: pd.DataFrame, k: int = 200,
             user_id: str = "user_id", item_id: str = "item_id", compare_faiss: bool = False,
             hnsw_m: int = 32, hnsw_ef_search: int = 128) -> HitRateResult:
    """Args:
        item_ids, item_vectors: the catalogue ([n] ids, [n, d] vectors).
        user_ids, user_vectors: [m] ids (repeat an id for several vectors of one user), [m, d].
        ground_truth: rows with ``user_id`` and ``item_id`` (one item per row, or a list /
            ``A|B|C`` string per row).
        k: top K per user vector.
        compare_faiss: also search a faiss HNSW index and report its agreement with exact.
    """
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k!r}")
    for name, frame_column in (("user_id", user_id), ("item_id", item_id)):
        if frame_column not in ground_truth.columns:
            raise ValueError(f"ground truth has no {frame_column!r} column ({name})")
    item_ids = [str(i) for i in item_ids]
    item_vectors = np.asarray(item_vectors, np.float32)
    user_ids = [str(u) for u in user_ids]
    user_vectors = np.asarray(user_vectors, np.float32)
    if item_vectors.ndim != 2 or len(item_vectors) != len(item_ids) or not len(item_ids):
        raise ValueError("item_vectors must be [len(item_ids), dim] with at least one item")
    if user_vectors.ndim != 2 or len(user_vectors) != len(user_ids) or user_vectors.shape[1] != item_vectors.shape[1]:
        raise ValueError("user_vectors must be [len(user_ids), dim] with the items' dim")
    k = min(int(k), len(item_ids))
    known_items = set(item_ids)
    truth = _ground_truth_sets(ground_truth, user_id, item_id)
    vectors_of: dict = {}
    for row, user in enumerate(user_ids):
        vectors_of.setdefault(user, []).append(row)
    counts = {"users_in_ground_truth": len(truth), "users_without_vector": 0, "ground_truth_items_without_vector": 0,
              "users_with_empty_ground_truth": 0, "users_evaluated": 0, "k": k}
    evaluated = []
    for user, items in truth.items():
        if user not in vectors_of:
            counts["users_without_vector"] += 1
            continue
        kept = items & known_items
        counts["ground_truth_items_without_vector"] += len(items) - len(kept)
        if not kept:
            counts["users_with_empty_ground_truth"] += 1
            continue
        evaluated.append((user, kept))
    counts["users_evaluated"] = len(evaluated)
    rows = [r for user, _ in evaluated for r in vectors_of[user]]
    top_rows, top_scores = top_k_by_dot(user_vectors[rows], item_vectors, k) if rows else (np.zeros((0, k), int), None)
    position = {r: i for i, r in enumerate(rows)}
    details, total_hits, total_truth = [], 0, 0
    for user, kept in evaluated:
        best: dict = {}
        for r in vectors_of[user]:
            for column, score in zip(top_rows[position[r]], top_scores[position[r]]):
                item = item_ids[column]
                best[item] = max(best.get(item, -np.inf), float(score))
        recalled = sorted(best, key=lambda i: -best[i])
        hits = [i for i in recalled if i in kept]
        total_hits += len(hits)
        total_truth += len(kept)
        details.append({"user_id": user, "top_ids": recalled, "top_scores": [best[i] for i in recalled],
                        "hits": len(hits), "ground_truth": len(kept), "hit_rate": len(hits) / len(kept),
                        "missed": [i for i in recalled if i not in kept]})
    total = total_hits / total_truth if total_truth else float("nan")
    result = HitRateResult(total, pd.DataFrame(details, columns=["user_id", "top_ids", "top_scores", "hits",
                                                                 "ground_truth", "hit_rate", "missed"]), counts)
    if compare_faiss and rows:
        result.approximate = _compare_faiss(item_vectors, user_vectors[rows], top_rows, k, hnsw_m, hnsw_ef_search,
                                            [user for user, kept in evaluated for _ in vectors_of[user]],
                                            dict(evaluated), item_ids, total_truth)
    return result


def _compare_faiss(items, queries, exact_rows, k, m, ef_search, row_users, truth, item_ids, total_truth) -> dict:
    try:
        import faiss
    except ImportError as error:
        raise ValueError("compare_faiss needs faiss: pip install 'tt_tf[ann]'") from error
    index = faiss.IndexHNSWFlat(items.shape[1], int(m), faiss.METRIC_INNER_PRODUCT)
    index.add(np.ascontiguousarray(items))
    index.hnsw.efSearch = max(int(ef_search), k)
    _, approx = index.search(np.ascontiguousarray(queries), k)
    overlap = [len(set(a[a >= 0]) & set(e)) / k for a, e in zip(approx, exact_rows)]
    recalled: dict = {}
    for user, found in zip(row_users, approx):
        recalled.setdefault(user, set()).update(item_ids[c] for c in found if c >= 0)
    hits = sum(len(recalled[u] & truth[u]) for u in recalled)
    return {"index": f"faiss HNSW M={m} efSearch={index.hnsw.efSearch}", "mean_top_k_overlap": float(np.mean(overlap)),
            "hit_rate": hits / total_truth if total_truth else float("nan")}


def temporal_split(interactions: pd.DataFrame, at, days: float = 1.0, timestamp: str = "timestamp"):
    """``(history, ground_truth)``: interactions up to ``at`` and those in the following ``days``.
    ``at`` is a date/time string or a unix timestamp (seconds); the column may be either."""
    if timestamp not in interactions.columns:
        raise ValueError(f"interactions have no {timestamp!r} column for a temporal split")
    column = interactions[timestamp]
    numeric = pd.api.types.is_numeric_dtype(column)
    times = pd.to_datetime(column, unit="s", utc=True) if numeric else pd.to_datetime(column, utc=True)
    if isinstance(at, str) and at.strip().lstrip("-").replace(".", "", 1).isdigit():
        at = float(at)  # a unix timestamp given on the command line
    cutoff = pd.to_datetime(at, unit="s", utc=True) if isinstance(at, (int, float)) else pd.to_datetime(at, utc=True)
    end = cutoff + pd.Timedelta(days=float(days))
    window = (times > cutoff) & (times <= end)
    if not window.any():
        span = f"{times.min():%Y-%m-%d %H:%M} to {times.max():%Y-%m-%d %H:%M}" if len(times) else "no rows"
        raise ValueError(f"no interactions after {cutoff:%Y-%m-%d %H:%M} within {float(days):g} day(s): the window "
                         f"selects nothing (the data spans {span} UTC)")
    return interactions[times <= cutoff], interactions[window]


def exclude_new(history: pd.DataFrame, ground_truth: pd.DataFrame, user_id: str = "user_id",
                item_id: str = "item_id") -> tuple:
    """``(ground truth without new ids, counts)``: users and items first seen in the evaluation
    window (absent from ``history``) are left out, as the DSSM pipeline does, and counted.

    Example:
        >>> history = pd.DataFrame({"user_id": [1, 2], "item_id": [10, 11]})
        >>> truth = pd.DataFrame({"user_id": [1, 3, 2], "item_id": [11, 10, 12]})
        >>> kept, counts = exclude_new(history, truth)
        >>> kept.to_dict("list"), counts
        ({'user_id': [1], 'item_id': [11]}, {'new_users': 1, 'new_items': 1})
    """
    users = set(history[user_id].astype(str))
    items = set(history[item_id].astype(str))
    user_known = ground_truth[user_id].astype(str).isin(users)
    item_known = ground_truth[item_id].astype(str).isin(items)
    counts = {"new_users": int(ground_truth.loc[~user_known, user_id].astype(str).nunique()),
              "new_items": int(ground_truth.loc[~item_known, item_id].astype(str).nunique())}
    return ground_truth[user_known & item_known].reset_index(drop=True), counts
