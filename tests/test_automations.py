"""Automations (POST /imports/automations and friends): the spec's request and response,
CRUD on both surfaces, credentials encrypted and never shown, scopes, tenancy, and the
scheduler's due computation and exactly-once start."""

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update

from models import Automation
from pim.crypto import cipher_for
from pim.runtime import Runtime
from resolvers import automations
from tests.conftest import Key, MakeKey, gql

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
BASE = "/api/v1/imports/automations"
# The spec's example request, word for word.
SPEC_REQUEST = {
    "name": "Daily Supplier A Import",
    "supplier_code": "SUPPLIER_A",
    "schedule": "0 2 * * *",
    "file_source": {
        "type": "sftp",
        "host": "sftp.supplier.com",
        "username": "user",
        "path": "/exports/products.csv",
    },
    "mapping": {"EAN": "ean", "Titre": "name", "Prix HT": "price"},
}
PASSWORD = " s3cr3t-Pa55word"  # a leading space is part of a password
WITH_PASSWORD = {
    **SPEC_REQUEST,
    "file_source": {**SPEC_REQUEST["file_source"], "password": PASSWORD},
}


def plain_error(body: dict[str, Any]) -> None:
    assert set(body) == {"detail", "code", "field", "errors"}


async def create(client: httpx.AsyncClient, key: Key, body: dict[str, Any] | None = None) -> dict:
    response = await client.post(BASE, json=body or WITH_PASSWORD, headers=key.bearer)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_the_spec_request_gets_the_spec_response(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key(["imports:write"])
    response = await client.post(BASE, json=SPEC_REQUEST, headers=key.bearer)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "name", "schedule", "is_active", "created_at"}
    uuid.UUID(body["id"])
    assert body["name"] == "Daily Supplier A Import"
    assert body["schedule"] == "0 2 * * *"
    assert body["is_active"] is True
    assert ISO_Z.match(body["created_at"])


async def test_get_shows_the_whole_automation_and_its_next_run(
    client: httpx.AsyncClient, key: Key
) -> None:
    created = await create(client, key)
    response = await client.get(f"{BASE}/{created['id']}", headers=key.bearer)
    assert response.status_code == 200
    body = response.json()
    assert body["supplier_code"] == "SUPPLIER_A"
    assert body["mapping"] == SPEC_REQUEST["mapping"]
    assert body["file_source"] == {
        "type": "sftp", "host": "sftp.supplier.com", "port": None, "path": "/exports/products.csv",
        "username": "user", "has_password": True, "has_private_key": False, "host_key": None,
    }  # fmt: skip
    next_run = datetime.fromisoformat(body["next_run_at"].replace("Z", "+00:00"))
    assert (next_run.hour, next_run.minute, next_run.second) == (2, 0, 0)
    assert next_run > datetime.now(UTC)
    assert body["last_run_at"] is None and body["last_status"] is None


async def test_credentials_are_encrypted_at_rest_and_never_returned(
    client: httpx.AsyncClient, runtime: Runtime, key: Key
) -> None:
    private_key = __import__("asyncssh").generate_private_key("ssh-ed25519")
    pem = private_key.export_private_key().decode()
    body = {**WITH_PASSWORD, "file_source": {**WITH_PASSWORD["file_source"], "private_key": pem}}
    created = await create(client, key, body)
    async with runtime.db.transaction() as session:
        row = (
            await session.execute(
                text(
                    "SELECT password_encrypted, private_key_encrypted FROM automations WHERE id = :id"
                ),
                {
                    "id": uuid.UUID(created["id"])
                    if runtime.db.dialect == "postgresql"
                    else uuid.UUID(created["id"]).hex
                },
            )
        ).one()
    assert PASSWORD not in row[0] and "PRIVATE KEY" not in row[1]
    cipher = cipher_for(runtime.settings)
    assert cipher.decrypt(row[0]) == PASSWORD and cipher.decrypt(row[1]) == pem
    responses = [
        await client.get(f"{BASE}/{created['id']}", headers=key.bearer),
        await client.get(BASE, headers=key.bearer),
        await client.patch(f"{BASE}/{created['id']}", json={"name": "x"}, headers=key.bearer),
    ]
    for response in responses:
        assert response.status_code == 200
        assert PASSWORD not in response.text and "PRIVATE KEY" not in response.text
    source = responses[0].json()["file_source"]
    assert source["has_password"] is True and source["has_private_key"] is True
    graphql = await gql(
        client,
        f'{{ automation(id: "{created["id"]}") {{ fileSource {{ hasPassword hasPrivateKey }} }} }}',
        key,
    )
    assert graphql["data"]["automation"]["fileSource"] == {
        "hasPassword": True,
        "hasPrivateKey": True,
    }


async def test_list_pages_with_items_and_meta(client: httpx.AsyncClient, key: Key) -> None:
    ids = [(await create(client, key, {**SPEC_REQUEST, "name": f"A{i}"}))["id"] for i in range(3)]
    response = await client.get(f"{BASE}?skip=2&limit=2", headers=key.bearer)
    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body["items"]] == ids[2:]
    assert body["meta"] == {
        "total": 3, "page": 2, "per_page": 2, "total_pages": 2, "has_next": False,
        "has_previous": True,
    }  # fmt: skip
    response = await client.get(f"{BASE}?limit=500", headers=key.bearer)
    assert response.status_code == 422
    plain_error(response.json())
    assert response.json()["field"] == "limit"


async def test_patch_changes_given_fields_and_keeps_credentials(
    client: httpx.AsyncClient, runtime: Runtime, key: Key
) -> None:
    created = await create(client, key)
    response = await client.patch(
        f"{BASE}/{created['id']}",
        json={
            "schedule": "30 6 * * 1",
            "file_source": {"path": "/exports/v2.csv"},
            "supplier_code": None,
        },
        headers=key.bearer,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["schedule"] == "30 6 * * 1" and body["supplier_code"] is None
    assert body["file_source"]["path"] == "/exports/v2.csv"
    assert body["file_source"]["has_password"] is True
    next_run = datetime.fromisoformat(body["next_run_at"].replace("Z", "+00:00"))
    assert (next_run.weekday(), next_run.hour, next_run.minute) == (0, 6, 30)
    # Deactivated: nothing is scheduled; a null password clears it.
    response = await client.patch(
        f"{BASE}/{created['id']}",
        json={"is_active": False, "file_source": {"password": None}},
        headers=key.bearer,
    )
    assert response.json()["next_run_at"] is None
    assert response.json()["file_source"]["has_password"] is False


async def test_delete_removes_it(client: httpx.AsyncClient, key: Key) -> None:
    created = await create(client, key)
    response = await client.delete(f"{BASE}/{created['id']}", headers=key.bearer)
    assert response.status_code == 204
    response = await client.get(f"{BASE}/{created['id']}", headers=key.bearer)
    assert response.status_code == 404
    plain_error(response.json())
    assert response.json()["detail"] == "Automatisation introuvable."


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"schedule": "every day"}, "schedule"),
        ({"schedule": "61 2 * * *"}, "schedule"),
        ({"schedule": "*/5 * * * * *"}, "schedule"),
        ({"name": ""}, "name"),
        ({"file_source": {"type": "gopher", "host": "x"}}, "file_source.type"),
        ({"file_source": {"type": "sftp", "path": "/a.csv"}}, "file_source.host"),
        ({"file_source": {"type": "ftp", "host": "ftp.example.com"}}, "file_source.path"),
        ({"file_source": {"type": "http", "url": "ftp://example.com/a.csv"}}, "file_source.url"),
        ({"file_source": {"type": "https", "url": "http://example.com/a.csv"}}, "file_source.url"),
        ({"file_source": {"type": "sftp", "host": "10.1.2.3", "path": "/a"}}, "file_source.host"),
        (
            {"file_source": {"type": "ftp", "host": "169.254.169.254", "path": "/a"}},
            "file_source.host",
        ),
        ({"file_source": {"type": "http", "url": "http://[::1]/a.csv"}}, "file_source.url"),
        ({"file_source": {"type": "sftp", "host": "localhost", "path": "/a"}}, "file_source.host"),
        (
            {
                "file_source": {
                    "type": "sftp",
                    "host": "h.example.com",
                    "path": "/a",
                    "private_key": "nope",
                }
            },
            "file_source.private_key",
        ),
        (
            {"file_source": {"type": "sftp", "host": "h.example.com", "path": "/a", "port": 70000}},
            "file_source.port",
        ),
        ({"mapping": ["EAN"]}, "mapping"),
        ({"mapping": {"EAN": "not_a_product_field"}}, "mapping"),
        ({"is_active": "perhaps"}, "is_active"),
    ],
)
async def test_bad_input_is_refused_with_the_field_and_saves_nothing(
    client: httpx.AsyncClient, make_key: MakeKey, change: dict, field: str
) -> None:
    key = await make_key(["imports:read", "imports:write"])
    response = await client.post(BASE, json={**SPEC_REQUEST, **change}, headers=key.bearer)
    assert response.status_code == 422, response.text
    body = response.json()
    plain_error(body)
    assert field in [e["field"] for e in body["errors"]]
    listed = await client.get(BASE, headers=key.bearer)
    assert listed.json()["meta"]["total"] == 0


async def test_malformed_json_is_a_plain_error(client: httpx.AsyncClient, key: Key) -> None:
    for content in (b"{not json", b"[1, 2]", b""):
        response = await client.post(
            BASE, content=content, headers={**key.bearer, "Content-Type": "application/json"}
        )
        assert response.status_code == 422
        plain_error(response.json())
    response = await client.get(f"{BASE}/not-a-uuid", headers=key.bearer)
    assert response.status_code == 422
    plain_error(response.json())


ROUTES = [
    ("POST", "", "imports:write"),
    ("GET", "", "imports:read"),
    ("GET", "/{id}", "imports:read"),
    ("PATCH", "/{id}", "imports:write"),
    ("DELETE", "/{id}", "imports:write"),
    ("POST", "/{id}/run", "imports:write"),
]


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES)
async def test_every_route_needs_its_scope(
    client: httpx.AsyncClient, make_key: MakeKey, method: str, path: str, scope: str
) -> None:
    owner = await make_key(["imports:write"])
    created = await create(client, owner)
    other_scopes = [s for s in ("imports:read", "imports:write", "products:write") if s != scope]
    lacking = await make_key(other_scopes, account=owner.account)
    url = BASE + path.format(id=created["id"])
    response = await client.request(method, url, json={"name": "x"}, headers=lacking.bearer)
    assert response.status_code == 403
    plain_error(response.json())
    assert scope in response.json()["detail"]
    allowed = await make_key([scope], account=owner.account)
    response = await client.request(
        method, url, json=SPEC_REQUEST if path == "" else {"name": "x"}, headers=allowed.bearer
    )
    assert response.status_code in (200, 201, 202, 204), response.text
    response = await client.request(method, url, json={"name": "x"})
    assert response.status_code == 401
    plain_error(response.json())


async def test_another_account_sees_nothing(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    mine = await make_key(["imports:read", "imports:write"])
    theirs = await make_key(["imports:read", "imports:write"])
    created = await create(client, mine)
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(
            method, f"{BASE}/{created['id']}", json={"name": "stolen"}, headers=theirs.bearer
        )
        assert response.status_code == 404
    response = await client.post(f"{BASE}/{created['id']}/run", headers=theirs.bearer)
    assert response.status_code == 404
    assert (await client.get(BASE, headers=theirs.bearer)).json()["items"] == []
    graphql = await gql(client, f'{{ automation(id: "{created["id"]}") {{ id }} }}', theirs)
    assert graphql["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    mine_now = await client.get(f"{BASE}/{created['id']}", headers=mine.bearer)
    assert mine_now.json()["name"] == SPEC_REQUEST["name"]


CREATE = """mutation($input: AutomationInput!) { createAutomation(input: $input) {
  automation { id name schedule isActive nextRunAt mapping
    fileSource { type host path username hasPassword hasPrivateKey } }
  errors { field message code } } }"""
UPDATE = """mutation($id: ID!, $input: AutomationPatchInput!) { updateAutomation(id: $id, input: $input) {
  automation { id schedule isActive nextRunAt fileSource { path hasPassword } } errors { field code } } }"""


async def test_graphql_creates_lists_updates_and_deletes(
    client: httpx.AsyncClient, key: Key
) -> None:
    source = {
        "type": "SFTP",
        "host": "sftp.supplier.com",
        "path": "/p.csv",
        "username": "u",
        "password": PASSWORD,
    }
    result = await gql(
        client,
        CREATE,
        key,
        input={
            "name": "Nightly",
            "schedule": "0 3 * * *",
            "fileSource": source,
            "mapping": {"EAN": "ean"},
        },
    )
    payload = result["data"]["createAutomation"]
    assert payload["errors"] == []
    automation = payload["automation"]
    assert automation["fileSource"] == {
        "type": "SFTP", "host": "sftp.supplier.com", "path": "/p.csv", "username": "u",
        "hasPassword": True, "hasPrivateKey": False,
    }  # fmt: skip
    assert automation["mapping"] == {"EAN": "ean"} and automation["isActive"] is True
    listed = await gql(client, "{ automations { totalCount nodes { id name } } }", key)
    assert listed["data"]["automations"] == {
        "totalCount": 1,
        "nodes": [{"id": automation["id"], "name": "Nightly"}],
    }
    updated = await gql(
        client,
        UPDATE,
        key,
        id=automation["id"],
        input={"isActive": False, "fileSource": {"type": "SFTP", "path": "/q.csv"}},
    )
    assert updated["data"]["updateAutomation"]["automation"] == {
        "id": automation["id"], "schedule": "0 3 * * *", "isActive": False, "nextRunAt": None,
        "fileSource": {"path": "/q.csv", "hasPassword": True},
    }  # fmt: skip
    deleted = await gql(
        client,
        "mutation($id: ID!) { deleteAutomation(id: $id) { deletedId errors { code } } }",
        key,
        id=automation["id"],
    )
    assert deleted["data"]["deleteAutomation"] == {"deletedId": automation["id"], "errors": []}


async def test_graphql_returns_typed_errors(client: httpx.AsyncClient, key: Key) -> None:
    source = {"type": "FTP", "host": "10.0.0.7", "path": "/p.csv"}
    result = await gql(
        client, CREATE, key, input={"name": "Bad", "schedule": "nope", "fileSource": source}
    )
    payload = result["data"]["createAutomation"]
    assert payload["automation"] is None
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [
        ("schedule", "INVALID"), ("file_source.host", "INVALID"),
    ]  # fmt: skip
    missing = await gql(client, UPDATE, key, id=str(uuid.uuid4()), input={"name": "x"})
    assert missing["data"]["updateAutomation"]["errors"] == [{"field": "id", "code": "NOT_FOUND"}]
    reader_only = await gql(client, "{ automations { totalCount } }", None)
    assert reader_only["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# ---- scheduling -----------------------------------------------------------------------


def test_next_fire_follows_the_cron_expression() -> None:
    at = datetime(2026, 3, 15, 9, 0, 30, tzinfo=UTC)
    assert automations.next_fire("0 2 * * *", at) == datetime(2026, 3, 16, 2, 0, tzinfo=UTC)
    assert automations.next_fire("*/15 * * * *", at) == datetime(2026, 3, 15, 9, 15, tzinfo=UTC)
    assert automations.next_fire(
        "0 9 * * *", datetime(2026, 3, 15, 8, 59, 59, tzinfo=UTC)
    ) == at.replace(second=0)
    assert automations.next_fire("@hourly", at) == datetime(2026, 3, 15, 10, 0, tzinfo=UTC)
    assert automations.run_job_id(uuid.UUID(int=7), datetime(2026, 3, 16, 2, 0, tzinfo=UTC)) == (
        "automation:00000000-0000-0000-0000-000000000007:20260316T0200Z"
    )


async def test_only_active_automations_whose_time_has_come_are_due(
    runtime: Runtime, key: Key
) -> None:
    caller = key.caller("imports:write")
    guards = {"settings": runtime.settings}
    async with runtime.db.transaction() as session:
        due = await automations.create_automation(
            session, caller, data={**SPEC_REQUEST, "schedule": "* * * * *"}, **guards
        )
        later = await automations.create_automation(
            session, caller, data={**SPEC_REQUEST, "schedule": "0 0 1 1 *"}, **guards
        )
        off = await automations.create_automation(
            session, caller, data={**SPEC_REQUEST, "is_active": False}, **guards
        )
    assert off.next_run_at is None
    assert due.next_run_at is not None and later.next_run_at is not None
    now = due.next_run_at
    async with runtime.db.transaction() as session:
        deferred = await _due_ids(session, now)
    assert due.id in deferred and later.id not in deferred and off.id not in deferred
    assert deferred[due.id] == automations.run_job_id(due.id, due.next_run_at)
    async with runtime.db.transaction() as session:  # keep other tests' scheduler ticks quiet
        await automations.update_automation(
            session, caller, automation_id=due.id, changes={"is_active": False}, **guards
        )


async def _due_ids(session: Any, now: datetime) -> dict[uuid.UUID, str]:
    from pim.jobs import take_pending

    await automations.enqueue_due_runs(session, now=now)
    return {uuid.UUID(job.args[0]): str(job.job_id) for job in take_pending(session)}


async def test_two_concurrent_runners_of_one_fire_time_start_it_once(
    runtime: Runtime, key: Key
) -> None:
    async with runtime.db.transaction() as session:
        automation = await automations.create_automation(
            session,
            key.caller("imports:write"),
            data={**SPEC_REQUEST, "schedule": "0 2 * * *"},
            settings=runtime.settings,
        )
    fire = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3)
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Automation).where(Automation.id == automation.id).values(next_run_at=fire)
        )

    async def claim(retry: bool = False) -> Any:
        async with runtime.db.transaction() as session:
            return await automations.start_run(
                session,
                automation_id=automation.id,
                fire_at=fire,
                settings=runtime.settings,
                retry=retry,
            )

    plans = await asyncio.gather(claim(), claim())
    assert sum(plan is not None for plan in plans) == 1
    async with runtime.db.transaction() as session:
        stored = await session.get(Automation, automation.id)
        assert stored is not None
        assert stored.last_fire_at == fire and stored.last_status == "running"
        assert stored.next_run_at is not None and stored.next_run_at > datetime.now(UTC)
    assert await claim() is None

    # The queue's retry of a run whose worker died takes its unfinished claim over; once the
    # run has finished, not even a retry starts it again.
    plan = await claim(retry=True)
    assert plan is not None
    async with runtime.db.transaction() as session:
        await automations.finish_run(session, plan, error="boom")
    assert await claim(retry=True) is None
