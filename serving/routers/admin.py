"""``POST /refresh``: load the newest run (admin, ``X-API-Key``)."""
from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Header, HTTPException

from serving.deps import get_service
from serving.run import RunLoadError
from serving.schemas import ERROR_RESPONSES
from serving.service import Service

router = APIRouter(tags=["admin"], responses=ERROR_RESPONSES)


def require_admin(x_api_key: str | None = Header(default=None), service: Service = Depends(get_service)) -> None:
    expected = service.settings.admin_api_key
    if not expected:
        raise HTTPException(403, "admin endpoints are disabled: set TT_TF_ADMIN_API_KEY")
    if not x_api_key or not hmac.compare_digest(x_api_key.encode(), expected.encode()):
        raise HTTPException(401, "missing or wrong X-API-Key header")


@router.post("/refresh", dependencies=[Depends(require_admin)])
def refresh(force: bool = False, service: Service = Depends(get_service)) -> dict:
    try:
        return service.refresh(force=force)
    except RunLoadError as error:
        serving = service.run_id
        raise HTTPException(409, {"error": f"new run not loaded: {error}", "serving_run_id": serving}) from None
