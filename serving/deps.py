"""FastAPI dependencies (tests override ``get_service`` to inject a prepared Service)."""
from __future__ import annotations

from fastapi import Request

from serving.service import Service


# async: FastAPI runs a plain-def dependency in a worker thread, a hand-off per request
async def get_service(request: Request) -> Service:
    return request.app.state.service
