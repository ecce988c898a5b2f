"""A customer's vector for a request: the stored one, or the live query tower on the
customer's features, with store lookups that degrade to None. ``/invocations`` and
``/v1/retrieve`` share it."""
from __future__ import annotations

import asyncio

from fastapi.concurrency import run_in_threadpool

from serving.remote_tower import RemoteTowerError
from serving.service import Service
from tt_tf.stores import StoreError


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
    if params and run.query_tower is not None:
        run.query_tower.check_features(params)
    features = None
    if stored is None and run.query_tower is not None:
        features = await customer_features(service, customer, params or {}) if customer is not None \
            else (params or None)
    vector, tower_input, source = run.user_vector_plan(stored, features, defaults)
    if tower_input is not None:
        try:
            vector = await run.query_tower.embed_async(tower_input)
        except RemoteTowerError as error:  # no tower answered: the request goes on without a vector
            service.metrics.inc("tt_tf_remote_tower_errors_total")
            return None, f"the user tower did not answer: {error}"
    return vector, source


# async: run in the event loop itself, so a request costs no thread hand-offs and concurrent
# live requests batch their tower calls; everything here is CPU work of well under a millisecond
# (lookups that can block go to a thread in `lookup`)
