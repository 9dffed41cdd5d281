"""GraphQL types and fields for API keys: list, create, revoke, rotate (settings:manage)."""

from datetime import datetime, timedelta

import strawberry

from models import ApiKey as KeyModel
from pim.timeutil import utcnow
from resolvers import keys
from schema.context import Info, parse_id
from schema.errors import UserError, run_mutation, run_query


@strawberry.type(
    description="An API key of the account. Its secret is shown once, by the mutation "
    "that creates it; only its prefix is shown afterwards."
)
class ApiKey:
    id: strawberry.ID
    name: str
    prefix: str = strawberry.field(description="The first characters, to tell keys apart.")
    scopes: list[str]
    rate_limit_per_minute: int | None = strawberry.field(
        description="This key's own limit; null: the deployment's default."
    )
    created_at: datetime
    last_used_at: datetime | None = strawberry.field(
        description="Last authenticated use, to the minute."
    )
    expires_at: datetime | None = strawberry.field(
        description="Refused from then on (also the end of a rotation's grace period)."
    )
    revoked_at: datetime | None
    active: bool = strawberry.field(description="Neither revoked nor expired.")

    @classmethod
    def from_model(cls, key: KeyModel) -> "ApiKey":
        return cls(
            id=strawberry.ID(str(key.id)),
            name=key.name,
            prefix=key.prefix,
            scopes=list(key.scopes),
            rate_limit_per_minute=key.rate_limit_per_minute,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
            active=keys.is_active(key, utcnow()),
        )


@strawberry.type(description="A page of API keys, newest first.")
class ApiKeyPage:
    nodes: list[ApiKey]
    total_count: int
    has_next_page: bool


@strawberry.input
class CreateApiKeyInput:
    name: str
    scopes: list[str] = strawberry.field(
        description="Only scopes the calling key holds itself can be given."
    )
    rate_limit_per_minute: int | None = None
    expires_at: datetime | None = None


@strawberry.type(description="A key and its secret, shown this once.")
class ApiKeySecretPayload:
    api_key: ApiKey | None
    secret: str | None
    errors: list[UserError]


@strawberry.type
class ApiKeyPayload:
    api_key: ApiKey | None
    errors: list[UserError]


def _secret_payload(
    created: keys.CreatedKey | None, errors: list[UserError]
) -> ApiKeySecretPayload:
    if created is None:
        return ApiKeySecretPayload(api_key=None, secret=None, errors=errors)
    return ApiKeySecretPayload(
        api_key=ApiKey.from_model(created.key), secret=created.plain, errors=[]
    )


@strawberry.type
class KeyQuery:
    @strawberry.field(description="The account's API keys, newest first (settings:manage).")
    async def api_keys(self, info: Info, first: int = 100, skip: int = 0) -> ApiKeyPage:
        page = await run_query(info, keys.list_keys_for, limit=first, offset=skip)
        return ApiKeyPage(
            nodes=[ApiKey.from_model(k) for k in page.items],
            total_count=page.total,
            has_next_page=skip + first < page.total,
        )


@strawberry.type
class KeyMutation:
    @strawberry.mutation(description="Create a key; its secret is returned this once.")
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> ApiKeySecretPayload:
        created, errors = await run_mutation(
            info,
            lambda s, caller: keys.create_key_for(
                s,
                caller,
                name=input.name,
                scopes=input.scopes,
                rate_limit_per_minute=input.rate_limit_per_minute,
                expires_at=input.expires_at,
            ),
        )
        return _secret_payload(created, errors)

    @strawberry.mutation(description="Revoke a key: refused everywhere within seconds.")
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> ApiKeyPayload:
        key, errors = await run_mutation(
            info, lambda s, caller: keys.revoke_key(s, key_id=parse_id(id), caller=caller)
        )
        return ApiKeyPayload(api_key=ApiKey.from_model(key) if key else None, errors=errors)

    @strawberry.mutation(
        description="A new key with the same name, scopes and limit, its secret returned "
        "this once; the old key keeps working for `gracePeriodHours` "
        f"(0 to {keys.MAX_ROTATION_GRACE // timedelta(hours=1)}), then is refused."
    )
    async def rotate_api_key(
        self, info: Info, id: strawberry.ID, grace_period_hours: float = 24
    ) -> ApiKeySecretPayload:
        created, errors = await run_mutation(
            info,
            lambda s, caller: keys.rotate_key(
                s,
                key_id=parse_id(id),
                caller=caller,
                grace=timedelta(hours=grace_period_hours),
            ),
        )
        return _secret_payload(created, errors)
