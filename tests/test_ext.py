"""The External API, route by route, against the examples of spec/ext-api.txt."""

import logging
import re
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from models import ApiKey
from pim.runtime import Runtime
from pim.timeutil import utcnow
from resolvers import keys
from tests.conftest import Key, MakeKey

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
BASE = "/api/v1/ext"
SPEC_PRODUCT = {
    "ean": "3760000000001",
    "name": "Support TV mural fixe 37-75 pouces",
    "brand_name": "KIMEX",
    "supplier_code": "KIMEX",
    "weight": 1.5,
    "status": "active",
}


def assert_envelope(body: dict, *, success: bool = True) -> None:
    assert set(body) == {"success", "data", "meta", "errors"}
    assert body["success"] is success
    assert set(body["meta"]) == {"total", "page", "page_size", "updated_at"}
    assert ISO_Z.match(body["meta"]["updated_at"])
    if success:
        assert body["errors"] == []
    else:
        assert body["data"] is None
        assert body["errors"] and all(isinstance(e, str) for e in body["errors"])


async def create(client: httpx.AsyncClient, key: Key, **fields: object) -> dict:
    response = await client.post(f"{BASE}/products", json=fields, headers=key.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def test_status_returns_key_name_and_scopes(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key(["ext:products:read", "ext:products:write"], name="ERP Sync Key")
    response = await client.get(f"{BASE}/status", headers=key.headers)
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body)
    assert body["data"]["status"] == "ok"
    assert body["data"]["version"] == "1.0"
    assert body["data"]["api_key_name"] == "ERP Sync Key"
    assert body["data"]["api_key_scopes"] == ["ext:products:read", "ext:products:write"]
    assert ISO_Z.match(body["data"]["timestamp"])
    assert body["meta"]["total"] == 1 and body["meta"]["page_size"] == 1


async def test_missing_or_bad_key_is_401_in_the_envelope(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"X-API-Key": "pm_live_nope"}, {"Authorization": "Bearer pm_live_nope"}):
        response = await client.get(f"{BASE}/products", headers=headers)
        assert response.status_code == 401
        assert_envelope(response.json(), success=False)


async def test_bearer_header_is_accepted_too(client: httpx.AsyncClient, key: Key) -> None:
    response = await client.get(f"{BASE}/status", headers=key.bearer)
    assert response.status_code == 200


async def test_revoked_key_is_refused(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    async with runtime.db.transaction() as session:
        await keys.revoke_key(session, key_id=key.key_id)
    response = await client.get(f"{BASE}/status", headers=key.headers)
    assert response.status_code == 401


async def test_a_key_revoked_in_this_process_is_refused_at_once_even_just_after_use(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    assert (await client.get(f"{BASE}/status", headers=key.headers)).status_code == 200
    async with runtime.db.transaction() as session:
        await keys.revoke_key(session, key_id=key.key_id)
    response = await client.get(f"{BASE}/status", headers=key.headers)
    assert response.status_code == 401


async def test_a_key_revoked_elsewhere_is_refused_within_the_cache_bound(
    client: httpx.AsyncClient, key: Key, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await client.get(f"{BASE}/status", headers=key.headers)).status_code == 200
    # What another process (the CLI, another API worker) does: only the row changes.
    async with runtime.db.transaction() as session:
        await session.execute(
            update(ApiKey).where(ApiKey.id == key.key_id).values(revoked_at=utcnow())
        )
    assert (await client.get(f"{BASE}/status", headers=key.headers)).status_code == 200
    later = time.monotonic() + keys.CALLER_TTL_SECONDS
    monkeypatch.setattr(keys.recent_callers, "clock", lambda: later)
    response = await client.get(f"{BASE}/status", headers=key.headers)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/products", SPEC_PRODUCT),
        ("POST", "/products/batch", {"products": [SPEC_PRODUCT]}),
        ("PUT", "/products/3760000000001", SPEC_PRODUCT),
        ("PATCH", "/products/3760000000001", {"weight": 2}),
    ],
)
async def test_writes_need_the_write_scope(
    client: httpx.AsyncClient, make_key: MakeKey, method: str, path: str, body: dict
) -> None:
    reader = await make_key(["ext:products:read"])
    response = await client.request(method, f"{BASE}{path}", json=body, headers=reader.headers)
    assert response.status_code == 403
    assert_envelope(response.json(), success=False)
    assert "ext:products:write" in response.json()["errors"][0]


@pytest.mark.parametrize(
    "path",
    [
        "/status",
        "/products",
        "/products/delta?since=2026-01-01T00:00:00Z",
        "/products/3760000000001",
    ],
)
async def test_reads_need_the_read_scope(
    client: httpx.AsyncClient, make_key: MakeKey, path: str
) -> None:
    other = await make_key(["windev:read", "products:read", "ext:products:write"])
    response = await client.get(f"{BASE}{path}", headers=other.headers)
    assert response.status_code == 403
    assert_envelope(response.json(), success=False)


async def test_upsert_creates_then_updates_non_null_fields(
    client: httpx.AsyncClient, key: Key
) -> None:
    first = await create(client, key, **SPEC_PRODUCT)
    assert first["created"] is True
    assert first["ean"] == "3760000000001"
    assert first["product"]["title"] == SPEC_PRODUCT["name"]
    assert first["product"]["brand_name"] == "KIMEX"
    assert first["product"]["weight"] == 1.5
    assert first["product"]["ean_checksum_valid"] is False
    assert first["warnings"] == ["ean : chiffre de contrôle incorrect"]

    second = await create(client, key, ean="3760000000001", weight=1.6, description=None)
    assert second["created"] is False
    assert second["id"] == first["id"]
    assert second["product"]["weight"] == 1.6
    assert second["product"]["title"] == SPEC_PRODUCT["name"]


async def test_brand_is_matched_case_insensitively(client: httpx.AsyncClient, key: Key) -> None:
    await create(client, key, ean="4006381333931", name="A", brand_name="Kimex")
    second = await create(client, key, ean="5901234123457", name="B", brand_name="KIMEX")
    assert second["product"]["brand_name"] == "Kimex"


async def test_create_without_name_is_422(client: httpx.AsyncClient, key: Key) -> None:
    response = await client.post(
        f"{BASE}/products", json={"ean": "4006381333931"}, headers=key.headers
    )
    assert response.status_code == 422
    body = response.json()
    assert_envelope(body, success=False)
    assert body["errors"] == ["name : obligatoire pour créer un produit"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {"ean": "123ABC7890", "name": "X"},
            "ean : format invalide (8, 12, 13 ou 14 chiffres attendus)",
        ),
        (
            {"ean": "4006381333931", "name": "X", "status": "deleted"},
            "status : valeur non autorisée",
        ),
        ({"ean": "4006381333931", "name": "X", "weight": "lourd"}, "weight : nombre attendu"),
        (
            {"ean": "4006381333931", "name": "X", "weight": -1},
            "weight : doit être supérieur ou égal à 0",
        ),
        ({"name": "X"}, "ean : champ obligatoire"),
    ],
)
async def test_validation_errors_are_422_and_write_nothing(
    client: httpx.AsyncClient, key: Key, payload: dict, message: str
) -> None:
    response = await client.post(f"{BASE}/products", json=payload, headers=key.headers)
    assert response.status_code == 422, response.text
    body = response.json()
    assert_envelope(body, success=False)
    assert body["errors"][0].startswith(message)
    listing = (await client.get(f"{BASE}/products", headers=key.headers)).json()
    assert listing["meta"]["total"] == 0


async def test_malformed_json_is_422_in_the_envelope(client: httpx.AsyncClient, key: Key) -> None:
    response = await client.post(
        f"{BASE}/products",
        content=b'{"ean": ',
        headers={**key.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert_envelope(response.json(), success=False)
    assert response.json()["errors"][0].startswith("body : JSON invalide")


async def test_get_by_ean_matches_the_spec_shape(client: httpx.AsyncClient, key: Key) -> None:
    created = await create(client, key, **SPEC_PRODUCT)
    response = await client.get(f"{BASE}/products/3760000000001", headers=key.headers)
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body)
    data = body["data"]
    for field in (
        "id",
        "ean",
        "title",
        "brand_name",
        "status",
        "is_active",
        "weight",
        "created_at",
        "updated_at",
    ):
        assert field in data
    assert data["id"] == created["id"]
    assert data["status"] == "active" and data["is_active"] is True
    assert ISO_Z.match(data["created_at"]) and ISO_Z.match(data["updated_at"])


async def test_a_listed_product_reads_as_the_product_itself(
    client: httpx.AsyncClient, key: Key
) -> None:
    """The listing reads only the columns it shows: all of them, no fewer."""
    await create(client, key, **SPEC_PRODUCT, description="Écran", reference="REF-1")
    alone = (await client.get(f"{BASE}/products/3760000000001", headers=key.headers)).json()
    listed = (await client.get(f"{BASE}/products", headers=key.headers)).json()
    assert listed["data"] == [alone["data"]]
    assert listed["data"][0]["description"] == "Écran"


@pytest.mark.parametrize("ean", ["123", "3760000000009", "abc"])
async def test_unknown_or_malformed_ean_is_a_plain_404(
    client: httpx.AsyncClient, key: Key, ean: str
) -> None:
    response = await client.get(f"{BASE}/products/{ean}", headers=key.headers)
    assert response.status_code == 404
    body = response.json()
    assert_envelope(body, success=False)
    assert body["errors"] == [f"Produit avec EAN '{ean}' introuvable."]


async def test_list_filters_by_supplier_and_paginates(client: httpx.AsyncClient, key: Key) -> None:
    from jobs.demo import ean13

    for n in range(1, 6):
        await create(
            client, key, ean=ean13(n), name=f"P{n}", supplier_code="KIMEX" if n % 2 else "INGRAM"
        )
    body = (
        await client.get(
            f"{BASE}/products?supplier_code=KIMEX&page=1&page_size=2", headers=key.headers
        )
    ).json()
    assert_envelope(body)
    assert body["meta"] == {**body["meta"], "total": 3, "page": 1, "page_size": 2}
    assert [p["title"] for p in body["data"]] == ["P1", "P3"]
    page2 = (
        await client.get(
            f"{BASE}/products?supplier_code=KIMEX&page=2&page_size=2", headers=key.headers
        )
    ).json()
    assert [p["title"] for p in page2["data"]] == ["P5"]
    spec_keys = {"id", "ean", "title", "brand_name", "is_active", "status", "weight", "updated_at"}
    assert spec_keys <= set(body["data"][0])


async def test_updated_since_returns_only_later_changes(
    client: httpx.AsyncClient, key: Key
) -> None:
    first = await create(client, key, ean="4006381333931", name="Old")
    later = first["product"]["updated_at"]
    await create(client, key, ean="5901234123457", name="New")
    body = (
        await client.get(f"{BASE}/products", params={"updated_since": later}, headers=key.headers)
    ).json()
    assert [p["title"] for p in body["data"]] == ["New"]
    bad = await client.get(f"{BASE}/products?updated_since=hier", headers=key.headers)
    assert bad.status_code == 422


@pytest.mark.parametrize("query", ["page_size=501", "page_size=0", "page=0", "page=abc"])
async def test_page_arguments_are_validated(
    client: httpx.AsyncClient, key: Key, query: str
) -> None:
    response = await client.get(f"{BASE}/products?{query}", headers=key.headers)
    assert response.status_code == 422
    assert_envelope(response.json(), success=False)


async def test_batch_reports_each_item_in_order_and_keeps_going(
    client: httpx.AsyncClient, key: Key
) -> None:
    await create(client, key, ean="3760000000002", name="Produit B existant")
    payload = {
        "products": [
            {"ean": "3760000000001", "name": "Produit A", "brand_name": "KIMEX"},
            {"ean": "3760000000002", "name": "Produit B", "brand_name": "KIMEX"},
            {"ean": "12", "name": "Mauvais"},
            {"ean": "4006381333931"},
            "pas un objet",
        ]
    }
    response = await client.post(f"{BASE}/products/batch", json=payload, headers=key.headers)
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body)
    data = body["data"]
    assert (data["total"], data["created"], data["updated"], data["errors"]) == (5, 1, 1, 3)
    assert [r["status"] for r in data["results"]] == [
        "created",
        "updated",
        "error",
        "error",
        "error",
    ]
    assert [r["ean"] for r in data["results"][:4]] == [
        "3760000000001",
        "3760000000002",
        "12",
        "4006381333931",
    ]
    assert data["results"][0]["id"]
    assert data["results"][3]["errors"] == ["name : obligatoire pour créer un produit"]
    assert body["meta"]["total"] == 5
    assert (
        await client.get(f"{BASE}/products/3760000000001", headers=key.headers)
    ).status_code == 200


async def test_batch_over_500_is_refused_whole(client: httpx.AsyncClient, key: Key) -> None:
    items = [{"ean": f"{n:013d}", "name": "x"} for n in range(501)]
    response = await client.post(
        f"{BASE}/products/batch", json={"products": items}, headers=key.headers
    )
    assert response.status_code == 422
    assert "au plus 500" in response.json()["errors"][0]
    assert (await client.get(f"{BASE}/products", headers=key.headers)).json()["meta"]["total"] == 0


async def test_batch_with_a_duplicate_ean_processes_the_first(
    client: httpx.AsyncClient, key: Key
) -> None:
    items = [{"ean": "4006381333931", "name": "Un"}, {"ean": "4006381333931", "name": "Deux"}]
    data = (
        await client.post(f"{BASE}/products/batch", json={"products": items}, headers=key.headers)
    ).json()["data"]
    assert [r["status"] for r in data["results"]] == ["created", "error"]
    product = (await client.get(f"{BASE}/products/4006381333931", headers=key.headers)).json()[
        "data"
    ]
    assert product["title"] == "Un"


async def test_put_replaces_and_nulls_absent_fields(client: httpx.AsyncClient, key: Key) -> None:
    await create(client, key, **SPEC_PRODUCT, description="<p>Longue</p>", reference="012-1146")
    body = {
        "ean": "3760000000001",
        "name": "Support TV mural fixe — édition 2026",
        "brand_name": "KIMEX",
        "weight": 1.6,
        "status": "active",
    }
    response = await client.put(f"{BASE}/products/3760000000001", json=body, headers=key.headers)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["title"] == "Support TV mural fixe — édition 2026"
    assert data["weight"] == 1.6
    assert (
        data["description"] is None and data["reference"] is None and data["supplier_code"] is None
    )
    assert {"id", "ean", "title", "updated_at"} <= set(data)


async def test_put_and_patch_on_unknown_ean_are_404(client: httpx.AsyncClient, key: Key) -> None:
    for method in ("PUT", "PATCH"):
        response = await client.request(
            method, f"{BASE}/products/4006381333931", json={"name": "X"}, headers=key.headers
        )
        assert response.status_code == 404
        assert response.json()["errors"] == ["Produit avec EAN '4006381333931' introuvable."]


async def test_patch_changes_only_given_fields(client: httpx.AsyncClient, key: Key) -> None:
    await create(client, key, **SPEC_PRODUCT, description="Garde-moi")
    response = await client.patch(
        f"{BASE}/products/3760000000001",
        json={"status": "inactive", "weight": 1.6, "description": None},
        headers=key.headers,
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["status"], data["is_active"], data["weight"]) == ("inactive", False, 1.6)
    assert data["description"] == "Garde-moi"


async def test_a_write_that_changes_nothing_keeps_updated_at(
    client: httpx.AsyncClient, key: Key
) -> None:
    first = await create(client, key, **SPEC_PRODUCT)
    again = await create(client, key, **SPEC_PRODUCT)
    assert again["product"]["updated_at"] == first["product"]["updated_at"]
    changed = await create(client, key, ean=SPEC_PRODUCT["ean"], weight=3)
    assert changed["product"]["updated_at"] > first["product"]["updated_at"]


async def test_accounts_cannot_see_or_touch_each_other(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    alice, bob = await make_key(), await make_key()
    await create(client, alice, **SPEC_PRODUCT)
    assert (
        await client.get(f"{BASE}/products/3760000000001", headers=bob.headers)
    ).status_code == 404
    assert (await client.get(f"{BASE}/products", headers=bob.headers)).json()["meta"]["total"] == 0
    patch = await client.patch(
        f"{BASE}/products/3760000000001", json={"weight": 9}, headers=bob.headers
    )
    assert patch.status_code == 404
    # Bob's upsert of the same EAN creates his own product, leaving Alice's alone.
    mine = await create(client, bob, ean="3760000000001", name="À Bob")
    assert mine["created"] is True
    alices = (await client.get(f"{BASE}/products/3760000000001", headers=alice.headers)).json()[
        "data"
    ]
    assert alices["title"] == SPEC_PRODUCT["name"] and alices["id"] != mine["id"]


async def test_strict_accounts_reject_a_wrong_check_digit(
    client: httpx.AsyncClient, key: Key, runtime
) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from models import Account

    async with runtime.db.transaction() as session:
        await session.execute(
            update(Account).where(Account.id == key.account_id).values(strict_ean=True)
        )
    response = await client.post(f"{BASE}/products", json=SPEC_PRODUCT, headers=key.headers)
    assert response.status_code == 422
    assert response.json()["errors"] == ["ean : chiffre de contrôle incorrect"]
    ok = await client.post(
        f"{BASE}/products", json={"ean": "4006381333931", "name": "OK"}, headers=key.headers
    )
    assert ok.status_code == 200


async def test_rate_limit_headers_and_429(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    key = await make_key(rate_limit=3)
    seen = []
    for _ in range(3):
        response = await client.get(f"{BASE}/status", headers=key.headers)
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == "3"
        seen.append(int(response.headers["X-RateLimit-Remaining"]))
        assert int(response.headers["X-RateLimit-Reset"]) > 0
    assert seen == [2, 1, 0]
    limited = await client.get(f"{BASE}/status", headers=key.headers)
    assert limited.status_code == 429
    assert_envelope(limited.json(), success=False)
    assert int(limited.headers["Retry-After"]) >= 1


async def test_a_client_gone_while_its_body_is_read_is_no_server_error(
    app: FastAPI, key: Key, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/graphql", "raw_path": b"/graphql", "query_string": b"",
        "root_path": "", "server": ("testserver", 80), "client": ("127.0.0.1", 5000),
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100"),
                    (b"x-api-key", key.plain.encode())],
    }  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent[0]["status"] == 499
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_unknown_route_under_ext_uses_the_envelope(
    client: httpx.AsyncClient, key: Key
) -> None:
    response = await client.get(f"{BASE}/nothing-here", headers=key.headers)
    assert response.status_code == 404
    assert_envelope(response.json(), success=False)
