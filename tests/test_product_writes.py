"""The product writer under concurrency and the live product count it keeps."""

import asyncio

import httpx
import pytest
from sqlalchemy import func, select

from jobs.demo import ean13
from models import ProductCountDelta
from pim.runtime import Runtime
from resolvers import counts, products
from resolvers.product_writes import WriteItem, write_products
from tests.conftest import Key

BASE = "/api/v1/ext"


@pytest.mark.parametrize("others", [0, 60])  # alone, and in a batch written by COPY
async def test_two_writers_creating_the_same_ean_both_succeed(
    runtime: Runtime, key: Key, backend: str, others: int
) -> None:
    caller = key.caller("ext:products:write", "ext:products:read")
    if backend != "postgres":
        return  # SQLite serialises writers: the race cannot happen there
    async with runtime.db.transaction() as first:
        created = await write_products(
            first, caller, items=[WriteItem({"ean": ean13(1), "name": "Premier"})]
        )

        async def second_writer() -> list[str]:
            items = [WriteItem({"ean": ean13(n), "name": "Second"}) for n in range(1, others + 2)]
            async with runtime.db.transaction() as second:
                batch = await write_products(second, caller, items=items)
                return [result.status for result in batch.results]

        racing = asyncio.create_task(second_writer())
        await asyncio.sleep(0.2)  # the second writer now waits on the unique index
    assert created.results[0].status == "created"
    assert await asyncio.wait_for(racing, timeout=10) == ["updated"] + ["created"] * others
    async with runtime.db.transaction() as session:
        row = await products.get_product(session, caller, ean=ean13(1))
        assert row.product.name == "Second"
        assert await counts.live_products(session, key.account_id) == 1 + others


@pytest.mark.parametrize("size", [3, 80])  # a multi-row statement, and COPY
async def test_rows_of_one_batch_changing_different_fields_each_get_their_own(
    runtime: Runtime, key: Key, size: int
) -> None:
    """An update writes the columns that changed in any row of the batch: every row gets
    its own changes, and the fields it left as they were keep their values."""
    caller = key.caller("ext:products:write", "ext:products:read")
    eans = [ean13(5000 + n) for n in range(size)]
    async with runtime.db.transaction() as session:
        await write_products(session, caller, items=[
            WriteItem({"ean": e, "name": f"P{n}", "weight": 1.0, "price": 10.0, "color": "Noir"})
            for n, e in enumerate(eans)
        ])  # fmt: skip
    changes = [{"name": "Renommé"}, {"weight": 2.5}, {"price": 12.0, "color": None}]
    async with runtime.db.transaction() as session:
        batch = await write_products(session, caller, items=[
            WriteItem({"ean": e, **changes[n % 3], **({"price": 10.0} if n % 3 == 0 else {})})
            for n, e in enumerate(eans)
        ])  # fmt: skip
        assert [r.changed_fields for r in batch.results[:3]] == [["name"], ["weight"], ["price"]]
        found = [(await products.get_product(session, caller, ean=e)).product for e in eans[:3]]
    assert [(p.name, p.weight, p.price, p.color) for p in found] == [
        ("Renommé", 1.0, 10.0, "Noir"), ("P1", 2.5, 10.0, "Noir"), ("P2", 1.0, 12.0, "Noir"),
    ]  # fmt: skip


async def test_live_count_follows_creates_deletes_and_restores(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    items = [{"ean": ean13(n), "name": f"P{n}"} for n in range(1, 6)]
    await client.post(f"{BASE}/products/batch", json={"products": items}, headers=key.headers)
    caller = key.caller()
    async with runtime.db.transaction() as session:
        await products.delete_product(session, caller, ean=ean13(1))
        await products.delete_product(session, caller, ean=ean13(2))
    await client.post(
        f"{BASE}/products", json={"ean": ean13(1), "name": "De retour"}, headers=key.headers
    )
    await client.post(
        f"{BASE}/products", json={"ean": ean13(3), "name": "Déjà là"}, headers=key.headers
    )
    unfiltered = (await client.get(f"{BASE}/products", headers=key.headers)).json()["meta"]["total"]
    counted = (await client.get(f"{BASE}/products?supplier_code=", headers=key.headers)).json()[
        "meta"
    ]["total"]
    assert unfiltered == 4
    async with runtime.db.transaction() as session:
        page = await products.list_products(
            session, caller, filters=products.ProductFilter(search="P")
        )
    assert counted == unfiltered and page.total == 2  # P4 and P5


async def test_folding_the_count_keeps_it_exact(
    client: httpx.AsyncClient, key: Key, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(counts, "FOLD_EVERY", 2)
    for n in range(1, 8):
        await client.post(
            f"{BASE}/products", json={"ean": ean13(n), "name": f"P{n}"}, headers=key.headers
        )
    async with runtime.db.transaction() as session:
        for n in (2, 5):
            await products.delete_product(session, key.caller(), ean=ean13(n))
    async with runtime.db.transaction() as session:
        assert await counts.live_products(session, key.account_id) == 5
        rows = await session.scalar(
            select(func.count())
            .select_from(ProductCountDelta)
            .where(ProductCountDelta.account_id == key.account_id)
        )
    assert rows is not None and rows < 9  # folded, not one row per write


async def test_two_folds_at_once_neither_waits_and_the_count_stays_exact(
    key: Key, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two import chunks in flight fold at once; waiting for each other would deadlock."""
    if runtime.db.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    monkeypatch.setattr(counts, "FOLD_EVERY", 1)
    async with runtime.db.transaction() as session:
        await counts.add_live_products(session, key.account_id, 5)
    async with runtime.db.transaction() as first:
        await counts.add_live_products(first, key.account_id, 3)
        async with runtime.db.transaction() as second:
            await asyncio.wait_for(counts.add_live_products(second, key.account_id, 4), 5)
    async with runtime.db.transaction() as session:
        assert await counts.live_products(session, key.account_id) == 12


async def test_big_batches_write_every_field_like_small_ones(
    client: httpx.AsyncClient, key: Key
) -> None:
    """Past a few dozen rows PostgreSQL writes through COPY: same values either way."""
    specs = {"hdmi": 3, "vesa": [200, 400]}
    for size in (3, 80):
        items = [
            {"ean": ean13(1000 * size + n), "name": f"P{n}", "technical_specs": specs, "compatibility": ["TV", "PC"],
             "price": 19.99, "end_of_life_date": "2030-01-31", "dangerous_goods": False, "package_weight": 1200}
            for n in range(size)
        ]  # fmt: skip
        body = (
            await client.post(
                f"{BASE}/products/batch", json={"products": items}, headers=key.headers
            )
        ).json()
        assert body["data"]["created"] == size
        again = (
            await client.post(
                f"{BASE}/products/batch", json={"products": items}, headers=key.headers
            )
        ).json()
        assert again["data"]["updated"] == size
        query = '{ product(ean: "%s") { technicalSpecs compatibility price endOfLifeDate dangerousGoods packageWeight } }'
        from tests.conftest import gql

        product = (await gql(client, query % ean13(1000 * size + size - 1), key))["data"]["product"]
        assert product == {"technicalSpecs": specs, "compatibility": ["TV", "PC"], "price": 19.99,
                           "endOfLifeDate": "2030-01-31", "dangerousGoods": False, "packageWeight": 1200}  # fmt: skip
