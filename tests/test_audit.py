"""The audit trail: every administrative action recorded with who, what and when, by
field name only, read newest first by settings:manage, and purged by retention."""

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from models import AuditEvent
from pim.runtime import Runtime
from pim.timeutil import isoformat_z, parse_iso8601, utcnow
from resolvers import retention
from tests.conftest import Key, MakeKey, gql

BASE = "/api/v1/audit"
ADMIN = ["settings:manage", "products:read", "connectors:read"]
SHOP_TOKEN = "shpat_do_not_leak_0123456789"


async def trail(client: httpx.AsyncClient, key: Key, **params: Any) -> dict[str, Any]:
    response = await client.get(BASE, params=params, headers=key.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def actions(body: dict[str, Any]) -> list[str]:
    return [e["action"] for e in body["items"]]


async def test_key_actions_are_recorded_newest_first_with_the_acting_key(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    admin = await make_key(ADMIN)
    created = await client.post(
        "/api/v1/keys", json={"name": "SPA", "scopes": ["products:read"]}, headers=admin.headers
    )
    key_id = created.json()["id"]
    rotated = await client.post(f"/api/v1/keys/{key_id}/rotate", headers=admin.headers)
    await client.delete(f"/api/v1/keys/{rotated.json()['id']}", headers=admin.headers)

    body = await trail(client, admin)
    # The first key was made on the server (no acting key); then the API's actions.
    assert actions(body) == [
        "key.revoked", "key.rotated", "key.created", "key.created", "key.created",
    ]  # fmt: skip
    revoked, rotation, _new, made, first = body["items"]
    assert revoked | {"id": "", "created_at": ""} == {
        "id": "", "created_at": "", "action": "key.revoked", "actor_key_id": str(admin.key_id),
        "target_type": "key", "target_id": rotated.json()["id"], "changes": ["revoked_at"],
    }  # fmt: skip
    assert (rotation["target_id"], rotation["changes"]) == (key_id, ["expires_at"])
    assert made["changes"] == ["name", "scopes"] and first["actor_key_id"] is None
    times = [parse_iso8601(e["created_at"]) for e in body["items"]]
    assert times == sorted(times, reverse=True)
    assert body["meta"] == {"per_page": 50, "has_next": False, "next_cursor": None}


async def test_webhook_and_connector_changes_name_their_fields_never_their_secrets(
    client: httpx.AsyncClient, make_key: MakeKey, loopback_allowed: None
) -> None:
    admin = await make_key(ADMIN)
    hook = await client.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=admin.headers
    )
    assert hook.status_code == 201, hook.text
    hook_id, secret = hook.json()["id"], hook.json()["secret"]
    changed = await client.patch(
        f"/api/v1/webhooks/{hook_id}", json={"is_active": False, "description": "paused"},
        headers=admin.headers,
    )  # fmt: skip
    assert changed.status_code == 200
    assert (await client.delete(f"/api/v1/webhooks/{hook_id}", headers=admin.headers)).is_success
    connector = await client.post(
        "/api/v1/connectors/",
        json={"name": "Shop", "platform": "shopify", "base_url": "http://127.0.0.1:9",
              "credentials": {"access_token": SHOP_TOKEN}},
        headers=admin.headers,
    )  # fmt: skip
    assert connector.status_code == 201, connector.text

    body = await trail(client, admin)
    assert actions(body)[:4] == [
        "connector.created", "webhook.deleted", "webhook.updated", "webhook.created",
    ]  # fmt: skip
    by_action = {e["action"]: e for e in body["items"]}
    assert by_action["webhook.updated"]["changes"] == ["description", "is_active"]
    assert by_action["webhook.deleted"]["target_id"] == hook_id
    assert by_action["connector.created"]["changes"] == [
        "base_url", "credentials", "name", "platform",
    ]  # fmt: skip
    assert secret not in str(body) and SHOP_TOKEN not in str(body)


async def test_automation_changes_are_recorded_without_their_credentials(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    admin = await make_key([*ADMIN, "imports:write"])
    base = "/api/v1/imports/automations"
    password = "sftp-pa55word-never-logged"
    body = {
        "name": "Nightly", "schedule": "0 2 * * *", "mapping": {"EAN": "ean"},
        "file_source": {"type": "sftp", "host": "sftp.supplier.com", "username": "u",
                        "path": "/p.csv", "password": password},
    }  # fmt: skip
    created = await client.post(base, json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    automation_id = created.json()["id"]
    patch = {"is_active": False, "file_source": {"password": "another-one"}}
    assert (
        await client.patch(f"{base}/{automation_id}", json=patch, headers=admin.headers)
    ).is_success
    assert (await client.delete(f"{base}/{automation_id}", headers=admin.headers)).is_success

    events = (await trail(client, admin))["items"][:3]
    assert [(e["action"], e["target_id"], e["changes"]) for e in events] == [
        ("automation.deleted", automation_id, []),
        ("automation.updated", automation_id, ["file_source", "is_active"]),
        ("automation.created", automation_id, ["file_source", "mapping", "name", "schedule"]),
    ]
    assert password not in str(events) and "another-one" not in str(events)


async def test_a_refused_action_leaves_no_record(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    admin = await make_key(ADMIN)
    before = await trail(client, admin)
    refused = await client.post(
        "/api/v1/keys", json={"name": "x", "scopes": ["imports:write"]}, headers=admin.headers
    )
    assert refused.status_code == 403
    bad_url = await client.post(
        "/api/v1/webhooks", json={"url": "http://10.0.0.1/h"}, headers=admin.headers
    )
    assert bad_url.status_code == 422
    assert await trail(client, admin) == before


async def test_the_trail_is_filtered_by_action_and_time_and_paged_by_cursor(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    admin = await make_key(ADMIN)
    for name in ("a", "b", "c"):
        body = {"name": name, "scopes": ["products:read"]}
        assert (await client.post("/api/v1/keys", json=body, headers=admin.headers)).is_success
    first = await trail(client, admin, action="key.created", limit=2)
    assert len(first["items"]) == 2 and first["meta"]["has_next"] is True
    rest = await trail(client, admin, action="key.created", limit=2,
                       after=first["meta"]["next_cursor"])  # fmt: skip
    assert len(rest["items"]) == 2 and rest["meta"]["has_next"] is False
    ids = [e["id"] for e in first["items"] + rest["items"]]
    assert len(set(ids)) == 4  # the three API keys and the account's first key

    assert (await trail(client, admin, action="key.revoked"))["items"] == []
    future = isoformat_z(utcnow() + timedelta(minutes=1))
    assert (await trail(client, admin, since=future))["items"] == []
    assert len((await trail(client, admin, until=future))["items"]) == 4

    for params, field in (({"action": "key.exploded"}, "action"), ({"limit": 0}, "limit"),
                          ({"after": "nope"}, "after")):  # fmt: skip
        response = await client.get(BASE, params=params, headers=admin.headers)
        assert response.status_code == 422 and response.json()["field"] == field


async def test_an_account_sees_only_its_own_trail_and_only_with_settings_manage(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    admin, other = await make_key(ADMIN), await make_key(ADMIN)
    own = await trail(client, other)
    assert {e["target_id"] for e in own["items"]} == {str(other.key_id)}
    reader = await make_key(["products:read"], account=admin.account)
    assert (await client.get(BASE, headers=reader.headers)).status_code == 403
    denied = await gql(client, "{ auditEvents { edges { cursor } } }", reader)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


AUDIT = """query($after: String) { auditEvents(first: 1, after: $after, action: "key.created") {
  edges { cursor node { action actorKeyId targetType targetId changes createdAt } }
  pageInfo { hasNextPage endCursor } } }"""


async def test_the_trail_is_read_through_graphql_too(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    admin = await make_key(ADMIN)
    body = {"name": "SPA", "scopes": ["products:read"]}
    made = (await client.post("/api/v1/keys", json=body, headers=admin.headers)).json()
    page = (await gql(client, AUDIT, admin))["data"]["auditEvents"]
    assert page["edges"][0]["node"] | {"createdAt": ""} == {
        "action": "key.created", "actorKeyId": str(admin.key_id), "targetType": "key",
        "targetId": made["id"], "changes": ["name", "scopes"], "createdAt": "",
    }  # fmt: skip
    assert page["pageInfo"] == {"hasNextPage": True, "endCursor": page["edges"][0]["cursor"]}
    second = (await gql(client, AUDIT, admin, after=page["pageInfo"]["endCursor"]))["data"]
    assert second["auditEvents"]["edges"][0]["node"]["targetId"] == str(admin.key_id)
    assert second["auditEvents"]["pageInfo"]["hasNextPage"] is False


async def test_retention_purges_only_older_records_a_batch_at_a_time(
    make_key: MakeKey, runtime: Runtime
) -> None:
    key = await make_key(ADMIN)
    now = utcnow()
    async with runtime.db.transaction() as session:
        for days in (400, 380, 370, 10):
            session.add(AuditEvent(
                account_id=key.account_id, action="webhook.deleted", target_type="webhook",
                target_id=f"old-{days}", created_at=now - timedelta(days=days),
            ))  # fmt: skip
    cutoff = now - timedelta(days=365)
    settings = runtime.settings.model_copy(update={"retention_batch_size": 2})
    (rule,) = [rule for rule in retention.RULES if rule.name == "audit_events"]
    async with runtime.db.transaction() as session:
        assert await retention.remove_batch(session, rule, settings=settings, now=now) == 2
    async with runtime.db.transaction() as session:
        assert await retention.remove_batch(session, rule, settings=settings, now=now) == 1
    async with runtime.db.read() as session:
        left = await session.scalars(
            select(AuditEvent.target_id).where(AuditEvent.account_id == key.account_id)
        )
        assert set(left) == {"old-10", str(key.key_id)}
        older = select(func.count()).where(AuditEvent.created_at < cutoff)
        assert await session.scalar(older) == 0
