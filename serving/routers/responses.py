"""``POST /response``: the customer took offers of an earlier invocation (joined by uuid)."""
from __future__ import annotations

import datetime as _dt

from fastapi import APIRouter, Depends

from serving.deps import get_service
from serving.schemas import ERROR_RESPONSES, Response
from serving.service import Service

router = APIRouter(tags=["scoring"], responses=ERROR_RESPONSES)


@router.post("/response")
def response(body: Response, service: Service = Depends(get_service)) -> dict:
    service.response_log.log({
        "uuid": body.uuid, "offers_accepted": [o.model_dump() for o in body.offers_accepted],
        "channel_name": body.channel_name, "datetime": _dt.datetime.now(_dt.timezone.utc).isoformat(),
    })
    return {"success": True, "uuid": body.uuid}
