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
