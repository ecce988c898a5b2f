"""Offline scoring: a concept test for one customer and a batch score into a store collection."""
from __future__ import annotations

import datetime as _dt

import numpy as np
from fastapi import APIRouter, Depends, HTTPException

from serving.deps import get_service
from serving.run import unit_rows
from serving.schemas import ERROR_RESPONSES, BatchScore, ConceptTest
from serving.service import Service
from tt_tf.evaluation.topk import top_k, top_k_by_dot

router = APIRouter(tags=["offline"], responses=ERROR_RESPONSES)


def _check_run(service: Service, run_id: str | None):
    run = service.run
    if run_id and run_id != run.run_id:
        raise HTTPException(409, f"run {run_id!r} is not the loaded run ({run.run_id!r}); refresh or omit run_id")
    return run


@router.post("/concept-test")
def concept_test(body: ConceptTest, service: Service = Depends(get_service)) -> dict:
    run = _check_run(service, body.run_id)
    vector = run.store.user_vector(run.run_id, body.customer_id)
    if vector is None:
        return {"success": False, "run_id": run.run_id, "customer_id": str(body.customer_id),
                "reason": "no stored vector for this customer", "ranked": []}
    offers = [str(o) for o in body.offers]
    known = [o for o in offers if o in run.row_of]
    scores = run.scores(vector, np.array([run.row_of[o] for o in known], np.int64)) if known else np.zeros(0)
    order = top_k(scores, len(known))
    return {"success": True, "run_id": run.run_id, "customer_id": str(body.customer_id),
            "ranked": [{"offer": known[i], "score": float(scores[i])} for i in order],
            "skipped": [o for o in offers if o not in run.row_of]}


@router.post("/batch-score")
def batch_score(body: BatchScore, service: Service = Depends(get_service)) -> dict:
    """One document ``{run_id, customer_id, ranked, created_at}`` per stored customer vector."""
    run = _check_run(service, body.run_id)
    customers, vectors = run.store.user_vectors(run.run_id)
    if body.max_users:
        customers, vectors = customers[:body.max_users], vectors[:body.max_users]
    rows = run.campaign_set.rows
    created_at = _dt.datetime.now(_dt.timezone.utc).isoformat()
    queries = unit_rows(vectors) if run.similarity == "cosine" else vectors
    top_rows, top_scores = top_k_by_dot(queries, run.item_matrix[rows], body.top_k)
    documents = [{"run_id": run.run_id, "customer_id": customer, "created_at": created_at,
                  "ranked": [{"offer": run.item_ids[rows[i]], "score": float(score)} for i, score in zip(top, scores)]}
                 for customer, top, scores in zip(customers, top_rows, top_scores)]
    if documents:
        service.store.put_scores(body.scores_collection, documents)
    return {"success": True, "run_id": run.run_id, "written": len(documents),
            "scores_collection": body.scores_collection}
