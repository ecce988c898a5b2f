"""Approximate top-K over a run's item matrix with faiss HNSW (inner product), built once
per loaded run; exact BLAS search is the default and the fallback when faiss is missing."""
from __future__ import annotations

import numpy as np


class HnswIndex:
    def __init__(self, item_matrix: np.ndarray, m: int = 32, ef_search: int = 128, ef_construction: int = 200):
        try:
            import faiss
        except ImportError as error:
            raise ValueError("retrieval_index=hnsw needs faiss: pip install 'tt_tf[ann]'") from error
        vectors = np.ascontiguousarray(item_matrix, dtype=np.float32)
        self.index = faiss.IndexHNSWFlat(vectors.shape[1], int(m), faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = int(ef_construction)
        self.index.add(vectors)
        self.index.hnsw.efSearch = int(ef_search)
        self.size = len(vectors)

    def search(self, query: np.ndarray, k: int) -> tuple:
        """``(rows, scores)`` of the approximate top ``k`` (fewer if the index is smaller)."""
        k = min(int(k), self.size)
        scores, rows = self.index.search(np.ascontiguousarray(query[None, :], dtype=np.float32), k)
        keep = rows[0] >= 0
        return rows[0][keep], scores[0][keep]


def exact_top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Rows of the ``k`` highest scores, best first (ties: lower row first).

    Exact. For a small ``k`` of many scores, a cut-off taken from a strided sample of the scores
    narrows the partition to the few rows above it (10 of 10,000: about a fifth of the time of
    partitioning them all, which was most of a stored-vector request); when fewer than ``k``
    rows clear the cut-off, all rows are partitioned as before."""
    k = min(int(k), len(scores))
    if k <= 0:
        return np.zeros(0, np.int64)
    candidates = _above_sampled_cutoff(scores, k)
    if candidates is None:
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    else:
        kept = scores[candidates]
        top = candidates[np.argpartition(-kept, k - 1)[:k]] if k < len(candidates) else candidates
    return top[np.lexsort((top, -scores[top]))]


SAMPLE_SIZE = 1024


def _above_sampled_cutoff(scores: np.ndarray, k: int) -> np.ndarray | None:
    """Rows whose score is at least the (2k)-th largest of every ``n // SAMPLE_SIZE``-th
    score, when at least ``k`` rows are (then the top ``k`` are among them: the k-th largest
    score is itself at least the cut-off); None when the cut-off would not pay or keeps too few."""
    if len(scores) < 2 * SAMPLE_SIZE or 64 * k > len(scores):
        return None
    sample = scores[::len(scores) // SAMPLE_SIZE]
    position = len(sample) - 2 * k
    cutoff = np.partition(sample, position)[position]
    candidates = np.flatnonzero(scores >= cutoff)  # NaN cut-off or scores: not kept
    return candidates if len(candidates) >= k else None
