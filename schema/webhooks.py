"""GraphQL types and fields for webhook endpoints, their deliveries and attempts."""

from datetime import datetime
from enum import Enum

import strawberry

from models import WebhookAttempt as AttemptModel
from models import WebhookDelivery as DeliveryModel
from models import WebhookEndpoint as EndpointModel
from resolvers import webhooks
from schema.context import Info, parse_id
from schema.errors import UserError, run_mutation, run_query


@strawberry.enum(description="active; paused by its owner; disabled after failing for too long.")
class WebhookEndpointStatus(Enum):
    ACTIVE = "active"
    PAUSED = "paused"
    DISABLED = "disabled"


@strawberry.enum(
    description="pending: not tried yet; failed: a retry is scheduled; succeeded; "
    "dead: every retry failed."
)
class WebhookDeliveryStatus(Enum):
    PENDING = "pending"
    FAILED = "failed"
    SUCCEEDED = "succeeded"
    DEAD = "dead"


@strawberry.type(
    description="An HTTPS endpoint that receives the account's change events, signed "
    "(Pixee-Signature: t=<unix>,v1=<HMAC-SHA256 of '<t>.<body>'>). The secret is never shown "
    "again after creation or rotation."
)
class WebhookEndpoint:
    id: strawberry.ID
    url: str
    description: str | None
    events: list[str] = strawberry.field(description='Subscribed event types; ["*"] for all.')
    is_active: bool
    status: WebhookEndpointStatus
    disabled_at: datetime | None
    disabled_reason: str | None = strawberry.field(description="Why it was disabled, if it was.")
    consecutive_failures: int
    previous_secret_expires_at: datetime | None = strawberry.field(
        description="During a rotation: until when the replaced secret still signs too."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, endpoint: EndpointModel) -> "WebhookEndpoint":
        return cls(
            id=strawberry.ID(str(endpoint.id)),
            url=endpoint.url,
            description=endpoint.description,
            events=list(endpoint.event_types),
            is_active=endpoint.is_active,
            status=WebhookEndpointStatus(webhooks.endpoint_status(endpoint)),
            disabled_at=endpoint.disabled_at,
            disabled_reason=endpoint.disabled_reason,
            consecutive_failures=endpoint.consecutive_failures,
            previous_secret_expires_at=endpoint.previous_secret_expires_at,
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
        )


@strawberry.type(description="One event on its way to one endpoint.")
class WebhookDelivery:
    id: strawberry.ID
    endpoint_id: strawberry.ID
    event_id: strawberry.ID
    event_type: str
    status: WebhookDeliveryStatus
    is_replay: bool
    attempts: int
    next_attempt_at: datetime | None = strawberry.field(
        description="When the next attempt is due (pending and failed deliveries)."
    )
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def from_model(cls, delivery: DeliveryModel) -> "WebhookDelivery":
        open_ = delivery.status in ("pending", "failed")
        return cls(
            id=strawberry.ID(str(delivery.id)),
            endpoint_id=strawberry.ID(str(delivery.endpoint_id)),
            event_id=strawberry.ID(str(delivery.event_id)),
            event_type=delivery.event_type,
            status=WebhookDeliveryStatus(delivery.status),
            is_replay=delivery.is_replay,
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at if open_ else None,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            delivered_at=delivery.delivered_at,
            created_at=delivery.created_at,
        )


@strawberry.type(description="One HTTP attempt of a delivery.")
class WebhookAttempt:
    attempt: int
    status_code: int | None = strawberry.field(description="None: no HTTP answer (see error).")
    latency_ms: int
    error: str | None
    attempted_at: datetime

    @classmethod
    def from_model(cls, attempt: AttemptModel) -> "WebhookAttempt":
        return cls(
            attempt=attempt.attempt,
            status_code=attempt.status_code,
            latency_ms=attempt.latency_ms,
            error=attempt.error,
            attempted_at=attempt.attempted_at,
        )


@strawberry.type(description="A page of webhook endpoints, oldest first.")
class WebhookEndpointPage:
    nodes: list[WebhookEndpoint]
    total_count: int
    has_next_page: bool


@strawberry.type(description="A page of deliveries, newest event first.")
class WebhookDeliveryPage:
    nodes: list[WebhookDelivery]
    total_count: int
    has_next_page: bool


@strawberry.input
class WebhookEndpointInput:
    url: str
    events: list[str] = strawberry.field(default_factory=lambda: ["*"])
    description: str | None = None
    is_active: bool = True


@strawberry.input(description="Only the fields given change.")
class WebhookEndpointUpdateInput:
    url: str | None = None
    events: list[str] | None = None
    description: str | None = None
    is_active: bool | None = None


@strawberry.type
class WebhookEndpointPayload:
    endpoint: WebhookEndpoint | None
    errors: list[UserError]


@strawberry.type(description="The endpoint and its new signing secret, shown this once.")
class WebhookSecretPayload:
    endpoint: WebhookEndpoint | None
    secret: str | None
    errors: list[UserError]


@strawberry.type
class WebhookDeletePayload:
    deleted_id: strawberry.ID | None
    errors: list[UserError]


@strawberry.type
class WebhookDeliveryPayload:
    delivery: WebhookDelivery | None
    errors: list[UserError]


@strawberry.type
class WebhookReplayPayload:
    deliveries_created: int | None
    errors: list[UserError]


@strawberry.type
class WebhookQuery:
    @strawberry.field(description="The account's webhook endpoints (settings:manage).")
    async def webhook_endpoints(
        self, info: Info, first: int = 100, skip: int = 0
    ) -> WebhookEndpointPage:
        page = await run_query(info, webhooks.list_endpoints, limit=first, offset=skip)
        return WebhookEndpointPage(
            nodes=[WebhookEndpoint.from_model(e) for e in page.items],
            total_count=page.total,
            has_next_page=skip + first < page.total,
        )

    @strawberry.field(description="One webhook endpoint (settings:manage).")
    async def webhook_endpoint(self, info: Info, id: strawberry.ID) -> WebhookEndpoint:
        endpoint = await run_query(info, webhooks.get_endpoint, endpoint_id=parse_id(id))
        return WebhookEndpoint.from_model(endpoint)

    @strawberry.field(description="An endpoint's deliveries, newest event first.")
    async def webhook_deliveries(
        self,
        info: Info,
        endpoint_id: strawberry.ID,
        status: WebhookDeliveryStatus | None = None,
        first: int = 100,
        skip: int = 0,
    ) -> WebhookDeliveryPage:
        page = await run_query(
            info,
            webhooks.list_deliveries,
            endpoint_id=parse_id(endpoint_id, "endpointId"),
            status=status.value if status else None,
            limit=first,
            offset=skip,
        )
        return WebhookDeliveryPage(
            nodes=[WebhookDelivery.from_model(d) for d in page.items],
            total_count=page.total,
            has_next_page=skip + first < page.total,
        )

    @strawberry.field(description="Every attempt of one delivery, first to last.")
    async def webhook_attempts(
        self, info: Info, endpoint_id: strawberry.ID, delivery_id: strawberry.ID
    ) -> list[WebhookAttempt]:
        attempts = await run_query(
            info,
            webhooks.list_attempts,
            endpoint_id=parse_id(endpoint_id, "endpointId"),
            delivery_id=parse_id(delivery_id, "deliveryId"),
        )
        return [WebhookAttempt.from_model(a) for a in attempts]


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(description="Create an endpoint; its signing secret is returned once.")
    async def create_webhook_endpoint(
        self, info: Info, input: WebhookEndpointInput
    ) -> WebhookSecretPayload:
        data = webhooks.EndpointInput(
            url=input.url, event_types=input.events, description=input.description,
            is_active=input.is_active,
        )  # fmt: skip
        created, errors = await run_mutation(
            info,
            lambda s, caller: webhooks.create_endpoint(
                s, caller, data=data, settings=info.context.runtime.settings
            ),
        )
        return _secret_payload(created, errors)

    @strawberry.mutation(description="Change an endpoint's URL, events, description or state.")
    async def update_webhook_endpoint(
        self, info: Info, id: strawberry.ID, input: WebhookEndpointUpdateInput
    ) -> WebhookEndpointPayload:
        changes = webhooks.EndpointChanges(
            url=input.url, event_types=input.events, description=input.description,
            is_active=input.is_active,
        )  # fmt: skip
        endpoint, errors = await run_mutation(
            info,
            lambda s, caller: webhooks.update_endpoint(
                s,
                caller,
                endpoint_id=parse_id(id),
                changes=changes,
                settings=info.context.runtime.settings,
            ),
        )
        return _endpoint_payload(endpoint, errors)

    @strawberry.mutation(description="Delete an endpoint and its delivery log.")
    async def delete_webhook_endpoint(self, info: Info, id: strawberry.ID) -> WebhookDeletePayload:
        _, errors = await run_mutation(
            info,
            lambda s, caller: webhooks.delete_endpoint(s, caller, endpoint_id=parse_id(id)),
        )
        return WebhookDeletePayload(deleted_id=None if errors else id, errors=errors)

    @strawberry.mutation(
        description="A new signing secret, returned once; the old one also signs until "
        f"`expiresInHours` have passed (0 to {webhooks.MAX_GRACE_HOURS})."
    )
    async def rotate_webhook_secret(
        self, info: Info, id: strawberry.ID, expires_in_hours: float = 24
    ) -> WebhookSecretPayload:
        rotated, errors = await run_mutation(
            info,
            lambda s, caller: webhooks.rotate_secret(
                s,
                caller,
                endpoint_id=parse_id(id),
                settings=info.context.runtime.settings,
                expires_in_hours=expires_in_hours,
            ),
        )
        return _secret_payload(rotated, errors)

    @strawberry.mutation(description="Re-enable an endpoint; events held meanwhile go out.")
    async def enable_webhook_endpoint(
        self, info: Info, id: strawberry.ID
    ) -> WebhookEndpointPayload:
        endpoint, errors = await run_mutation(
            info,
            lambda s, caller: webhooks.enable_endpoint(s, caller, endpoint_id=parse_id(id)),
        )
        return _endpoint_payload(endpoint, errors)

    @strawberry.mutation(description="Deliver one event to the endpoint again.")
    async def replay_webhook_event(
        self, info: Info, endpoint_id: strawberry.ID, event_id: strawberry.ID
    ) -> WebhookDeliveryPayload:
        delivery, errors = await run_mutation(
            info,
            lambda s, caller: webhooks.replay_event(
                s,
                caller,
                endpoint_id=parse_id(endpoint_id, "endpointId"),
                event_id=parse_id(event_id, "eventId"),
            ),
        )
        return WebhookDeliveryPayload(
            delivery=WebhookDelivery.from_model(delivery) if delivery else None, errors=errors
        )

    @strawberry.mutation(
        description="Deliver again every subscribed event that occurred in [since, until)."
    )
    async def replay_webhook_events(
        self, info: Info, endpoint_id: strawberry.ID, since: datetime, until: datetime | None = None
    ) -> WebhookReplayPayload:
        count, errors = await run_mutation(
            info,
            lambda s, caller: webhooks.replay_range(
                s,
                caller,
                endpoint_id=parse_id(endpoint_id, "endpointId"),
                since=since,
                until=until,
            ),
        )
        return WebhookReplayPayload(deliveries_created=count, errors=errors)


def _endpoint_payload(
    endpoint: EndpointModel | None, errors: list[UserError]
) -> WebhookEndpointPayload:
    return WebhookEndpointPayload(
        endpoint=WebhookEndpoint.from_model(endpoint) if endpoint else None, errors=errors
    )


def _secret_payload(
    created: webhooks.WithSecret | None, errors: list[UserError]
) -> WebhookSecretPayload:
    if created is None:
        return WebhookSecretPayload(endpoint=None, secret=None, errors=errors)
    return WebhookSecretPayload(
        endpoint=WebhookEndpoint.from_model(created.endpoint), secret=created.secret, errors=[]
    )
