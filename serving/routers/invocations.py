"""``POST /invocations``: rank a campaign's offers for a customer (the contract's core call)."""
from __future__ import annotations

import time

import orjson
from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse

from serving.deps import get_service
from serving.ranking import eligible_offers, final_result, rank_offers
from serving.request_log import new_uuid
from serving.schemas import ERROR_RESPONSES, Invocation
from serving.service import Service
from serving.user_vectors import lookups, stored_vector_lookup, user_vector

router = APIRouter(tags=["scoring"], responses=ERROR_RESPONSES)


class FastJSONResponse(JSONResponse):
    """JSON written by orjson (about 5x the json module's speed) for plain JSON types. FastAPI's
    own ``ORJSONResponse`` is deprecated in favour of response models, whose validation pass
    this hot path does not need."""

    def render(self, content) -> bytes:
        return orjson.dumps(content)


@router.post("/invocations", response_class=FastJSONResponse)
async def invocations(body: Invocation, service: Service = Depends(get_service)):
    started = time.perf_counter()
    settings = service.settings
    if settings.campaigns and body.campaign not in settings.campaigns:
        raise HTTPException(404, f"unknown campaign {body.campaign!r}; known: {sorted(settings.campaigns)}")
    if body.numberoffers > settings.max_offers:
        raise HTTPException(422, f"numberoffers must be at most {settings.max_offers}, got {body.numberoffers}")
    run = service.run
    request_uuid = new_uuid()
    stored, white_list = await lookups(service, stored_vector_lookup(service, run, body.customer),
                                       ("whitelist", service.store.whitelist, body.customer))
    vector, source = await user_vector(service, run, body.customer, body.params, stored)
    offers = eligible_offers(run, white_list)
    reason = None
    if vector is None:
        ranked, reason = None, source
    else:
        ranked = rank_offers(run, vector, offers, body.numberoffers, settings.value_sort,
                             settings.explore_epsilon, service.explore_rng(),
                             settings.ranker_num_retrieve if settings.model_type == "light_ranker" else None)
        if not ranked.offers:
            reason = "no eligible offer has a vector" if offers else "no eligible offers for this customer"
    results = final_result(run, ranked) if ranked is not None else []
    skipped = ranked.skipped if ranked is not None else offers.skipped
    if skipped:
        service.metrics.inc("tt_tf_cold_start_offers_total", len(skipped), run_id=run.run_id)
    response = {"uuid": request_uuid, "run_id": run.run_id, "type": settings.model_type,
                "explore": ranked.explore if ranked is not None else 0, "final_result": results,
                "user_vector_source": source if vector is not None else None}
    if reason:
        response["reason"] = reason
    # the stored row's offers and ISO time are made from these in the log's writer thread
    # (serving.request_log.complete_invocation_row), not while the customer waits
    row = {
        "uuid": request_uuid, "customer": body.customer, "campaign": body.campaign,
        "subcampaign": body.subcampaign, "channel": body.channel, "userid": body.userid,
        "numberoffers": body.numberoffers, "explore": response["explore"], "run_id": run.run_id,
        "offers": results, "skipped_cold_start": skipped, "user_vector_source": response["user_vector_source"],
        "reason": reason, "latency_ms": round((time.perf_counter() - started) * 1000, 3), "datetime": time.time(),
    }
    try:
        await service.invocation_log.log_accepted(row)
    except OSError as error:  # strict mode: an answer that cannot be logged is not given
        raise HTTPException(503, f"the request log cannot write ({error}); the request was not answered") from None
    # plain JSON types only (non-finite numbers were nulled): FastAPI's generic encoder pass is not needed
    return FastJSONResponse(response)
