"""``POST /invocations``: rank a campaign's offers for a customer (the contract's core call)."""
from __future__ import annotations

import asyncio
import time

import orjson
from fastapi import APIRouter, Depends, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from serving.deps import get_service
from serving.ranking import eligible_offers, final_result, rank_offers
from serving.request_log import new_uuid
from serving.schemas import ERROR_RESPONSES, Invocation
from serving.service import Service
from tt_tf.stores import StoreError

router = APIRouter(tags=["scoring"], responses=ERROR_RESPONSES)


class FastJSONResponse(JSONResponse):
    """JSON written by orjson (about 5x the json module's speed) for plain JSON types. FastAPI's
    own ``ORJSONResponse`` is deprecated in favour of response models, whose validation pass
    this hot path does not need."""

    def render(self, content) -> bytes:
        return orjson.dumps(content)


async def lookup(service: Service, operation: str, call, *args):
    """A store lookup that degrades to None (and is counted) when the store fails. A store that
    waits on the network is called from a worker thread so that the event loop keeps serving."""
    try:
        return await run_in_threadpool(call, *args) if service.store.lookups_block else call(*args)
    except StoreError:
        service.metrics.inc("tt_tf_store_errors_total", operation=operation)
        return None


async def lookups(service: Service, *calls) -> list:
    """Several ``(operation, call, *args)`` lookups: at once on worker threads for a store that
    waits on the network (one round trip of latency instead of one per lookup), one after the
    other inline for a local one (a task per lookup would cost more than the lookup)."""
    if service.store.lookups_block:
        return list(await asyncio.gather(*(lookup(service, *call) for call in calls)))
    return [await lookup(service, *call) for call in calls]


def stored_vector_lookup(service: Service, run, customer) -> tuple:
    """The ``lookups`` entry of a customer's stored vector in ``run``."""
    return ("user_vector", service.store.user_vector, run.run_id, customer)


async def customer_features(service: Service, customer, params: dict) -> dict | None:
    """Looked-up features with the request's params on top; params alone go on top of the
    configured defaults; None when there is neither (the caller then uses the defaults)."""
    found = await lookup(service, "customer_lookup", service.store.customer_features, customer)
    if found is None and not params:
        return None
    base = found if found is not None else dict(service.settings.default_features)
    return {**base, **params}


async def user_vector(service: Service, run, customer, params: dict | None, stored,
                      defaults: dict | None = None) -> tuple:
    """``(vector, source)`` in the contract's order (``LoadedRun.user_vector_plan``) given the
    ``stored`` vector already looked up. The customer's features are looked up only when the
    live tower needs them, not for a stored vector (a store round trip less per request); without
    a customer, ``params`` are the features. ``defaults``: the configured default features unless
    given. The live tower's call joins the other requests of this event-loop turn in one batch."""
    defaults = service.settings.default_features if defaults is None else defaults
    features = None
    if stored is None and run.query_tower is not None:
        features = await customer_features(service, customer, params or {}) if customer is not None \
            else (params or None)
    vector, tower_input, source = run.user_vector_plan(stored, features, defaults)
    if tower_input is not None:
        vector = await run.query_tower.embed_async(tower_input)
    return vector, source


# async: run in the event loop itself, so a request costs no thread hand-offs and concurrent
# live requests batch their tower calls; everything here is CPU work of well under a millisecond
# (lookups that can block go to a thread in `lookup`)
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
    service.invocation_log.log({
        "uuid": request_uuid, "customer": body.customer, "campaign": body.campaign,
        "subcampaign": body.subcampaign, "channel": body.channel, "userid": body.userid,
        "numberoffers": body.numberoffers, "explore": response["explore"], "run_id": run.run_id,
        "offers": results, "skipped_cold_start": skipped, "user_vector_source": response["user_vector_source"],
        "reason": reason, "latency_ms": round((time.perf_counter() - started) * 1000, 3), "datetime": time.time(),
    })
    # plain JSON types only (non-finite numbers were nulled): FastAPI's generic encoder pass is not needed
    return FastJSONResponse(response)
