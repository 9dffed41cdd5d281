"""API keys managed through the API: create, list, revoke, rotate, on REST and GraphQL."""

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import update

from models import ApiKey
from pim.runtime import Runtime
from pim.timeutil import isoformat_z, parse_iso8601, utcnow
from resolvers import keys
from tests.conftest import Key, MakeKey, gql

BASE = "/api/v1/keys"
ADMIN = ["settings:manage", "products:read", "products:write"]
WHO_AM_I = "{ viewer { keyName } }"


async def create(client: httpx.AsyncClient, key: Key, **body: Any) -> httpx.Response:
    body = {"name": "Front end", "scopes": ["products:read"]} | body
    return await client.post(BASE, json=body, headers=key.headers)


def as_key(created: dict[str, Any], template: Key) -> Key:
    return Key(created["key"], template.account, template.account_id, template.key_id)


async def status_of(client: httpx.AsyncClient, key: Key) -> int:
    return (await client.get("/api/v1/products", headers=key.headers)).status_code


async def graphql_status(client: httpx.AsyncClient, key: Key) -> str:
    """'ok', or the error code (a refused key is refused with its HTTP status too)."""
    response = await client.post("/graphql", json={"query": WHO_AM_I}, headers=key.headers)
    body = response.json()
    if "errors" not in body:
        assert response.status_code == 200
        return "ok"
    return str(body["errors"][0]["extensions"]["code"])


async def test_a_created_key_is_shown_once_and_works_at_once(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    admin = await make_key(ADMIN)
    expires = isoformat_z(utcnow() + timedelta(days=30))
    response = await create(client, admin, rate_limit_per_minute=120, expires_at=expires)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["key"].startswith(created["prefix"]) and created["key"].startswith("pm_live_")
    assert created | {"id": "", "key": "", "prefix": "", "created_at": ""} == {
        "id": "", "key": "", "prefix": "", "created_at": "", "name": "Front end",
        "scopes": ["products:read"], "rate_limit_per_minute": 120, "last_used_at": None,
        "expires_at": expires.replace("+00:00", "Z"), "revoked_at": None, "active": True,
    }  # fmt: skip
    assert await status_of(client, as_key(created, admin)) == 200

    listed = (await client.get(BASE, headers=admin.headers)).json()
    assert listed["meta"]["total"] == 2
    assert [k["name"] for k in listed["items"]] == ["Front end", "ERP Sync Key"]
    assert created["key"] not in str(listed)
    assert listed["items"][0]["last_used_at"] is not None  # it was just used


async def test_a_key_cannot_create_a_key_with_a_scope_it_does_not_hold(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    admin = await make_key(ADMIN)
    response = await create(client, admin, scopes=["products:read", "imports:write"])
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden" and "imports:write" in response.json()["detail"]
    assert (await client.get(BASE, headers=admin.headers)).json()["meta"]["total"] == 1


async def test_managing_keys_needs_settings_manage(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    reader = await make_key(["products:read"])
    assert (await create(client, reader)).status_code == 403
    assert (await client.get(BASE, headers=reader.headers)).status_code == 403
    listed = await gql(client, "{ apiKeys { totalCount } }", reader)
    assert listed["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_bad_key_fields_are_refused_with_the_field_named(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    admin = await make_key(ADMIN)
    past = isoformat_z(utcnow() - timedelta(minutes=1))
    cases = [
        ({"scopes": ["root"]}, "scopes"),
        ({"rate_limit_per_minute": 0}, "rate_limit_per_minute"),
        ({"rate_limit_per_minute": 2**40}, "rate_limit_per_minute"),
        ({"expires_at": past}, "expires_at"),
        ({"name": ""}, "name"),
        ({"name": "x" * 300}, "name"),
    ]
    for body, field in cases:
        response = await create(client, admin, **body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["field"] == field
    assert (await client.get(BASE, headers=admin.headers)).json()["meta"]["total"] == 1


async def test_a_revoked_key_is_refused_on_every_surface_at_once(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    admin = await make_key(ADMIN)
    victim = as_key((await create(client, admin)).json(), admin)
    assert await status_of(client, victim) == 200
    assert await graphql_status(client, victim) == "ok"
    victim_id = (await client.get(BASE, headers=admin.headers)).json()["items"][0]["id"]

    revoked = await client.delete(f"{BASE}/{victim_id}", headers=admin.headers)
    assert revoked.status_code == 200
    assert revoked.json()["active"] is False and revoked.json()["revoked_at"] is not None
    assert await status_of(client, victim) == 401
    assert await graphql_status(client, victim) == "UNAUTHENTICATED"
    again = await client.delete(f"{BASE}/{victim_id}", headers=admin.headers)
    assert again.status_code == 404 and again.json()["code"] == "not_found"


async def test_another_accounts_keys_cannot_be_touched(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    admin, other = await make_key(ADMIN), await make_key(ADMIN)
    for response in (
        await client.delete(f"{BASE}/{other.key_id}", headers=admin.headers),
        await client.post(f"{BASE}/{other.key_id}/rotate", headers=admin.headers),
    ):
        assert response.status_code == 404
    assert await status_of(client, other) == 200
    listed = (await client.get(BASE, headers=admin.headers)).json()
    assert [k["id"] for k in listed["items"]] == [str(admin.key_id)]


async def test_an_expired_key_is_refused_like_a_revoked_one(
    client: httpx.AsyncClient, make_key: MakeKey, runtime: Runtime
) -> None:
    admin = await make_key(ADMIN)
    soon = isoformat_z(utcnow() + timedelta(seconds=3))
    short = as_key((await create(client, admin, expires_at=soon)).json(), admin)
    assert await status_of(client, short) == 200
    # A key this close to its expiry is looked up on every use, never served from the
    # cache: moving its expiry to the past (what the clock would do) is seen at once.
    async with runtime.db.transaction() as session:
        await session.execute(
            update(ApiKey).where(ApiKey.prefix == short.plain[:14])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )  # fmt: skip
    assert await status_of(client, short) == 401
    assert await graphql_status(client, short) == "UNAUTHENTICATED"
    listed = (await client.get(BASE, headers=admin.headers)).json()["items"]
    assert listed[0]["active"] is False and listed[0]["revoked_at"] is None


async def test_a_rotated_key_keeps_working_for_its_grace_period_then_is_refused(
    client: httpx.AsyncClient, make_key: MakeKey, runtime: Runtime
) -> None:
    admin = await make_key(ADMIN)
    old = as_key((await create(client, admin, rate_limit_per_minute=60)).json(), admin)
    old_id = (await client.get(BASE, headers=admin.headers)).json()["items"][0]["id"]

    response = await client.post(
        f"{BASE}/{old_id}/rotate", json={"grace_period_hours": 2}, headers=admin.headers
    )
    assert response.status_code == 201, response.text
    rotated = response.json()
    assert (rotated["name"], rotated["scopes"], rotated["rate_limit_per_minute"]) == (
        "Front end", ["products:read"], 60,
    )  # fmt: skip
    new = as_key(rotated, admin)
    assert await status_of(client, new) == 200
    assert await status_of(client, old) == 200  # during the grace period
    listed = {k["id"]: k for k in (await client.get(BASE, headers=admin.headers)).json()["items"]}
    grace_end = listed[old_id]["expires_at"]
    assert (
        utcnow() + timedelta(minutes=119) < parse_iso8601(grace_end) < utcnow() + timedelta(hours=2)
    )

    async with runtime.db.transaction() as session:  # the grace period is over
        await session.execute(
            update(ApiKey).where(ApiKey.prefix == old.plain[:14])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )  # fmt: skip
    keys.recent_callers.forget(keys.hash_key(old.plain))  # what CALLER_TTL_SECONDS does
    assert await status_of(client, old) == 401
    assert await status_of(client, new) == 200


async def test_a_rotation_without_grace_refuses_the_old_key_at_once(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    admin = await make_key(ADMIN)
    response = await client.post(
        f"{BASE}/{admin.key_id}/rotate", json={"grace_period_hours": 0}, headers=admin.headers
    )
    assert response.status_code == 201
    assert await status_of(client, admin) == 401
    assert await status_of(client, as_key(response.json(), admin)) == 200


async def test_a_key_cannot_rotate_a_key_holding_scopes_it_lacks(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    full = await make_key()  # every scope
    narrow = await make_key(["settings:manage"], account=full.account)
    response = await client.post(f"{BASE}/{full.key_id}/rotate", headers=narrow.headers)
    assert response.status_code == 403
    assert await status_of(client, full) == 200
    too_long = await client.post(
        f"{BASE}/{full.key_id}/rotate", json={"grace_period_hours": 200}, headers=full.headers
    )
    assert too_long.status_code == 422 and too_long.json()["field"] == "grace_period_hours"


CREATE = """mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) {
  secret apiKey { id name prefix scopes active } errors { field code message } } }"""
ROTATE = """mutation($id: ID!, $hours: Float!) { rotateApiKey(id: $id, gracePeriodHours: $hours) {
  secret apiKey { id name } errors { code } } }"""
REVOKE = """mutation($id: ID!) { revokeApiKey(id: $id) { apiKey { active revokedAt }
  errors { code } } }"""
LIST = "{ apiKeys { totalCount nodes { id name prefix active lastUsedAt expiresAt } } }"


async def test_keys_are_managed_through_graphql_too(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    admin = await make_key(ADMIN)
    body = await gql(client, CREATE, admin, input={"name": "SPA", "scopes": ["products:read"]})
    created = body["data"]["createApiKey"]
    assert created["errors"] == [] and created["apiKey"]["active"] is True
    spa = Key(created["secret"], admin.account, admin.account_id, admin.key_id)
    assert await status_of(client, spa) == 200

    beyond = await gql(client, CREATE, admin, input={"name": "x", "scopes": ["imports:write"]})
    assert beyond["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    rotated = (await gql(client, ROTATE, admin, id=created["apiKey"]["id"], hours=0))["data"]
    assert rotated["rotateApiKey"]["apiKey"]["name"] == "SPA"
    assert await status_of(client, spa) == 401
    new_id = rotated["rotateApiKey"]["apiKey"]["id"]
    revoked = (await gql(client, REVOKE, admin, id=new_id))["data"]["revokeApiKey"]
    assert revoked["apiKey"]["active"] is False and revoked["errors"] == []
    gone = (await gql(client, REVOKE, admin, id=new_id))["data"]["revokeApiKey"]
    assert gone == {"apiKey": None, "errors": [{"code": "NOT_FOUND"}]}

    listed = (await gql(client, LIST, admin))["data"]["apiKeys"]
    assert listed["totalCount"] == 3
    assert [n["active"] for n in listed["nodes"]] == [False, False, True]
    assert created["secret"] not in str(listed)


async def test_requests_missing_the_same_key_share_one_lookup(
    runtime: Runtime, key: Key, monkeypatch: Any
) -> None:
    # Many requests in flight when a busy key's cached caller expires: one transaction
    # looks it up for all of them, and its last use is written once.
    looked_up = 0
    authenticate = keys.authenticate

    async def counted(session: Any, plain: str | None) -> Any:
        nonlocal looked_up
        looked_up += 1
        await asyncio.sleep(0.05)  # the others arrive while it runs
        return await authenticate(session, plain)

    monkeypatch.setattr(keys, "authenticate", counted)
    keys.recent_callers.forget(keys.hash_key(key.plain))
    callers = await asyncio.gather(*(keys.caller_for(runtime.db, key.plain) for _ in range(8)))
    assert looked_up == 1
    assert {c.key_id for c in callers} == {key.key_id}

    # A request that goes away leaves the lookup to the others; a refusal reaches them all.
    keys.recent_callers.forget(keys.hash_key(key.plain))
    first = asyncio.ensure_future(keys.caller_for(runtime.db, key.plain))
    await asyncio.sleep(0.01)
    second = asyncio.ensure_future(keys.caller_for(runtime.db, key.plain))
    first.cancel()
    assert (await second).key_id == key.key_id
    assert looked_up == 2
    unknown = [keys.caller_for(runtime.db, "pm_live_unknown") for _ in range(3)]
    refusals = await asyncio.gather(*unknown, return_exceptions=True)
    assert [type(r).__name__ for r in refusals] == ["Unauthenticated"] * 3
    assert looked_up == 3
