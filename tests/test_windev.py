"""The WinDev API, route by route, against the examples of spec/windev-api.txt."""

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.demo import ean13
from models import Event, Product, ProductChange, ProductStock, SupplierProduct
from pim.ids import uuid7
from pim.runtime import Runtime
from resolvers import products, stock
from resolvers.products import ProductRecord
from tests.conftest import Key, MakeKey
from tests.query_count import count_queries

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
BASE = "/api/v1/windev"
EAN1, EAN2, EAN3 = "3760000000001", "3760000000002", "3760000000003"
SPEC_SYNC = [
    {
        "reference": "ART-001",
        "ean": EAN1,
        "name": "Support TV mural fixe",
        "brand": "KIMEX",
        "price_ht": 18.50,
        "price_ttc": 22.20,
        "stock": 42,
        "weight": 1.5,
    },
    {"reference": "ART-002", "name": "Câble HDMI 2m", "price_ht": 5.00, "stock": 150},
]
LIST_FIELDS = {
    "id",
    "ean",
    "reference",
    "name",
    "brand",
    "price_ht",
    "price_ttc",
    "stock",
    "is_active",
    "updated_at",
}


def assert_ok(response: httpx.Response, message: str | None = None) -> dict:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["code"] == 200
    if message is not None:
        assert body["message"] == message
    return body


def assert_error(response: httpx.Response, status: int, message: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body == {
        "success": False,
        "code": status,
        "message": body["message"],
        "data": None,
        "count": 0,
    }
    assert body["message"]
    if message is not None:
        assert body["message"] == message
    return body


async def sync(client: httpx.AsyncClient, key: Key, items: list[dict]) -> dict:
    response = await client.post(f"{BASE}/products/sync", json=items, headers=key.headers)
    return assert_ok(response)


async def events_of(runtime: Runtime, key: Key, type_: str) -> list[Event]:
    async with runtime.db.transaction() as session:
        rows = await session.scalars(
            select(Event)
            .where(Event.account_id == key.account_id, Event.type == type_)
            .order_by(Event.seq)
        )
        return list(rows)


async def product_row(runtime: Runtime, key: Key, ean: str) -> ProductRecord:
    """The product as every surface reads it: `updated_at` is its latest change."""
    async with runtime.db.read() as session:
        return (await products.get_product(session, key.caller(), ean=ean)).product


async def stamps_of(session: AsyncSession, key: Key) -> dict[uuid.UUID, datetime]:
    """The account's products' stamps (product_changes), by product."""
    rows = await session.execute(
        select(ProductChange.product_id, ProductChange.changed_at).where(
            ProductChange.account_id == key.account_id
        )
    )
    return dict(rows.all())


# --- status ---------------------------------------------------------------------------


async def test_status_is_public_and_lists_the_endpoints(client: httpx.AsyncClient) -> None:
    body = assert_ok(await client.get(f"{BASE}/status"), "WinDev API opérationnelle")
    assert body["count"] == 1
    data = body["data"]
    assert data["api"] == "ProductsManager WinDev API"
    assert data["version"] == "1.1"
    assert ISO_Z.match(data["timestamp"])
    assert data["endpoints"] == [
        "GET  /api/v1/windev/status",
        "GET  /api/v1/windev/products",
        "POST /api/v1/windev/products/sync",
        "GET  /api/v1/windev/products/since/{timestamp}",
        "PATCH /api/v1/windev/products/{ref}",
        "GET  /api/v1/windev/products/{ref}",
        "POST /api/v1/windev/stock/update",
        "POST /api/v1/windev/prices/update",
        "GET  /api/v1/windev/categories",
        "GET  /api/v1/windev/suppliers",
    ]


# --- sync -----------------------------------------------------------------------------


async def test_sync_creates_then_updates_matched_by_ean_then_reference(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    await sync(client, key, [{"reference": "OLD-REF", "ean": EAN1, "name": "Ancien nom"}])
    body = await sync(client, key, SPEC_SYNC)
    assert body["message"] == "Sync terminé : 1 créés, 1 mis à jour, 0 erreurs"
    assert body["count"] == 2
    first, second = body["data"]
    assert first["reference"] == "ART-001" and first["status"] == "updated"
    assert second["reference"] == "ART-002" and second["status"] == "created"
    assert all(set(item) == {"reference", "status", "id"} for item in body["data"])

    # ART-002 has no EAN: the next sync finds it by reference.
    again = await sync(client, key, [{"reference": "ART-002", "name": "Câble HDMI 2 m"}])
    assert again["data"] == [{"reference": "ART-002", "status": "updated", "id": second["id"]}]

    product = await product_row(runtime, key, EAN1)
    assert (product.cost_price, product.price, product.weight) == (18.5, 22.2, 1.5)
    assert product.reference == "ART-001"
    got = assert_ok(await client.get(f"{BASE}/products/{EAN1}", headers=key.headers))
    assert got["data"]["brand"] == "KIMEX"
    assert len(await events_of(runtime, key, "product.created")) == 2
    assert len(await events_of(runtime, key, "product.updated")) == 2


async def test_sync_items_fail_alone_with_errors(client: httpx.AsyncClient, key: Key) -> None:
    items = [
        {"reference": "OK-1", "name": "Bon produit", "stock": 3},
        {"reference": "BAD-1", "name": "Stock négatif", "stock": -1},
        {"name": "Sans référence", "ean": EAN2},
        {"reference": "BAD-2", "name": "EAN faux", "ean": "12AB"},
        "pas un objet",
        {"reference": "BAD-3", "name": "Prix", "price_ht": "abc"},
    ]
    body = await sync(client, key, items)
    assert body["message"] == "Sync terminé : 1 créés, 0 mis à jour, 5 erreurs"
    statuses = [(i["reference"], i["status"]) for i in body["data"]]
    assert statuses == [
        ("OK-1", "created"),
        ("BAD-1", "error"),
        (None, "error"),
        ("BAD-2", "error"),
        (None, "error"),
        ("BAD-3", "error"),
    ]
    assert body["data"][1]["errors"] == ["stock : doit être supérieur ou égal à 0"]
    assert body["data"][2]["errors"] == ["reference : champ obligatoire"]
    assert body["data"][5]["errors"] == ["price_ht : nombre attendu"]


async def test_sync_refuses_more_than_1000_items(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    items = [{"reference": f"R{n}", "name": f"P{n}"} for n in range(1001)]
    response = await client.post(f"{BASE}/products/sync", json=items, headers=key.headers)
    assert_error(response, 422, "1001 éléments : au plus 1000 par appel")
    listing = assert_ok(
        await client.get(f"{BASE}/products", params={"active_only": "false"}, headers=key.headers)
    )
    assert listing["total"] == 0
    body = await sync(client, key, items[:1000])
    assert body["message"] == "Sync terminé : 1000 créés, 0 mis à jour, 0 erreurs"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/products/sync", {"reference": "A", "name": "objet"}),
        ("/stock/update", {"ean": EAN1, "stock": 1}),
        ("/prices/update", {"ean": EAN1, "price_ttc": 1}),
    ],
)
async def test_batches_want_a_bare_array(
    client: httpx.AsyncClient, key: Key, path: str, body: dict
) -> None:
    response = await client.post(f"{BASE}{path}", json=body, headers=key.headers)
    assert_error(response, 422, "corps de la requête : tableau JSON attendu")


@pytest.mark.parametrize("path", ["/products/sync", "/stock/update", "/prices/update"])
async def test_malformed_json_is_422_in_the_envelope(
    client: httpx.AsyncClient, key: Key, path: str
) -> None:
    headers = {**key.headers, "Content-Type": "application/json"}
    response = await client.post(f"{BASE}{path}", content=b'[{"ean": ', headers=headers)
    body = assert_error(response, 422)
    assert body["message"].startswith("corps de la requête : JSON invalide")


# --- listing, since, get ----------------------------------------------------------------


async def test_list_pages_search_ean_and_active_only(client: httpx.AsyncClient, key: Key) -> None:
    items = [
        {"reference": f"012-{n:04d}", "ean": ean13(n), "name": f"Support {n}"} for n in range(1, 6)
    ]
    items.append({"reference": "CAB-1", "ean": ean13(99), "name": "Câble", "stock": 7})
    await sync(client, key, items)
    assert_ok(await client.post(f"{BASE}/products/012-0005/deactivate", headers=key.headers))

    body = assert_ok(
        await client.get(f"{BASE}/products", params={"page": 1, "limit": 2}, headers=key.headers),
        "5 produits trouvés",
    )
    assert (body["count"], body["page"], body["pages"], body["total"]) == (2, 1, 3, 5)
    assert set(body["data"][0]) == LIST_FIELDS
    assert body["data"][0]["stock"] == 0 and body["data"][0]["price_ht"] is None
    last = assert_ok(
        await client.get(f"{BASE}/products", params={"page": 3, "limit": 2}, headers=key.headers)
    )
    assert last["count"] == 1 and last["page"] == 3

    everything = assert_ok(
        await client.get(f"{BASE}/products", params={"active_only": "false"}, headers=key.headers),
        "6 produits trouvés",
    )
    assert everything["total"] == 6
    by_ref = assert_ok(
        await client.get(f"{BASE}/products", params={"search": "cab-"}, headers=key.headers)
    )
    assert [p["reference"] for p in by_ref["data"]] == ["CAB-1"]
    assert by_ref["data"][0]["stock"] == 7
    by_name = assert_ok(
        await client.get(f"{BASE}/products", params={"search": "support"}, headers=key.headers)
    )
    assert by_name["total"] == 4
    by_ean = assert_ok(
        await client.get(f"{BASE}/products", params={"ean": ean13(2)}, headers=key.headers),
        "1 produits trouvés",
    )
    assert by_ean["data"][0]["reference"] == "012-0002"


@pytest.mark.parametrize(
    "params",
    [{"limit": 501}, {"limit": 0}, {"page": 0}, {"page": "abc"}, {"active_only": "peut-être"}],
)
async def test_list_rejects_bad_paging(client: httpx.AsyncClient, key: Key, params: dict) -> None:
    response = await client.get(f"{BASE}/products", params=params, headers=key.headers)
    assert_error(response, 422)


async def test_since_returns_changes_oldest_first(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    before = int((datetime.now(UTC) - timedelta(seconds=5)).timestamp())
    await sync(
        client,
        key,
        [{"reference": f"S-{n}", "ean": ean13(n), "name": f"P{n}"} for n in range(1, 4)],
    )
    await sync(client, key, [{"reference": "S-1", "ean": ean13(1), "name": "P1 modifié"}])
    body = assert_ok(
        await client.get(
            f"{BASE}/products/since/{before}", params={"limit": 2}, headers=key.headers
        ),
        "3 produits trouvés",
    )
    assert (body["count"], body["pages"], body["total"]) == (2, 2, 3)
    page2 = assert_ok(
        await client.get(
            f"{BASE}/products/since/{before}", params={"page": 2, "limit": 2}, headers=key.headers
        )
    )
    order = [p["reference"] for p in body["data"] + page2["data"]]
    assert order == ["S-2", "S-3", "S-1"]
    future = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
    empty = assert_ok(await client.get(f"{BASE}/products/since/{future}", headers=key.headers))
    assert empty["total"] == 0 and empty["data"] == []
    for bad in ("hier", "-5", "99999999999999999"):
        response = await client.get(f"{BASE}/products/since/{bad}", headers=key.headers)
        assert_error(response, 422)


async def test_get_by_reference_then_ean_and_404(client: httpx.AsyncClient, key: Key) -> None:
    await sync(client, key, SPEC_SYNC)
    by_ref = assert_ok(
        await client.get(f"{BASE}/products/ART-001", headers=key.headers), "Produit trouvé"
    )
    assert set(by_ref["data"]) == {
        "id",
        "ean",
        "reference",
        "name",
        "brand",
        "is_active",
        "updated_at",
    }
    assert by_ref["data"]["ean"] == EAN1 and by_ref["count"] == 1
    by_ean = assert_ok(await client.get(f"{BASE}/products/{EAN1}", headers=key.headers))
    assert by_ean["data"] == by_ref["data"]
    response = await client.get(f"{BASE}/products/REF-001", headers=key.headers)
    assert_error(response, 404, "Produit introuvable pour la référence : REF-001")


# --- patch, activate, deactivate --------------------------------------------------------


async def test_patch_updates_the_given_fields_and_emits_product_updated(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    await sync(client, key, SPEC_SYNC)
    body = {
        "price_ht": 19.99,
        "stock": 38,
        "is_active": True,
        "warranty_duration": 24,
        "ce_marked": True,
    }
    response = await client.patch(f"{BASE}/products/ART-001", json=body, headers=key.headers)
    data = assert_ok(response, "Produit mis à jour")["data"]
    assert set(data) == {"id", "ean", "name", "is_active", "updated_at"}
    assert data["ean"] == EAN1 and data["is_active"] is True
    product = await product_row(runtime, key, EAN1)
    assert (product.cost_price, product.price) == (19.99, 22.2)
    assert (product.warranty_duration, product.ce_marked) == (24, True)
    listed = assert_ok(
        await client.get(f"{BASE}/products", params={"ean": EAN1}, headers=key.headers)
    )
    assert listed["data"][0]["stock"] == 38
    updated = await events_of(runtime, key, "product.updated")
    assert sorted(updated[-1].payload["changed"]) == [
        "ce_marked",
        "cost_price",
        "stock",
        "warranty_duration",
    ]

    extended = {
        "brand": "Vogel's",
        "price_ttc": 24.0,
        "tax_rate": 20,
        "supplier_code": "KIMEX",
        "color": "noir",
        "technical_specs": {"vesa": "200x200"},
        "category": "Supports",
        "country_of_origin": "fr",
        "end_of_life_date": "2030-01-31",
    }
    response = await client.patch(f"{BASE}/products/{EAN1}", json=extended, headers=key.headers)
    assert_ok(response)
    product = await product_row(runtime, key, EAN1)
    assert (product.price, product.tax_rate, product.supplier_code) == (24.0, 20.0, "KIMEX")
    assert (product.category_name, product.country_of_origin) == ("Supports", "FR")
    assert product.technical_specs == {"vesa": "200x200"}


async def test_unchanged_patch_bumps_nothing_and_emits_nothing(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    await sync(client, key, SPEC_SYNC)
    before = await product_row(runtime, key, EAN1)
    count = len(await events_of(runtime, key, "product.updated"))
    response = await client.patch(
        f"{BASE}/products/ART-001",
        json={"price_ht": 18.5, "name": SPEC_SYNC[0]["name"]},
        headers=key.headers,
    )
    assert_ok(response, "Produit mis à jour")
    assert (await product_row(runtime, key, EAN1)).updated_at == before.updated_at
    assert len(await events_of(runtime, key, "product.updated")) == count


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"stock": -3}, "stock : doit être supérieur ou égal à 0"),
        ({"price_ttc": "cher"}, "price_ttc : nombre attendu"),
        ({"tax_rate": 150}, "tax_rate : doit être inférieur ou égal à 100"),
        ({"warranty_duration": "deux ans"}, "warranty_duration : entier attendu"),
    ],
)
async def test_patch_validation_errors_are_422(
    client: httpx.AsyncClient, key: Key, runtime: Runtime, body: dict, message: str
) -> None:
    await sync(client, key, SPEC_SYNC)
    before = await product_row(runtime, key, EAN1)
    response = await client.patch(f"{BASE}/products/ART-001", json=body, headers=key.headers)
    assert_error(response, 422, message)
    assert (await product_row(runtime, key, EAN1)).updated_at == before.updated_at


async def test_patch_wants_an_object_and_a_known_product(
    client: httpx.AsyncClient, key: Key
) -> None:
    await sync(client, key, SPEC_SYNC)
    response = await client.patch(f"{BASE}/products/ART-001", json=[1], headers=key.headers)
    assert_error(response, 422, "corps de la requête : objet JSON attendu")
    response = await client.patch(f"{BASE}/products/NOPE", json={"stock": 1}, headers=key.headers)
    assert_error(response, 404, "Produit introuvable pour la référence : NOPE")


async def test_activate_and_deactivate(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    created = await sync(client, key, SPEC_SYNC)
    product_id = created["data"][0]["id"]
    response = await client.post(f"{BASE}/products/ART-001/deactivate", headers=key.headers)
    body = assert_ok(response, "Produit désactivé")
    assert body["data"] == {"id": product_id, "is_active": False, "status": "inactive"}
    assert body["count"] == 1
    response = await client.post(f"{BASE}/products/{EAN1}/activate", headers=key.headers)
    body = assert_ok(response, "Produit activé")
    assert body["data"] == {"id": product_id, "is_active": True, "status": "active"}
    count = len(await events_of(runtime, key, "product.updated"))
    assert count == 2
    again = await client.post(f"{BASE}/products/ART-001/activate", headers=key.headers)
    assert_ok(again, "Produit activé")
    assert len(await events_of(runtime, key, "product.updated")) == count
    missing = await client.post(f"{BASE}/products/NOPE/activate", headers=key.headers)
    assert_error(missing, 404, "Produit introuvable pour la référence : NOPE")


# --- stock ----------------------------------------------------------------------------


async def test_stock_update_spec_example(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    await sync(
        client,
        key,
        [
            {"reference": "A1", "ean": EAN1, "name": "Un"},
            {"reference": "A3", "ean": EAN3, "name": "Trois"},
        ],
    )
    before = await product_row(runtime, key, EAN1)
    items = [
        {"ean": EAN1, "stock": 42, "supplier_code": "KIMEX"},
        {"ean": EAN2, "stock": 0},
        {"ean": EAN3, "stock": 15, "supplier_code": "KIMEX"},
    ]
    response = await client.post(f"{BASE}/stock/update", json=items, headers=key.headers)
    body = assert_ok(response, "Stocks : 2 mis à jour, 1 introuvables, 0 erreurs")
    assert body["count"] == 3
    assert body["data"] == [
        {"ean": EAN1, "updated": True, "status": "ok"},
        {"ean": EAN2, "updated": False, "status": "not_found"},
        {"ean": EAN3, "updated": True, "status": "ok"},
    ]
    async with runtime.db.transaction() as session:
        offers = (
            await session.execute(
                select(SupplierProduct.stock).where(SupplierProduct.account_id == key.account_id)
            )
        ).scalars()
        assert sorted(offers) == [15, 42]
        generic = await session.scalar(
            select(ProductStock.quantity).where(ProductStock.account_id == key.account_id)
        )
        assert generic is None
    after = await product_row(runtime, key, EAN1)
    assert after.updated_at > before.updated_at
    suppliers = assert_ok(await client.get(f"{BASE}/suppliers", headers=key.headers))
    assert [s["code"] for s in suppliers["data"]] == ["KIMEX"]
    (event,) = await events_of(runtime, key, "stock.updated")
    assert event.payload == {"count": 2, "eans": [EAN1, EAN3]}

    # The same values again: nothing moves, nothing is emitted.
    response = await client.post(f"{BASE}/stock/update", json=items, headers=key.headers)
    assert_ok(response, "Stocks : 2 mis à jour, 1 introuvables, 0 erreurs")
    assert (await product_row(runtime, key, EAN1)).updated_at == after.updated_at
    assert len(await events_of(runtime, key, "stock.updated")) == 1


async def test_generic_stock_shows_in_listing_and_since(
    client: httpx.AsyncClient, key: Key
) -> None:
    await sync(client, key, [{"reference": "A1", "ean": EAN1, "name": "Un"}])
    since = int(datetime.now(UTC).timestamp()) - 1
    response = await client.post(
        f"{BASE}/stock/update", json=[{"ean": EAN1, "stock": 9}], headers=key.headers
    )
    assert_ok(response, "Stocks : 1 mis à jour, 0 introuvables, 0 erreurs")
    body = assert_ok(await client.get(f"{BASE}/products/since/{since}", headers=key.headers))
    assert [(p["ean"], p["stock"]) for p in body["data"]] == [(EAN1, 9)]


async def test_stock_items_fail_alone(client: httpx.AsyncClient, key: Key) -> None:
    await sync(client, key, [{"reference": "A1", "ean": EAN1, "name": "Un"}])
    items = [
        {"ean": EAN1, "stock": -1},
        {"ean": EAN1, "stock": "beaucoup"},
        {"ean": "123", "stock": 1},
        {"stock": 1},
        42,
        {"ean": EAN1, "stock": 5},
        {"ean": EAN1, "stock": 6},
    ]
    response = await client.post(f"{BASE}/stock/update", json=items, headers=key.headers)
    body = assert_ok(response, "Stocks : 1 mis à jour, 0 introuvables, 6 erreurs")
    assert [i["status"] for i in body["data"]] == ["error"] * 5 + ["ok", "error"]
    assert body["data"][0]["errors"] == ["stock : doit être supérieur ou égal à 0"]
    assert body["data"][1]["errors"] == ["stock : entier attendu"]
    assert body["data"][3]["errors"] == ["ean : champ obligatoire"]
    assert body["data"][6]["errors"][0].startswith("ean : en double dans le lot")
    assert all(i["updated"] is False for i in body["data"] if i["status"] == "error")


async def test_stock_and_price_batches_refuse_more_than_5000(
    client: httpx.AsyncClient, key: Key
) -> None:
    too_many = [{"ean": ean13(n), "stock": 1, "price_ttc": 1} for n in range(5001)]
    for path in ("/stock/update", "/prices/update"):
        response = await client.post(f"{BASE}{path}", json=too_many, headers=key.headers)
        assert_error(response, 422, "5001 éléments : au plus 5000 par appel")


async def test_5000_stock_updates_are_a_handful_of_statements(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    for first in range(0, 5000, 1000):
        await sync(
            client,
            key,
            [
                {"reference": f"R{n}", "ean": ean13(n), "name": f"P{n}"}
                for n in range(first, first + 1000)
            ],
        )
    items = [
        {"ean": ean13(n), "stock": n % 7, **({"supplier_code": "KIMEX"} if n % 2 else {})}
        for n in range(5000)
    ]
    # The first batch naming KIMEX creates it (two statements more); then 200 items
    # already take the set-based path big batches take (see pim.sql.bulk_upsert).
    await client.post(f"{BASE}/stock/update", json=items[:200], headers=key.headers)
    with count_queries(runtime) as small:
        response = await client.post(
            f"{BASE}/stock/update", json=items[200:400], headers=key.headers
        )
    assert_ok(response, "Stocks : 200 mis à jour, 0 introuvables, 0 erreurs")
    with count_queries(runtime) as large:
        response = await client.post(f"{BASE}/stock/update", json=items, headers=key.headers)
    assert_ok(response, "Stocks : 5000 mis à jour, 0 introuvables, 0 erreurs")
    with count_queries(runtime) as prices:
        response = await client.post(
            f"{BASE}/prices/update",
            json=[{"ean": ean13(n), "price_ttc": 10 + n % 5} for n in range(5000)],
            headers=key.headers,
        )
    assert_ok(response, "Prix : 5000 mis à jour, 0 introuvables, 0 erreurs")
    assert len(large) == len(small) <= 18, large
    assert len(prices) <= 10, prices


async def test_a_product_written_twice_in_a_big_batch_is_stamped_once(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    # 60 products, each with two supplier records and its generic one: enough rows for
    # the set-based statement, whose stamps come from the rows it writes.
    await sync(
        client, key, [{"reference": f"R{n}", "ean": ean13(n), "name": "P"} for n in range(60)]
    )
    before = await product_row(runtime, key, ean13(0))
    items = [
        {"ean": ean13(n), "stock": 5, **({"supplier_code": code} if code else {})}
        for code in ("KIMEX", "ACME", None)
        for n in range(60)
    ]
    response = await client.post(f"{BASE}/stock/update", json=items, headers=key.headers)
    assert_ok(response, "Stocks : 180 mis à jour, 0 introuvables, 0 erreurs")
    async with runtime.db.read() as session:
        stamped = await stamps_of(session, key)
        assert len(set(stamped.values())) == 60
        # The generic records' times (from their positions, in SQL) and the supplier
        # records' are each their product's one stamp.
        for table in (ProductStock, SupplierProduct):
            records = await session.execute(
                select(table.product_id, table.updated_at).where(table.account_id == key.account_id)
            )
            assert all(stamped[product_id] == at for product_id, at in records)
    assert (await product_row(runtime, key, ean13(0))).updated_at > before.updated_at


async def test_a_big_batch_moves_the_stamps_it_finds_and_adds_the_others(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    # Half the products stamped by a first batch: the next big batches (set-based, one
    # statement) move those stamps and insert the others'.
    await sync(
        client, key, [{"reference": f"R{n}", "ean": ean13(n), "name": "P"} for n in range(120)]
    )
    halves = [{"ean": ean13(n), "price_ttc": 5} for n in range(0, 120, 2)]
    response = await client.post(f"{BASE}/prices/update", json=halves, headers=key.headers)
    assert_ok(response, "Prix : 60 mis à jour, 0 introuvables, 0 erreurs")
    for path, label, value in (
        ("stock/update", "Stocks", {"stock": 3}),
        ("prices/update", "Prix", {"price_ttc": 6}),
    ):
        before = await product_row(runtime, key, ean13(0))
        response = await client.post(
            f"{BASE}/{path}",
            json=[{"ean": ean13(n), **value} for n in range(120)],
            headers=key.headers,
        )
        assert_ok(response, f"{label} : 120 mis à jour, 0 introuvables, 0 erreurs")
        async with runtime.db.read() as session:
            stamped = (
                await session.scalars(
                    select(ProductChange.changed_at).where(
                        ProductChange.account_id == key.account_id
                    )
                )
            ).all()
        assert len(stamped) == len(set(stamped)) == 120
        assert min(stamped) > before.updated_at


async def test_records_gone_or_replaced_since_the_lookup_are_still_written(
    client: httpx.AsyncClient, key: Key, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Big batches (one set-based statement) update the records their lookup found by
    # id: one deleted meanwhile is inserted again, one another writer replaced is
    # updated, neither is skipped.
    await sync(
        client,
        key,
        [{"reference": f"R{n}", "ean": ean13(n), "name": "P", "stock": 1} for n in range(60)],
    )
    first = [{"ean": ean13(n), "stock": 2, "supplier_code": "KIMEX"} for n in range(60)]
    response = await client.post(f"{BASE}/stock/update", json=first, headers=key.headers)
    assert_ok(response, "Stocks : 60 mis à jour, 0 introuvables, 0 erreurs")
    async with runtime.db.read() as session:
        product_ids = {
            ean: pid
            for ean, pid in (
                await session.execute(
                    select(Product.ean, Product.id).where(Product.account_id == key.account_id)
                )
            ).all()
        }
    gone, replaced, gone_supplier = (product_ids[ean13(n)] for n in (1, 2, 3))
    replacement = uuid7()
    looked_up = stock.write_timestamp

    async def meanwhile(session: AsyncSession) -> datetime:
        # Between the batch's lookup and its write.
        await session.execute(
            delete(ProductStock).where(ProductStock.product_id.in_([gone, replaced]))
        )
        await session.execute(
            delete(SupplierProduct).where(SupplierProduct.product_id == gone_supplier)
        )
        session.add(
            ProductStock(id=replacement, account_id=key.account_id, product_id=replaced, quantity=9)
        )
        await session.flush()
        return await looked_up(session)

    monkeypatch.setattr(stock, "write_timestamp", meanwhile)
    items = [
        {"ean": ean13(n), "stock": 5, **({"supplier_code": code} if code else {})}
        for code in (None, "KIMEX")
        for n in range(60)
    ]
    response = await client.post(f"{BASE}/stock/update", json=items, headers=key.headers)
    assert_ok(response, "Stocks : 120 mis à jour, 0 introuvables, 0 erreurs")
    async with runtime.db.read() as session:
        stamped = await stamps_of(session, key)
        generic = {
            pid: (record_id, quantity, at)
            for pid, record_id, quantity, at in (
                await session.execute(
                    select(
                        ProductStock.product_id,
                        ProductStock.id,
                        ProductStock.quantity,
                        ProductStock.updated_at,
                    ).where(ProductStock.account_id == key.account_id)
                )
            ).all()
        }
        supplier = (
            await session.execute(
                select(
                    SupplierProduct.product_id,
                    SupplierProduct.stock,
                    SupplierProduct.updated_at,
                ).where(SupplierProduct.account_id == key.account_id)
            )
        ).all()
    assert len(stamped) == len(set(stamped.values())) == 60
    assert set(generic) == set(product_ids.values())
    assert generic[replaced][0] == replacement
    assert all(q == 5 and stamped[pid] == at for pid, (_, q, at) in generic.items())
    assert sorted(pid for pid, _, _ in supplier) == sorted(product_ids.values())
    assert all(q == 5 and stamped[pid] == at for pid, q, at in supplier)


# --- prices ---------------------------------------------------------------------------


async def test_price_update_spec_example(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    await sync(
        client,
        key,
        [
            {"reference": "A1", "ean": EAN1, "name": "Un"},
            {"reference": "A2", "ean": EAN2, "name": "Deux", "price_ht": 4},
        ],
    )
    items = [{"ean": EAN1, "price_ht": 18.50, "price_ttc": 22.20}, {"ean": EAN2, "price_ttc": 9.99}]
    response = await client.post(f"{BASE}/prices/update", json=items, headers=key.headers)
    body = assert_ok(response, "Prix : 2 mis à jour, 0 introuvables, 0 erreurs")
    assert body["data"] == [
        {"ean": EAN1, "updated": True, "status": "ok"},
        {"ean": EAN2, "updated": True, "status": "ok"},
    ]
    one, two = await product_row(runtime, key, EAN1), await product_row(runtime, key, EAN2)
    assert (one.price, one.cost_price) == (22.2, 18.5)
    assert (two.price, two.cost_price) == (9.99, 4.0)
    (event,) = await events_of(runtime, key, "price.updated")
    assert event.payload == {"count": 2, "eans": [EAN1, EAN2]}
    listed = assert_ok(
        await client.get(f"{BASE}/products", params={"ean": EAN1}, headers=key.headers)
    )
    assert (listed["data"][0]["price_ht"], listed["data"][0]["price_ttc"]) == (18.5, 22.2)

    response = await client.post(f"{BASE}/prices/update", json=items, headers=key.headers)
    assert_ok(response, "Prix : 2 mis à jour, 0 introuvables, 0 erreurs")
    assert (await product_row(runtime, key, EAN1)).updated_at == one.updated_at
    assert len(await events_of(runtime, key, "price.updated")) == 1


async def test_price_items_fail_alone(client: httpx.AsyncClient, key: Key) -> None:
    await sync(client, key, [{"reference": "A1", "ean": EAN1, "name": "Un"}])
    items = [
        {"ean": EAN1},
        {"ean": EAN1, "price_ttc": -1},
        {"ean": EAN1, "price_ht": "gratuit"},
        {"ean": EAN2, "price_ttc": 3},
        {"ean": EAN1, "price_ttc": 3},
    ]
    response = await client.post(f"{BASE}/prices/update", json=items, headers=key.headers)
    body = assert_ok(response, "Prix : 1 mis à jour, 1 introuvables, 3 erreurs")
    assert body["data"][0]["errors"] == ["au moins un prix est requis (vente ou achat)"]
    assert body["data"][1]["errors"] == ["price_ttc : doit être supérieur ou égal à 0"]
    assert body["data"][2]["errors"] == ["price_ht : nombre attendu"]
    assert body["data"][3] == {"ean": EAN2, "updated": False, "status": "not_found"}


# --- categories, suppliers ------------------------------------------------------------


async def test_categories_flat_tree_and_active_suppliers(
    client: httpx.AsyncClient, key: Key
) -> None:
    create = """mutation($input: CategoryInput!) { createCategory(input: $input) {
        category { id } errors { message } } }"""
    supplier = """mutation($input: SupplierInput!) { createSupplier(input: $input) {
        supplier { id } errors { message } } }"""
    from tests.conftest import gql

    root = await gql(client, create, key, input={"name": "Supports TV", "sortOrder": 1})
    root_id = root["data"]["createCategory"]["category"]["id"]
    await gql(
        client, create, key, input={"name": "Supports muraux", "parentId": root_id, "sortOrder": 1}
    )
    await gql(client, create, key, input={"name": "Câbles", "sortOrder": 0})
    for code, name, active in (
        ("KIMEX", "KIMEX International", True),
        ("ALSO", "ALSO France", True),
        ("OLD", "Ancien", False),
    ):
        await gql(
            client,
            supplier,
            key,
            input={"code": code, "name": name, "country": "FR", "isActive": active},
        )

    body = assert_ok(await client.get(f"{BASE}/categories", headers=key.headers), "3 catégories")
    assert body["count"] == 3
    assert [(c["name"], c["level"], c["sort_order"]) for c in body["data"]] == [
        ("Câbles", 0, 0),
        ("Supports TV", 0, 1),
        ("Supports muraux", 1, 1),
    ]
    assert body["data"][2] | {"id": "x"} == {
        "id": "x",
        "name": "Supports muraux",
        "slug": "supports-muraux",
        "parent_id": root_id,
        "level": 1,
        "sort_order": 1,
    }

    body = assert_ok(await client.get(f"{BASE}/suppliers", headers=key.headers), "2 fournisseurs")
    assert [s["code"] for s in body["data"]] == ["ALSO", "KIMEX"]
    assert set(body["data"][0]) == {"id", "name", "code", "is_active", "country"}
    assert body["data"][1]["name"] == "KIMEX International" and body["data"][1]["country"] == "FR"


# --- auth, scopes, isolation, routing -------------------------------------------------

ROUTES = [
    ("GET", "/products", None, "windev:read"),
    ("GET", "/products/since/1750291200", None, "windev:read"),
    ("GET", "/products/ART-001", None, "windev:read"),
    ("GET", "/categories", None, "windev:read"),
    ("GET", "/suppliers", None, "windev:read"),
    ("PATCH", "/products/ART-001", {"stock": 1}, "windev:write"),
    ("POST", "/products/ART-001/activate", None, "windev:write"),
    ("POST", "/products/ART-001/deactivate", None, "windev:write"),
    ("POST", "/stock/update", [{"ean": EAN1, "stock": 1}], "windev:write"),
    ("POST", "/prices/update", [{"ean": EAN1, "price_ttc": 1}], "windev:write"),
    ("POST", "/products/sync", [{"reference": "ART-001", "name": "X"}], "windev:sync"),
]
WINDEV_SCOPES = ["windev:read", "windev:write", "windev:sync"]


@pytest.mark.parametrize(("method", "path", "body", "scope"), ROUTES)
async def test_scope_matrix(
    client: httpx.AsyncClient,
    make_key: MakeKey,
    method: str,
    path: str,
    body: object,
    scope: str,
) -> None:
    account = f"acct-matrix-{path.replace('/', '-')}-{method}"
    owner = await make_key(account=account)
    await sync(client, owner, [{"reference": "ART-001", "ean": EAN1, "name": "Support"}])
    for held in [*WINDEV_SCOPES, "ext:products:read", "products:write"]:
        caller = await make_key([held], account=account)
        response = await client.request(method, f"{BASE}{path}", json=body, headers=caller.headers)
        if held == scope:
            assert response.status_code == 200, (held, response.text)
        else:
            assert_error(response, 403, f"Portée requise manquante : {scope}.")
    for headers in ({}, {"X-API-Key": "pm_live_nope"}):
        response = await client.request(method, f"{BASE}{path}", json=body, headers=headers)
        assert_error(response, 401, "Clé API manquante ou invalide.")


async def test_accounts_cannot_see_or_touch_each_other(
    client: httpx.AsyncClient, make_key: MakeKey, runtime: Runtime
) -> None:
    mine, theirs = await make_key(), await make_key()
    await sync(client, theirs, SPEC_SYNC)
    await client.post(
        f"{BASE}/stock/update",
        json=[{"ean": EAN1, "stock": 3, "supplier_code": "KIMEX"}],
        headers=theirs.headers,
    )
    assert_ok(await client.get(f"{BASE}/suppliers", headers=mine.headers), "0 fournisseurs")
    assert_ok(await client.get(f"{BASE}/categories", headers=mine.headers), "0 catégories")
    listing = assert_ok(await client.get(f"{BASE}/products", headers=mine.headers))
    assert listing["total"] == 0 and listing["data"] == []
    assert_error(await client.get(f"{BASE}/products/ART-001", headers=mine.headers), 404)
    assert_error(
        await client.patch(f"{BASE}/products/ART-001", json={"stock": 1}, headers=mine.headers),
        404,
    )
    assert_error(
        await client.post(f"{BASE}/products/ART-001/deactivate", headers=mine.headers), 404
    )
    response = await client.post(
        f"{BASE}/stock/update", json=[{"ean": EAN1, "stock": 1}], headers=mine.headers
    )
    assert response.json()["data"][0]["status"] == "not_found"
    response = await client.post(
        f"{BASE}/prices/update", json=[{"ean": EAN1, "price_ttc": 1}], headers=mine.headers
    )
    assert response.json()["data"][0]["status"] == "not_found"
    # My sync of the same reference and EAN creates my own product.
    body = await sync(client, mine, SPEC_SYNC[:1])
    assert body["data"][0]["status"] == "created"
    theirs_row = await product_row(runtime, theirs, EAN1)
    assert theirs_row.price == 22.2 and body["data"][0]["id"] != str(theirs_row.id)


async def test_unknown_routes_and_methods_use_the_envelope(
    client: httpx.AsyncClient, key: Key
) -> None:
    assert_error(await client.get(f"{BASE}/nope", headers=key.headers), 404, "Route introuvable.")
    assert_error(await client.delete(f"{BASE}/stock/update", headers=key.headers), 405)


# --- the same operations through GraphQL ----------------------------------------------

UPDATE_STOCK = """mutation($items: [StockUpdateInput!]!) { updateStock(items: $items) {
    updated notFound failed changed
    results { index ean status updated changed errors { field message code } }
    errors { message code } } }"""
UPDATE_PRICES = """mutation($items: [PriceUpdateInput!]!) { updatePrices(items: $items) {
    updated notFound failed changed results { ean status errors { field code } }
    errors { message code } } }"""
SET_ACTIVE = """mutation($ref: String!) {
    off: deactivateProduct(ref: $ref) { product { isActive status } errors { message } }
    on: activateProduct(ref: $ref) { product { isActive status } errors { message } } }"""


async def test_graphql_stock_prices_and_activation(
    client: httpx.AsyncClient, key: Key, make_key: MakeKey, runtime: Runtime
) -> None:
    from tests.conftest import gql

    await sync(client, key, [{"reference": "A1", "ean": EAN1, "name": "Un"}])
    items = [
        {"ean": EAN1, "stock": 4, "supplierCode": "KIMEX"},
        {"ean": EAN1, "stock": 2},
        {"ean": EAN2, "stock": 1},
        {"ean": EAN1, "stock": -1},
    ]
    body = (await gql(client, UPDATE_STOCK, key, items=items))["data"]["updateStock"]
    assert (body["updated"], body["notFound"], body["failed"], body["changed"]) == (2, 1, 1, 2)
    assert [r["status"] for r in body["results"]] == ["OK", "OK", "NOT_FOUND", "ERROR"]
    assert body["results"][3]["errors"] == [
        {"field": "stock", "message": "doit être supérieur ou égal à 0", "code": "INVALID"}
    ]
    again = (await gql(client, UPDATE_STOCK, key, items=items[:2]))["data"]["updateStock"]
    assert (again["updated"], again["changed"]) == (2, 0)

    prices = [{"ean": EAN1, "price": 19.9}, {"ean": EAN1, "costPrice": 1}, {"ean": EAN3}]
    body = (await gql(client, UPDATE_PRICES, key, items=prices))["data"]["updatePrices"]
    assert (body["updated"], body["failed"]) == (1, 2)
    assert body["results"][1]["errors"] == [{"field": "ean", "code": "DUPLICATE"}]
    assert (await product_row(runtime, key, EAN1)).price == 19.9

    too_many = [{"ean": ean13(n), "stock": 1} for n in range(5001)]
    body = (await gql(client, UPDATE_STOCK, key, items=too_many))["data"]["updateStock"]
    assert body["results"] == [] and body["errors"][0]["code"] == "TOO_MANY"

    toggled = (await gql(client, SET_ACTIVE, key, ref="A1"))["data"]
    assert toggled["off"]["product"] == {"isActive": False, "status": "INACTIVE"}
    assert toggled["on"]["product"] == {"isActive": True, "status": "ACTIVE"}
    missing = (await gql(client, SET_ACTIVE, key, ref="NOPE"))["data"]["off"]
    assert missing["errors"][0]["message"] == "Produit introuvable pour la référence : NOPE"

    reader = await make_key(["windev:read"], account=key.account)
    refused = await gql(client, UPDATE_STOCK, reader, items=items[:1])
    assert refused["data"] is None
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
