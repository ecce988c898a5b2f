"""Exact top-K of scores, for one query (the scorer) or a block of queries (hit rate, batch
scoring). Numpy only: the scorer imports it without TensorFlow.

For a small K of many scores, a cut-off taken from a strided sample of the scores narrows the
partition to the few entries above it; it is exact because it is used only when at least K
entries clear it (the K-th largest score is then itself above the cut-off), and all entries are
partitioned otherwise. Measured on 2 cores: top 10 of 10,000 scores ~16 us instead of ~105 us
for a full ``argpartition``; top 100 of 1,000,000 items for 64 queries, matmul included, 191 ms
instead of 828 ms (BENCHMARKS.md, exact search).
"""
from __future__ import annotations

import numpy as np

SAMPLE_PER_K = 16  # sample entries per wanted entry: the cut-off is the sample's (2K)-th largest


def _sample_step(num_scores: int, k: int) -> int | None:
    """Stride of the sample, or None where a cut-off would not pay (too few scores per K).
    The sample grows with the scores (an eighth of them, 256 to 4,096: a finer cut-off leaves
    fewer candidates) and with K."""
    sample = max(SAMPLE_PER_K * k, min(4096, max(256, num_scores // 8)))
    if num_scores < 2 * sample:
        return None
    return num_scores // sample


def _cutoffs(scores: np.ndarray, k: int, step: int) -> np.ndarray:
    """Per row of ``scores`` ([n, m]), the (2k)-th largest of every ``step``-th score."""
    sample = scores[:, ::step]
    position = sample.shape[1] - 2 * k
    return np.partition(sample, position, axis=1)[:, position]


def _without_nan(scores: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(scores), -np.inf, scores) if scores.dtype.kind == "f" else scores


SORT_BELOW = 256  # entries up to which one stable sort is cheaper than partition + tie check


def _k_best(values: np.ndarray, k: int, positions: np.ndarray | None = None) -> np.ndarray:
    """The ``k`` best of ``positions`` (ascending; default 0..n-1) by ``values``, best first,
    ties: lower position first -- at the boundary too, so equal scores always give the same
    list."""
    if len(values) <= SORT_BELOW:
        chosen = np.argsort(-values, kind="stable")[:k]  # NaN last
        return chosen if positions is None else positions[chosen]
    if k < len(values):
        chosen = np.argpartition(-values, k - 1)[:k]
        kth = values[chosen[k - 1]]  # the partition puts the k-th largest at position k - 1
        if kth != kth:  # NaN: fewer than k numbers, NaN entries fill the list as the lowest scores
            return _k_best(_without_nan(values), k, positions)
        if np.count_nonzero(values >= kth) > k:
            # a tie across the boundary, which the partition broke arbitrarily
            above = np.flatnonzero(values > kth)
            chosen = np.concatenate([above, np.flatnonzero(values == kth)[:k - len(above)]])
        values = values[chosen]
        positions = chosen if positions is None else positions[chosen]
    elif positions is None:
        positions = np.arange(len(values))
    return positions[np.lexsort((positions, -values))]


def _row_top_k(scores: np.ndarray, k: int, cutoff=None) -> np.ndarray:
    if cutoff is not None:
        candidates = np.flatnonzero(scores >= cutoff)  # a NaN cut-off or score is never kept
        if len(candidates) >= k:
            return _k_best(scores[candidates], k, candidates)
    return _k_best(scores, k)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest of 1-D ``scores``, best first (ties: lower position
    first); NaN ranks below every finite number; ``k`` is clipped to the number of scores.

    Example:
        >>> top_k(np.array([0.1, 0.9, 0.5]), 2)
        array([1, 2])
    """
    scores = np.asarray(scores)
    k = min(int(k), len(scores))
    if k <= 0:
        return np.zeros(0, np.int64)
    step = _sample_step(len(scores), k)
    return _row_top_k(scores, k, None if step is None else _cutoffs(scores[None, :], k, step)[0])


def top_k_per_row(scores: np.ndarray, k: int) -> np.ndarray:
    """``[n, k]`` column positions of each row's ``k`` highest ``scores`` ([n, m]), best first
    (ties: lower position first; NaN below every finite number); ``k`` is clipped to ``m``.

    Example:
        >>> top_k_per_row(np.array([[0.1, 0.9, 0.5], [3.0, 2.0, 1.0]]), 2)
        array([[1, 2],
               [0, 1]])
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [queries, items], got shape {scores.shape}")
    k = min(int(k), scores.shape[1])
    if k <= 0 or len(scores) == 0:
        return np.zeros((len(scores), max(k, 0)), np.int64)
    step = _sample_step(scores.shape[1], k)
    if step is not None:
        return np.stack([_row_top_k(row, k, cutoff) for row, cutoff in zip(scores, _cutoffs(scores, k, step))])
    # few items per K: one partition of the whole block; rows with a tie at the boundary are
    # chosen again one by one (a partition picks among tied entries arbitrarily)
    clean = _without_nan(scores)
    top = np.argpartition(-clean, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(clean, top, axis=1)
    top = np.take_along_axis(top, np.lexsort((top, -values), axis=1), axis=1)
    if k < scores.shape[1]:
        kth = values.min(axis=1, keepdims=True)
        for row in np.flatnonzero(np.count_nonzero(clean >= kth, axis=1) > k):  # as in _k_best
            top[row] = _k_best(clean[row], k)
    return top


def top_k_by_dot(queries: np.ndarray, items: np.ndarray, k: int, excluded=None, block_rows: int = 1024) -> tuple:
    """``(rows [n, k], scores [n, k])``: each query's ``k`` highest inner products with
    ``items`` (best first, ties by lower position), scored ``block_rows`` queries at a time, so
    memory holds one block's scores. ``excluded``: per query, item positions left out (masked
    evaluation); ``k`` is clipped to the number of items.

    Example:
        >>> rows, scores = top_k_by_dot(np.array([[1.0, 0.0]]), np.array([[0.5, 0], [2.0, 0], [1.0, 0]]), 2)
        >>> rows.tolist(), scores.tolist()
        ([[1, 2]], [[2.0, 1.0]])
    """
    queries, items = np.asarray(queries), np.asarray(items)
    k = min(int(k), len(items))
    rows, scores = [np.zeros((0, k), np.int64)], [np.zeros((0, k), np.result_type(queries, items))]
    for start in range(0, len(queries), block_rows):
        block = queries[start:start + block_rows] @ items.T
        if excluded is not None:
            for offset, positions in enumerate(excluded[start:start + block_rows]):
                block[offset, positions] = -np.inf
        top = top_k_per_row(block, k)
        rows.append(top)
        scores.append(np.take_along_axis(block, top, axis=1))
    return np.concatenate(rows), np.concatenate(scores)
