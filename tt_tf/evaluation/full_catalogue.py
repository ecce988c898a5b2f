"""Full-catalogue retrieval evaluation (PROTOCOL.md): every held-out (user, item) row is
ranked among all catalogue items by dot product, optionally with the user's other known
interactions removed first (masked mode)."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from tt_tf._keras import keras
from tt_tf.data.tables import Columns
from tt_tf.evaluation.topk import top_k_by_dot

DEFAULT_KS = (10, 50, 100)


def per_row_metrics(ranks: np.ndarray, ks=DEFAULT_KS) -> dict:
    """Each held-out row's recall@K (hit), NDCG@K and reciprocal rank, from 1-based ranks (inf =
    not retrievable); the metrics are their means."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.size == 0:
        raise ValueError("no held-out rows to evaluate")
    out = {}
    for k in ks:
        hit = ranks <= k
        out[f"recall@{k}"] = hit.astype(np.float64)
        out[f"ndcg@{k}"] = np.where(hit, 1.0 / np.log2(np.where(hit, ranks, 1.0) + 1.0), 0.0)
    out["mrr"] = np.where(np.isfinite(ranks), 1.0 / ranks, 0.0)
    return out


def ranking_metrics(ranks: np.ndarray, ks=DEFAULT_KS) -> dict:
    """recall@K (= hit rate), NDCG@K and MRR from 1-based ranks (inf = not retrievable)."""
    return {name: float(values.mean()) for name, values in per_row_metrics(ranks, ks).items()}


def evaluation_metrics(ranks: np.ndarray, ks=DEFAULT_KS) -> dict:
    """``ranking_metrics`` with the counts of rows and of rows that could not be ranked."""
    return {**ranking_metrics(ranks, ks), "rows": int(len(ranks)), "unrankable_rows": int(np.isinf(ranks).sum())}


def ranking_stderrs(ranks: np.ndarray, ks=DEFAULT_KS) -> dict:
    """The standard error of each of ``ranking_metrics`` over the rows (``<name>_stderr``): how
    far the metric would move on another sample of as many rows."""
    return {f"{name}_stderr": float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
            for name, values in per_row_metrics(ranks, ks).items()}


class FullCatalogueEvaluator:
    """Exact full-catalogue ranking by dot product, in batches of users.

    Candidate vectors are given once; each call ranks the held-out items of many users. A
    row's rank is 1 + the number of unmasked items scoring strictly higher than its item
    (ties go to the held-out item). Users or items without a vector rank at infinity (a miss).

    Args:
        item_ids: catalogue ids, one per row of ``item_vectors``.
        item_vectors: float array [num_items, dim].
        ks: the K of recall@K and NDCG@K.
        max_cells: bound on the users x items score block computed at once (memory).

    Example:
        >>> evaluator = FullCatalogueEvaluator(items.item_id, item_vectors)
        >>> metrics = evaluator.evaluate(users.user_id, user_vectors, test, known=train)
        >>> 0.0 <= metrics["recall@10"] <= metrics["recall@100"] <= 1.0
        True
    """

    def __init__(self, item_ids, item_vectors, ks=DEFAULT_KS, max_cells: int = 20_000_000):
        item_vectors = np.asarray(item_vectors, dtype=np.float32)
        item_ids = pd.Index(pd.Series(list(item_ids)).astype(str))
        if item_vectors.ndim != 2 or len(item_ids) != item_vectors.shape[0]:
            raise ValueError(f"item_vectors must be [num_items, dim] with one row per id; got "
                             f"{item_vectors.shape} for {len(item_ids)} ids")
        if item_ids.has_duplicates:
            raise ValueError("item_ids has duplicates")
        if not ks or any(int(k) < 1 for k in ks):
            raise ValueError(f"ks must be positive integers, got {ks!r}")
        self.item_index = item_ids
        self.item_vectors = item_vectors
        self.ks = tuple(int(k) for k in ks)
        self.max_cells = int(max_cells)

    def ranks(self, user_ids, user_vectors, heldout: pd.DataFrame, known: pd.DataFrame | None = None,
              columns: Columns = Columns()) -> np.ndarray:
        """1-based rank of each held-out row's item (``inf`` where it cannot be ranked)."""
        user_vectors = np.asarray(user_vectors, dtype=np.float32)
        user_index = pd.Index(pd.Series(list(user_ids)).astype(str))
        if user_vectors.shape[0] != len(user_index):
            raise ValueError("user_vectors must have one row per user id")
        if user_vectors.ndim != 2 or user_vectors.shape[1] != self.item_vectors.shape[1]:
            raise ValueError(f"user vectors have shape {user_vectors.shape}, items have dim "
                             f"{self.item_vectors.shape[1]}")
        rows_user = user_index.get_indexer(heldout[columns.user_id].astype(str))
        rows_item = self.item_index.get_indexer(heldout[columns.item_id].astype(str))
        ranks = np.full(len(heldout), np.inf)
        valid = (rows_user >= 0) & (rows_item >= 0)
        exclude = self._known_by_user(known, user_index, columns) if known is not None else {}
        users = np.unique(rows_user[valid])
        per_block = max(1, self.max_cells // max(1, len(self.item_index)))
        for start in range(0, len(users), per_block):
            block = users[start:start + per_block]
            scores = user_vectors[block] @ self.item_vectors.T
            position = {u: i for i, u in enumerate(block)}
            selected = np.flatnonzero(valid & np.isin(rows_user, block))
            block_rows = np.array([position[u] for u in rows_user[selected]], dtype=np.int64)
            target_scores = scores[block_rows, rows_item[selected]]
            for u in block:
                if u in exclude:
                    scores[position[u], exclude[u]] = -np.inf
            higher = (scores[block_rows] > target_scores[:, None]).sum(axis=1)
            ranks[selected] = 1.0 + higher
        return ranks

    def known_rows(self, user_ids, known: pd.DataFrame, columns: Columns = Columns()) -> list:
        """Per user id (in order), the catalogue positions of its ``known`` items: the
        exclusions of masked mode, as ``topk.top_k_by_dot`` takes them."""
        user_index = pd.Index(pd.Series(list(user_ids)).astype(str))
        by_user = self._known_by_user(known, user_index, columns)
        return [by_user.get(position, np.zeros(0, np.int64)) for position in range(len(user_index))]

    def _known_by_user(self, known, user_index, columns):
        users = user_index.get_indexer(known[columns.user_id].astype(str))
        items = self.item_index.get_indexer(known[columns.item_id].astype(str))
        keep = (users >= 0) & (items >= 0)
        frame = pd.DataFrame({"u": users[keep], "i": items[keep]})
        return {u: group.to_numpy() for u, group in frame.groupby("u")["i"]}

    def evaluate(self, user_ids, user_vectors, heldout: pd.DataFrame, known: pd.DataFrame | None = None,
                 columns: Columns = Columns()) -> dict:
        """Metrics over the held-out rows; ``known`` given = masked mode, None = unmasked.

        Each row's own item is never masked, even when it also appears in ``known``."""
        return evaluation_metrics(self.ranks(user_ids, user_vectors, heldout, known, columns), self.ks)


class RetrievalEvaluationCallback(keras.callbacks.Callback):
    """Full-catalogue evaluation at the end of every epoch, logged as ``val_recall_at_10`` etc.

    Put it before ``EarlyStopping``/``ModelCheckpoint`` in the callback list so they can
    monitor its metrics (e.g. ``EarlyStopping(monitor="val_recall_at_10", mode="max")``).

    Args:
        query_frame: one row of raw query features per user to evaluate.
        item_frame: raw candidate features of the whole catalogue.
        heldout: the held-out (user, item) rows.
        known: the users' known interactions (masked mode), or None (unmasked).
        columns: id column names.
        ks: K values; ``prefix`` prefixes the log keys.
    """

    def __init__(self, query_frame, item_frame, heldout, known=None, columns: Columns = Columns(),
                 ks=DEFAULT_KS, prefix: str = "val_", verbose: int = 1):
        super().__init__()
        self.query_frame = query_frame
        self.item_frame = item_frame
        self.heldout = heldout
        self.known = known
        self.columns = columns
        self.ks = ks
        self.prefix = prefix
        self.verbose = verbose
        self.history = []

    def on_epoch_end(self, epoch, logs=None):
        started = time.perf_counter()
        item_vectors = self.model.candidate_tower.encode(self.item_frame)
        user_vectors = self.model.query_tower.encode(self.query_frame)
        evaluator = FullCatalogueEvaluator(self.item_frame[self.columns.item_id], item_vectors, self.ks)
        ranks = evaluator.ranks(self.query_frame[self.columns.user_id], user_vectors, self.heldout, self.known,
                                self.columns)
        self.history.append(evaluation_metrics(ranks, self.ks))
        # the standard errors let a stop rule tell a gain from noise (training/stopping.py)
        shown = {self.prefix + name.replace("@", "_at_"): value
                 for name, value in {**ranking_metrics(ranks, self.ks), **ranking_stderrs(ranks, self.ks)}.items()}
        if logs is not None:
            logs.update(shown)
        if self.verbose:
            text = " - ".join(f"{k}: {v:.4f}" for k, v in shown.items()
                              if ("_at_10" in k or k.endswith("mrr")) and not k.endswith("_stderr"))
            print(f"full-catalogue ({time.perf_counter() - started:.1f}s): {text}", flush=True)


def popularity_metrics(train: pd.DataFrame, item_ids, heldout: pd.DataFrame, known: pd.DataFrame | None = None,
                       columns: Columns = Columns(), ks=DEFAULT_KS) -> dict:
    """The popularity baseline: every user gets items ranked by training count."""
    evaluator, user_ids, user_vectors = _popularity_ranker(train, item_ids, heldout, columns, ks)
    return evaluator.evaluate(user_ids, user_vectors, heldout, known, columns)


def popularity_ranks(train: pd.DataFrame, item_ids, heldout: pd.DataFrame, known: pd.DataFrame | None = None,
                     columns: Columns = Columns()) -> np.ndarray:
    """Per held-out row, the rank of its item under the popularity baseline."""
    evaluator, user_ids, user_vectors = _popularity_ranker(train, item_ids, heldout, columns)
    return evaluator.ranks(user_ids, user_vectors, heldout, known, columns)


def _popularity_ranker(train, item_ids, heldout, columns, ks=DEFAULT_KS):
    """Popularity as a one-dimensional model: item vector = training count, user vector = 1."""
    counts = train[columns.item_id].astype(str).value_counts()
    item_ids = list(item_ids)
    scores = counts.reindex(pd.Index([str(i) for i in item_ids])).fillna(0).to_numpy(np.float32)[:, None]
    user_ids = heldout[columns.user_id].astype(str).unique()
    return FullCatalogueEvaluator(item_ids, scores, ks), user_ids, np.ones((len(user_ids), 1), np.float32)


def top_k_diversity(user_vectors, item_vectors, item_popularity, k: int = 10, known_rows=None,
                    head_share: float = 0.2) -> dict:
    """How much of the catalogue the top-k lists reach (``known_rows``: masked mode, as in
    ``topk.top_k_by_dot``); see ``list_diversity``."""
    if len(item_popularity) != len(item_vectors):
        raise ValueError("item_popularity must have one value per item vector")
    return list_diversity(top_k_by_dot(user_vectors, item_vectors, k, known_rows)[0], item_popularity, k, head_share)


def list_diversity(lists: np.ndarray, item_popularity, k: int = 10, head_share: float = 0.2) -> dict:
    """``coverage@k``: distinct items over all top-k ``lists`` (item positions) / catalogue
    size. ``long_tail_share@k``: share of list slots filled by items outside the most popular
    ``head_share`` of the catalogue (by ``item_popularity``, e.g. training counts)."""
    popularity = np.asarray(item_popularity, np.float64)
    head = np.argsort(-popularity, kind="stable")[:max(1, int(round(head_share * len(popularity))))]
    return {f"coverage@{k}": float(len(np.unique(lists)) / len(popularity)),
            f"long_tail_share@{k}": float(1.0 - np.isin(lists, head).mean()) if lists.size else 0.0}
