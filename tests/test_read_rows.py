"""Listings and batch lookups read on the driver's connection (pim.db.read_rows) give
what Core gives, and a unit that has begun reads through its own connection."""

import httpx
from sqlalchemy import func, select, update

from jobs.demo import ean13
from models import Product
from pim import db
from pim.db import fetch, read_rows
from pim.runtime import Runtime
from resolvers import batches, prices, products, stock
from rest_compat.ext import PRODUCT_COLUMNS
from tests.conftest import Key


async def _create(client: httpx.AsyncClient, key: Key) -> None:
    items = [
        {"ean": ean13(1), "name": "Prix", "price": 12.5, "weight": 0.25, "stock": 3},
        {"ean": ean13(2), "name": "Sans prix", "supplier_code": "S1"},
    ]
    response = await client.post(
        "/api/v1/ext/products/batch", json={"products": items}, headers=key.headers
    )
    assert response.json()["data"]["created"] == 2, response.text


async def test_driver_rows_are_cores_rows(
    runtime: Runtime, client: httpx.AsyncClient, key: Key
) -> None:
    await _create(client, key)
    params = {"account_id": key.account_id, "limit": 10, "offset": 0}
    # Every column (price is NUMERIC, read as a float: Core converts it) and the
    # External API's columns (none converted).
    for columns in (None, tuple(dict.fromkeys(("id", "created_at", *PRODUCT_COLUMNS)))):
        shape = products._ListShape((), None, products.ProductSort(), False, False, columns)
        statement = products._listing(shape)
        for _ in range(2):  # the first use asks for the columns' types, the next does not
            async with runtime.db.read() as session:
                read = [dict(r.items()) for r in await read_rows(session, statement, params)]
            async with runtime.db.read() as session:
                core = [dict(r._mapping) for r in await fetch(session, statement, params)]
            assert read == core
            assert [{k: type(v) for k, v in r.items()} for r in read] == [
                {k: type(v) for k, v in r.items()} for r in core
            ]
        assert len(read) == 2
        assert (columns is None) == ("price" in read[0])
        if runtime.db.dialect == "postgresql":
            # The External API's listing is read by the driver alone, every column not.
            rendered = db._rendered(statement, runtime.db.engine.dialect)
            assert rendered is not None
            assert db._AS_READ[rendered.sql] is (columns is not None)


async def test_a_begun_unit_reads_what_it_wrote(
    runtime: Runtime, client: httpx.AsyncClient, key: Key
) -> None:
    await _create(client, key)
    caller = key.caller()
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Product)
            .where(Product.account_id == key.account_id, Product.ean == ean13(2))
            .values(name="Renommé")
        )
        page = await products.list_products(session, caller, columns=PRODUCT_COLUMNS)
        assert {r.product.name for r in page.rows} == {"Prix", "Renommé"}
        await session.rollback()
    async with runtime.db.read() as session:
        page = await products.list_products(session, caller, columns=PRODUCT_COLUMNS)
    assert {r.product.name for r in page.rows} == {"Prix", "Sans prix"}
    assert page.total == 2


async def test_a_batch_lookup_in_a_write_unit_reads_what_core_reads(
    runtime: Runtime, client: httpx.AsyncClient, key: Key
) -> None:
    await _create(client, key)
    params = {"account_id": key.account_id, "eans": [ean13(1), ean13(2), ean13(3)]}
    postgres = runtime.db.dialect == "postgresql"
    # Prices (NUMERIC, read as floats, one of them NULL); generic stock (one product has none).
    for along in (prices.WITH_PRICES, stock.WITH_GENERIC):
        statement = batches._lookup(postgres, along)
        async with runtime.db.transaction() as session:
            # Before the unit's first statement its transaction has not begun on the
            # driver: read through Core.
            first = [dict(r.items()) for r in await read_rows(session, statement, params)]
            read = [dict(r.items()) for r in await read_rows(session, statement, params)]
            core = [dict(r._mapping) for r in await fetch(session, statement, params)]
        for rows in (first, read):
            assert sorted(rows, key=str) == sorted(core, key=str)
            assert {type(v) for r in rows for v in r.values()} == {
                type(v) for r in core for v in r.values()
            }
        assert sorted(r["ean"] for r in read) == [ean13(1), ean13(2)]  # the unknown one: none
        if postgres:
            rendered = db._rendered(statement, runtime.db.engine.dialect)
            assert rendered is not None
            assert db._AS_READ[rendered.sql] is True


async def test_read_units_give_back_their_connections(
    runtime: Runtime, client: httpx.AsyncClient, key: Key
) -> None:
    """A read unit that never began (the driver's path) is not closed, so every path
    that did begin must still end with its connection back in the pool."""
    await _create(client, key)
    pool = runtime.db.engine.sync_engine.pool
    before = pool.checkedout()
    shape = products._ListShape((), None, products.ProductSort(), False, False, None)
    params = {"account_id": key.account_id, "limit": 10, "offset": 0}
    async with runtime.db.read() as session:
        assert len(await read_rows(session, products._listing(shape), params)) == 2
    async with runtime.db.read() as session:
        counted = select(func.count()).where(Product.account_id == key.account_id)
        assert await session.scalar(counted) == 2
    async with runtime.db.read() as session:
        assert await session.get(Product, (await _any_product(runtime, key))) is not None
    try:
        async with runtime.db.read() as session:
            await session.scalar(select(Product.id).where(Product.account_id == key.account_id))
            raise LookupError("the reader gave up")
    except LookupError:
        pass
    assert pool.checkedout() == before


async def _any_product(runtime: Runtime, key: Key) -> object:
    async with runtime.db.transaction() as session:
        return await session.scalar(select(Product.id).where(Product.account_id == key.account_id))
