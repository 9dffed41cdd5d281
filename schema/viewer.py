"""Who is calling: the key, its scopes and its account."""

import strawberry

from schema.context import Info


@strawberry.type(description="The API key making the request.")
class Viewer:
    key_id: strawberry.ID
    key_name: str
    scopes: list[str]
    account_id: strawberry.ID
    account_name: str
    rate_limit_per_minute: int | None


@strawberry.type
class ViewerQuery:
    @strawberry.field(description="The authenticated key and its account.")
    def viewer(self, info: Info) -> Viewer:
        caller = info.context.caller()
        return Viewer(
            key_id=strawberry.ID(str(caller.key_id)),
            key_name=caller.key_name,
            scopes=sorted(caller.scopes),
            account_id=strawberry.ID(str(caller.account_id)),
            account_name=caller.account_name,
            rate_limit_per_minute=caller.rate_limit_per_minute,
        )
