"""``POST /v1/retrieve``: top-K over the run's whole catalogue."""
from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Depends, HTTPException
from fastapi.concurrency import run_in_threadpool

from serving.deps import get_service
from serving.run import unit_vector
from serving.schemas import ERROR_RESPONSES, RetrieveRequest
from serving.service import Service
from serving.user_vectors import lookup, stored_vector_lookup, user_vector
from tt_tf.evaluation.topk import top_k

router = APIRouter(prefix="/v1", tags=["retrieval"], responses=ERROR_RESPONSES)


@router.post("/retrieve")
async def retrieve(body: RetrieveRequest, service: Service = Depends(get_service)) -> dict:
    if body.customer is None and not body.features:
        raise HTTPException(422, "give a customer or a features object")
    run = service.run
    # the user vector as /invocations finds it (its tower calls batch with theirs); the search
    # scans the whole catalogue, so it runs in a worker thread, off the event loop
    stored = None if body.customer is None else \
        await lookup(service, *stored_vector_lookup(service, run, body.customer))
    vector, source = await user_vector(service, run, body.customer, body.features, stored,
                                       defaults=None if body.customer is not None else {})
    return await run_in_threadpool(search, service, run, body, vector, source)


def search(service: Service, run, body: RetrieveRequest, vector, source: str) -> dict:
    if vector is None:
        raise HTTPException(404, f"no user vector: {source}")
    if body.rerank and run.light_ranker is None:
        raise HTTPException(409, f"rerank needs a light ranker; run {run.run_id} was exported without one "
                                 f"(train an AlignedTwoTowerModel with light_ranker=LightRanker(...))")
    wanted = max(body.num_retrieve or service.settings.ranker_num_retrieve, body.k) if body.rerank else body.k
    excluded = {str(e) for e in body.exclude}
    query = np.asarray(vector, np.float32)
    if run.similarity == "cosine":
        query = unit_vector(query)
    index = "exact"
    if run.ann_index is not None:
        index = "hnsw"
        rows, scores = run.ann_index.search(query, wanted + len(excluded))
        pairs = [(int(r), float(s)) for r, s in zip(rows, scores) if run.item_ids[r] not in excluded][:wanted]
    else:
        scores = run.item_matrix @ query
        # excluded ids found through the run's id -> row map: a request's cost grows with its
        # exclusions, not with the catalogue
        scores[[run.row_of[e] for e in excluded if e in run.row_of]] = -np.inf
        rows = [r for r in top_k(scores, wanted) if np.isfinite(scores[r])]
        pairs = [(int(r), float(scores[r])) for r in rows]
    if not body.rerank:
        return {"run_id": run.run_id, "index": index, "user_vector_source": source,
                "items": [{"item_id": run.item_ids[r], "score": s} for r, s in pairs]}
    tasks = run.light_ranker.tasks
    values, probabilities = run.rerank(vector, np.array([r for r, _ in pairs], np.int64)) if pairs \
        else (np.zeros(0), np.zeros((0, len(tasks))))
    order = np.argsort(-values, kind="stable")[:body.k]
    return {"run_id": run.run_id, "index": index, "user_vector_source": source, "reranked_from": len(pairs),
            "items": [{"item_id": run.item_ids[pairs[i][0]], "score": pairs[i][1], "value": float(values[i]),
                       "task_probabilities": dict(zip(tasks, map(float, probabilities[i])))} for i in order]}
