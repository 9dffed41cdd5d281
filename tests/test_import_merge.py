"""CSV imports merged by the database (resolvers.import_merge): the same products, stock,
events, change stamps, logs and counters as the row writer, for every import mode;
unchanged rows write and emit nothing; a stock-only change is stamped; a caller whose
account is gone is refused. On PostgreSQL (COPY into the staging table) and the
embedded default."""

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select

from models import (
    Account,
    Brand,
    Event,
    ImportLog,
    Product,
    ProductChange,
    ProductStock,
    Supplier,
    SupplierProduct,
)
from pim.runtime import Runtime
from resolvers import import_merge, import_runs, products
from resolvers.errors import Unauthenticated
from resolvers.product_writes import WriteItem, WriteOptions, check_items
from tests.conftest import Key, MakeKey
from tests.import_files import csv_bytes, ean13
from tests.imports_helper import imported

HEADER = ["EAN", "Titre", "Prix HT", "Prix TTC", "Marque", "Poids", "Stock", "Couleur"]
BAD_CHECKSUM = ean13(5)[:-1] + str((int(ean13(5)[-1]) + 1) % 10)


def line(n: int, title: str = "", *, stock: str | None = None, price: str = "9,99",
         brand: str = "Acme", weight: str = "1,5") -> list[str]:  # fmt: skip
    return [ean13(n), title or f"Produit {n}", "5,00", price, brand, weight,
            str(n) if stock is None else stock, "Noir"]  # fmt: skip


# Files imported one after the other, each with its form: every mode, empty cells, a
# warning, a refused row, brands, stock-only and unchanged rows, new and skipped ones.
FILES: list[tuple[list[list[str]], dict[str, str]]] = [
    (
        [line(1), line(2), line(3, weight=""), line(4, price=""),
         [BAD_CHECKSUM, "Somme fausse", "1,00", "2,00", "Acme", "1", "1", "Rouge"],
         ["123", "EAN invalide", "1,00", "2,00", "", "", "", ""], line(6, brand="")],
        {},
    ),
    (
        [line(1, "Nouveau titre"), line(2, stock="40"), line(3), line(4, price=""),
         line(6, brand="Autre marque"), line(7)],
        {},
    ),
    ([line(1, "Pas créé"), line(8)], {"mode": "create_only"}),
    ([line(2, "Mis à jour"), line(9)], {"mode": "update_only"}),
    ([line(2, "Mis à jour"), line(3, weight="2,5", stock="0")], {"mode": "update_only"}),
    ([line(2, "Mis à jour", stock="40"), line(10)], {"supplier_code": "SUP_A"}),
    ([line(2, "Mis à jour", stock="40"), line(10, stock="7")], {"supplier_code": "SUP_A"}),
]  # fmt: skip


async def import_file(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, data: list[list[str]], **form: str
) -> dict[str, Any]:
    return await imported(client, runtime, key, "catalog.csv", csv_bytes(data, header=HEADER),
                          **form)  # fmt: skip


async def state(runtime: Runtime, key: Key, job_ids: list[str]) -> dict[str, Any]:
    """What the account's imports left, without ids and times (which differ between
    accounts), products named by EAN."""
    account = key.account_id
    async with runtime.db.read() as session:
        rows = list(
            (await session.execute(select(Product).where(Product.account_id == account))).scalars()
        )
        ean_of = {p.id: p.ean for p in rows}
        brands = dict((await session.execute(select(Brand.id, Brand.name))).all())
        suppliers = dict((await session.execute(select(Supplier.id, Supplier.code))).all())
        columns = [c.name for c in Product.__table__.columns]
        found = {}
        for product in rows:
            row = {c: getattr(product, c) for c in columns}
            row["brand_id"] = brands.get(row["brand_id"])
            row["supplier_id"] = suppliers.get(row["supplier_id"])
            for name in ("id", "account_id", "created_at", "updated_at"):
                del row[name]
            found[product.ean] = row
        stock, supplier_stock = [
            {ean_of[pid]: quantity for pid, quantity in (await session.execute(
                select(table.product_id, quantity).where(table.account_id == account)))}
            for table, quantity in ((ProductStock, ProductStock.quantity),
                                    (SupplierProduct, SupplierProduct.stock))
        ]  # fmt: skip
        stamped = {
            ean_of[pid]
            for pid in (
                await session.scalars(
                    select(ProductChange.product_id).where(ProductChange.account_id == account)
                )
            )
        }
        events = [
            (kind, {**payload, "id": ean_of[uuid.UUID(payload["id"])]} if "id" in payload
             else payload)
            for kind, payload in (
                await session.execute(
                    select(Event.type, Event.payload).where(Event.account_id == account)
                    .order_by(Event.seq)
                )
            )
        ]  # fmt: skip
        logs = [
            list(
                await session.execute(
                    select(ImportLog.row_number, ImportLog.level, ImportLog.field,
                           ImportLog.message, ImportLog.value)
                    .where(ImportLog.job_id == uuid.UUID(job_id)).order_by(ImportLog.seq)
                )
            )
            for job_id in job_ids
        ]  # fmt: skip
    return {"products": found, "stock": stock, "supplier_stock": supplier_stock,
            "stamped": stamped, "events": events, "logs": logs}  # fmt: skip


COUNTERS = ("status", "successful_rows", "failed_rows", "products_created", "products_updated",
            "last_error", "error_summary")  # fmt: skip


def refused(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the row writer was called")


async def test_the_merge_leaves_what_the_row_writer_leaves_in_every_mode(
    client: httpx.AsyncClient, runtime: Runtime, make_key: MakeKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = []
    for merged in (True, False):
        key = await make_key()
        with monkeypatch.context() as patch:
            if merged:
                patch.setattr(import_merge, "write_checked", refused)
            else:
                patch.setattr(import_merge, "mergeable", lambda *args: None)
            jobs = [await import_file(client, runtime, key, data, **form) for data, form in FILES]
        counters = [{name: job[name] for name in COUNTERS} for job in jobs]
        results.append((counters, await state(runtime, key, [job["id"] for job in jobs])))
    (merged_counters, merged_state), (row_counters, row_state) = results
    assert merged_counters == row_counters
    for part in ("products", "stock", "supplier_stock", "stamped", "events", "logs"):
        assert merged_state[part] == row_state[part], part
    # The files did what they say, so the comparison compares something.
    assert [(c["products_created"], c["products_updated"]) for c in merged_counters] == [
        (6, 0), (1, 4), (1, 0), (0, 1), (0, 1), (1, 1), (0, 2),
    ]  # fmt: skip
    assert merged_state["stamped"] == {ean13(2), ean13(10)}
    assert merged_state["products"][ean13(4)]["price"] is None
    assert merged_state["products"][ean13(3)]["weight"] == 2.5
    assert merged_state["products"][BAD_CHECKSUM]["ean_checksum_valid"] is False
    assert merged_state["products"][ean13(6)]["brand_id"] == "Autre marque"
    assert merged_state["supplier_stock"] == {ean13(2): 40, ean13(10): 7}


async def counts(runtime: Runtime, key: Key) -> dict[str, Any]:
    """Each product's updated_at, the account's events and its number of change stamps."""
    account = key.account_id
    async with runtime.db.read() as session:
        updated = await session.execute(
            select(Product.ean, Product.updated_at).where(Product.account_id == account)
        )
        events = await session.execute(
            select(Event.type, Event.payload).where(Event.account_id == account).order_by(Event.seq)
        )
        stamps = select(func.count()).select_from(ProductChange)
        return {
            "updated_at": {ean: at for ean, at in updated},
            "events": [(kind, payload) for kind, payload in events],
            "stamps": await session.scalar(stamps.where(ProductChange.account_id == account)),
        }


async def test_unchanged_rows_write_nothing_and_a_stock_change_alone_is_stamped(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_merge, "write_checked", refused)
    first = await import_file(client, runtime, key, [line(n) for n in range(1, 6)])
    assert (first["products_created"], first["products_updated"]) == (5, 0)
    before = await counts(runtime, key)

    again = await import_file(client, runtime, key, [line(n) for n in range(1, 6)])
    assert (again["successful_rows"], again["products_created"], again["products_updated"]) == (
        5, 0, 0,
    )  # fmt: skip
    assert await counts(runtime, key) == before

    # One title, one stock, one new product; two rows unchanged.
    changed = [line(1, "Autre titre"), line(2, stock="99"), line(3), line(4), line(6)]
    job = await import_file(client, runtime, key, changed)
    assert (job["successful_rows"], job["products_created"], job["products_updated"]) == (5, 1, 2)
    after = await counts(runtime, key)
    unchanged = [ean13(n) for n in (2, 3, 4, 5)]
    assert [after["updated_at"][e] for e in unchanged] == [
        before["updated_at"][e] for e in unchanged
    ]
    assert after["updated_at"][ean13(1)] > before["updated_at"][ean13(1)]
    assert after["stamps"] == before["stamps"] + 1
    new_events = after["events"][len(before["events"]) :]
    assert [(kind, payload.get("ean"), payload.get("changed")) for kind, payload in new_events] == [
        ("product.updated", ean13(1), ["name"]),
        ("product.created", ean13(6), sorted(["ean", "name", "cost_price", "price", "brand_name",
                                              "weight", "stock", "color"])),
        ("stock.updated", None, None),
    ]  # fmt: skip
    assert new_events[-1][1] == {"count": 2, "eans": [ean13(2), ean13(6)]}
    async with runtime.db.read() as session:
        stock = await session.scalar(
            select(ProductStock.quantity)
            .join(Product, Product.id == ProductStock.product_id)
            .where(Product.account_id == key.account_id, Product.ean == ean13(2))
        )
    assert stock == 99


async def test_a_caller_whose_account_is_gone_is_refused_before_anything_is_staged(
    runtime: Runtime, key: Key
) -> None:
    caller = key.caller("products:write")
    items = [WriteItem({"ean": ean13(n), "name": f"P{n}", "stock": n}) for n in (1, 2)]
    chunk = import_runs.RowChunk(
        [], frozenset(), [], check_items(items, WriteOptions(), strict_ean=False)
    )
    assert import_merge.mergeable(caller, chunk, WriteOptions()) is not None
    async with runtime.db.transaction() as session:
        await session.execute(delete(Account).where(Account.id == key.account_id))
    with pytest.raises(Unauthenticated):
        async with runtime.db.transaction() as session:
            await import_merge.write_chunk(session, caller, chunk, WriteOptions())
    async with runtime.db.read() as session:
        left = await session.scalar(
            select(func.count()).select_from(Product).where(Product.account_id == key.account_id)
        )
    assert left == 0


async def test_a_brand_deleted_after_the_chunk_found_it_is_named_again(
    runtime: Runtime, key: Key
) -> None:
    """The merge takes the brand ids its chunk's own transaction found (create_references)
    instead of looking them up again; a brand deleted in between still ends up named."""
    caller = key.caller("products:write")
    items = [WriteItem({"ean": ean13(n), "name": f"P{n}", "brand_name": "Acme"}) for n in (1, 2)]
    chunk = import_runs.RowChunk(
        [], frozenset(), [], check_items(items, WriteOptions(), strict_ean=False)
    )
    async with runtime.db.transaction() as session:
        found = await import_merge.create_references(session, key.account_id, {"Acme"}, set())
    async with runtime.db.transaction() as session:
        await session.execute(delete(Brand).where(Brand.account_id == key.account_id))
    async with runtime.db.transaction() as session:
        outcome = await import_merge.write_chunk(session, caller, chunk, WriteOptions(), found)
    assert (outcome.created, outcome.updated, outcome.failed) == (2, 0, 0)
    async with runtime.db.read() as session:
        brands = list(
            await session.scalars(select(Brand.id).where(Brand.account_id == key.account_id))
        )
        named = set(
            await session.scalars(
                select(Product.brand_id).where(Product.account_id == key.account_id)
            )
        )
    assert len(brands) == 1 and brands[0] != found.brands["acme"]
    assert named == {brands[0]}


async def test_a_deleted_product_or_a_nameless_new_one_sends_its_chunk_to_the_row_writer(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, monkeypatch: pytest.MonkeyPatch
) -> None:
    await import_file(client, runtime, key, [line(1), line(2)])
    async with runtime.db.transaction() as session:
        await products.delete_product(session, key.caller(), ean=ean13(1))
    calls: list[int] = []
    row_writer = import_merge.write_checked

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return await row_writer(*args, **kwargs)

    monkeypatch.setattr(import_merge, "write_checked", counted)
    again = await import_file(client, runtime, key, [line(1, "Revenu"), line(2, "Autre")])
    assert (again["products_created"], again["products_updated"], calls) == (1, 1, [1])
    nameless = [[ean13(3), "", "5,00", "9,99", "Acme", "1,5", "3", "Noir"], line(2, "Encore")]
    job = await import_file(client, runtime, key, nameless)
    assert (job["failed_rows"], job["products_updated"], job["last_error"], len(calls)) == (
        1, 1, "ligne 2 : name : obligatoire pour créer un produit", 2,
    )  # fmt: skip
    async with runtime.db.read() as session:
        reborn = await session.scalar(
            select(Product.name).where(
                Product.account_id == key.account_id,
                Product.ean == ean13(1),
                Product.deleted_at.is_(None),
            )
        )
    assert reborn == "Revenu"


async def test_each_set_of_columns_is_staged_in_its_own_table_and_few_are_kept(
    runtime: Runtime, key: Key, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk is staged in a table of only the columns it fills; a connection that
    met more sets of columns than it keeps drops the others (each costs every commit)."""
    monkeypatch.setattr(import_merge, "write_checked", refused)
    caller = key.caller("products:write")
    extras: list[dict[str, Any]] = [
        {}, {"color": "Noir"}, {"stock": 3}, {"weight": 1.5}, {"size": "M"}, {"color": "Bleu"},
    ]  # fmt: skip
    async with runtime.db.transaction() as session:
        for n, extra in enumerate(extras, start=1):
            items = [WriteItem({"ean": ean13(n), "name": f"P{n}", **extra})]
            chunk = import_runs.RowChunk(
                [], frozenset(), [], check_items(items, WriteOptions(), strict_ean=False)
            )
            outcome = await import_merge.write_chunk(session, caller, chunk, WriteOptions())
            assert (outcome.created, outcome.failed) == (1, 0)
        connection = await session.connection()
        listed = import_merge._TEMP_TABLES[connection.dialect.name]
        pattern = {"pattern": "import\\_stage\\_%"}
        kept = set((await connection.execute(listed, pattern)).scalars())
        assert 1 < len(kept) <= import_merge._STAGE_TABLES_KEPT
    async with runtime.db.read() as session:
        written = (
            await session.execute(
                select(Product.ean, Product.color, Product.weight, Product.size)
                .where(Product.account_id == key.account_id)
                .order_by(Product.ean)
            )
        ).all()
    assert [tuple(row) for row in written] == [
        (ean13(1), None, None, None), (ean13(2), "Noir", None, None), (ean13(3), None, None, None),
        (ean13(4), None, 1.5, None), (ean13(5), None, None, "M"), (ean13(6), "Bleu", None, None),
    ]  # fmt: skip
