"""Liveness, readiness and metrics."""
from __future__ import annotations

import re

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse

from serving.deps import get_service
from serving.schemas import ERROR_RESPONSES
from serving.service import Service
from tt_tf.stores import redacted

router = APIRouter(tags=["health"], responses=ERROR_RESPONSES)
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.])/(?:[^\s/'\"]+/)+(?=[^\s/'\"]+)")


def public(message):
    """An error as an unauthenticated caller may see it: no store password, and file paths cut
    to the file's name (the service log keeps the whole message)."""
    return None if message is None else _ABSOLUTE_PATH.sub("", redacted(message))


@router.get("/ping")
def ping() -> dict:
    return {"status": "ok"}


@router.get("/health/live")
def live() -> dict:
    return {"status": "alive"}


@router.get("/health/ready")
def ready(service: Service = Depends(get_service)):
    """Ready = a run is loaded (and was warmed), the store answers, and the request log keeps what
    it accepts (not ready while rows wait in memory because neither the store nor the spool
    takes them)."""
    reachable, store_error = service.store_reachable()
    logs = (service.invocation_log, service.response_log)
    failing = [log for log in logs if log.failing]
    body = {"ready": service.has_run and reachable and not failing,
            "run_id": service.run_id,
            "store_reachable": reachable, "store_error": public(store_error),
            "last_load_error": public(service.last_load_error),
            "log_spooled_rows": sum(log.spooled for log in logs),
            "log_failing": bool(failing), "log_held_rows": sum(log.held for log in logs),
            "log_dropped_rows": sum(log.dropped for log in logs),
            "log_error": public(failing[0].last_error) if failing else None}
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(service: Service = Depends(get_service)) -> str:
    return service.metrics.render()
