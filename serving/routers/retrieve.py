"""``POST /v1/retrieve``: top-K over the run's whole catalogue."""
from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Depends, HTTPException

from serving.ann import exact_top_k
from serving.deps import get_service
from serving.routers.invocations import customer_features
from serving.schemas import ERROR_RESPONSES, RetrieveRequest
from serving.service import Service

router = APIRouter(prefix="/v1", tags=["retrieval"], responses=ERROR_RESPONSES)


@router.post("/retrieve")
def retrieve(body: RetrieveRequest, service: Service = Depends(get_service)) -> dict:
    if body.customer is None and not body.features:
        raise HTTPException(422, "give a customer or a features object")
    run = service.run
    if body.customer is not None:
        features = customer_features(service, body.customer, body.features or {})
        vector, source = run.user_vector(body.customer, features, service.settings.default_features)
    else:
        vector, source = run.user_vector(None, body.features, {})
    if vector is None:
        raise HTTPException(404, f"no user vector: {source}")
    excluded = {str(e) for e in body.exclude}
    query = np.asarray(vector, np.float32)
    if run.similarity == "cosine":
        query = query / max(float(np.linalg.norm(query)), 1e-12)
    index = "exact"
    if run.ann_index is not None:
        index = "hnsw"
        rows, scores = run.ann_index.search(query, body.k + len(excluded))
        pairs = [(int(r), float(s)) for r, s in zip(rows, scores) if run.item_ids[r] not in excluded][:body.k]
    else:
        scores = run.item_matrix @ query
        if excluded:
            mask = np.fromiter((i in excluded for i in run.item_ids), bool, count=len(run.item_ids))
            scores = np.where(mask, -np.inf, scores)
        rows = [r for r in exact_top_k(scores, body.k) if np.isfinite(scores[r])]
        pairs = [(int(r), float(scores[r])) for r in rows]
    return {"run_id": run.run_id, "index": index, "user_vector_source": source,
            "items": [{"item_id": run.item_ids[r], "score": s} for r, s in pairs]}
