"""The audit trail over REST (/api/v1/audit): newest first, by keyset cursor.

`meta.next_cursor` is passed back as `after` for the next page; there is no total
(see resolvers.audit.list_events). Needs `settings:manage`.
"""

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from models import AuditEvent
from pim.auth import Caller
from pim.responses import OrjsonResponse
from pim.timeutil import isoformat_z
from resolvers import audit
from rest_compat import envelopes as shapes
from rest_compat.common import caller_with, runtime

PREFIX = "/api/v1/audit"
router = APIRouter(prefix=PREFIX, tags=["Audit"], responses=shapes.PLAIN_ERRORS)
authenticated = caller_with(None)


def event_out(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "action": event.action,
        "actor_key_id": str(event.actor_key_id) if event.actor_key_id else None,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "changes": event.changes,
        "created_at": isoformat_z(event.created_at),
    }


@router.get("", response_model=shapes.AuditPage)
async def list_events(
    request: Request,
    action: str | None = Query(None, max_length=64),
    since: datetime | None = None,
    until: datetime | None = None,
    after: str | None = Query(None, max_length=512),
    limit: int = Query(50),
    caller: Caller = Depends(authenticated),
) -> OrjsonResponse:
    async with runtime(request).db.read() as session:
        page = await audit.list_events(
            session, caller, action=action, since=since, until=until, first=limit, after=after
        )
    meta = {
        "per_page": limit,
        "has_next": page.has_next,
        "next_cursor": page.cursors[-1] if page.has_next else None,
    }
    return OrjsonResponse({"items": [event_out(e) for e in page.items], "meta": meta})
