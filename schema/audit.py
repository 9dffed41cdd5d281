"""GraphQL reading of the audit trail (settings:manage)."""

from datetime import datetime

import strawberry

from models import AuditEvent as EventModel
from resolvers import audit
from schema.context import Info
from schema.errors import run_query
from schema.products import PageInfo


@strawberry.type(description="One administrative action: who, what, when.")
class AuditEvent:
    id: strawberry.ID
    action: str = strawberry.field(description='e.g. "key.revoked", "webhook.updated".')
    actor_key_id: strawberry.ID | None = strawberry.field(
        description="The key that acted; null for the `pim` command on the server."
    )
    target_type: str
    target_id: str
    changes: list[str] = strawberry.field(
        description="Names of the fields set or changed (never their values)."
    )
    created_at: datetime

    @classmethod
    def from_model(cls, event: EventModel) -> "AuditEvent":
        return cls(
            id=strawberry.ID(str(event.id)),
            action=event.action,
            actor_key_id=strawberry.ID(str(event.actor_key_id)) if event.actor_key_id else None,
            target_type=event.target_type,
            target_id=event.target_id,
            changes=list(event.changes),
            created_at=event.created_at,
        )


@strawberry.type
class AuditEventEdge:
    cursor: str
    node: AuditEvent


@strawberry.type(description="A page of the audit trail (Relay connection), newest first.")
class AuditEventConnection:
    edges: list[AuditEventEdge]
    page_info: PageInfo


@strawberry.type
class AuditQuery:
    @strawberry.field(
        description="Administrative actions in [since, until), newest first; `after` is an "
        "edge's cursor (settings:manage)."
    )
    async def audit_events(
        self,
        info: Info,
        first: int = 50,
        after: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> AuditEventConnection:
        page = await run_query(
            info, audit.list_events, action=action, since=since, until=until, first=first,
            after=after,
        )  # fmt: skip
        edges = [AuditEventEdge(cursor=c, node=AuditEvent.from_model(e))
                 for c, e in zip(page.cursors, page.items, strict=True)]  # fmt: skip
        end = page.cursors[-1] if page.cursors else None
        return AuditEventConnection(
            edges=edges, page_info=PageInfo(has_next_page=page.has_next, end_cursor=end)
        )
