"""Change sets (one outbox row per bulk write) reach receivers as the per-product events
they got before: every product to every subscribed endpoint, in order per product, with
event ids stable across retries and replays — real receivers on loopback."""

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from models import Event
from pim.runtime import Runtime
from pim.timeutil import isoformat_z, utcnow
from resolvers import change_sets, events
from resolvers.events import CHANGE_SET_MIN
from resolvers.webhook_delivery import BACKOFF
from tests.conftest import Key
from tests.import_files import csv_bytes, rows
from tests.imports_helper import imported
from tests.jobs_helper import run_jobs
from tests.webhook_receiver import Receiver, receiving
from tests.webhooks_helper import (
    BASE,
    create_endpoint,
    deliver_at,
    deliveries,
    ean13,
    write_products,
)

PRODUCTS = CHANGE_SET_MIN + 10
DATA_FIELDS = ["id", "ean", "reference", "changed"]


@pytest.fixture
async def second(loopback_allowed: None) -> AsyncIterator[Receiver]:
    async with receiving() as r:
        yield r


def batch(start: int, name: str) -> list[dict[str, Any]]:
    return [{"ean": ean13(start + i), "name": f"{name} {i}"} for i in range(PRODUCTS)]


async def outbox(runtime: Runtime, key: Key) -> list[tuple[str, int]]:
    """(type, products told) of each outbox row of the account, in sequence order."""
    async with runtime.db.read() as session:
        found = await session.execute(
            select(Event.type, Event.payload)
            .where(Event.account_id == key.account_id)
            .order_by(Event.seq)
        )
        return [(t, len(p.get("products", [p]))) for t, p in found]


async def replay(client: httpx.AsyncClient, key: Key, endpoint_id: str, event_id: str) -> int:
    response = await client.post(
        f"{BASE}/{endpoint_id}/replay", json={"event_id": event_id}, headers=key.headers
    )
    return response.status_code


async def test_a_bulk_write_is_one_row_and_reaches_every_subscriber_product_by_product(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, receiver: Receiver,
    second: Receiver,
) -> None:  # fmt: skip
    await create_endpoint(client, key, receiver.url)
    await create_endpoint(client, key, second.url, ["product.updated"])
    await write_products(client, key, *batch(100, "Créé"))
    await write_products(client, key, *batch(100, "Renommé"))
    await write_products(client, key, {"ean": ean13(100), "name": "Seul"})
    assert await outbox(runtime, key) == [
        (change_sets.CHANGE_SET, PRODUCTS), (change_sets.CHANGE_SET, PRODUCTS),
        ("product.updated", 1),
    ]  # fmt: skip
    await run_jobs(runtime)

    everything = receiver.bodies
    assert [b["type"] for b in everything].count("product.created") == PRODUCTS
    assert [b["type"] for b in everything].count("product.updated") == PRODUCTS + 1
    assert [b["type"] for b in second.bodies] == ["product.updated"] * (PRODUCTS + 1)
    # The plain event and an expanded one look alike, down to the field order.
    first = [b for b in everything if b["data"]["ean"] == ean13(100)]
    assert [b["type"] for b in first] == ["product.created", "product.updated", "product.updated"]
    expanded, plain = first[1], first[2]
    assert list(expanded) == list(plain) == ["id", "type", "account_id", "occurred_at", "data"]
    assert list(expanded["data"]) == list(plain["data"])  # as each backend stores it
    assert sorted(expanded["data"]) == sorted(DATA_FIELDS)
    created = [b for b in everything if b["type"] == "product.created"]
    assert sorted(b["data"]["ean"] for b in created) == [ean13(100 + i) for i in range(PRODUCTS)]
    assert all(b["data"]["changed"] == ["ean", "name"] for b in created)
    assert all(b["account_id"] == str(key.account_id) for b in everything)
    # One id per product event, the same one in the header; each at its own microsecond.
    assert len({b["id"] for b in everything}) == len(everything)
    assert all(r.headers["pixee-event-id"] == r.json["id"] for r in receiver.received)
    assert all(r.headers["pixee-event-type"] == r.json["type"] for r in receiver.received)
    assert len({b["occurred_at"] for b in created}) == PRODUCTS


async def test_an_import_chunk_is_one_change_set_per_chunk(
    client: httpx.AsyncClient,
    runtime: Runtime,
    key: Key,
    receiver: Receiver,
) -> None:
    await create_endpoint(client, key, receiver.url, ["product.created"])
    done = await imported(client, runtime, key, "catalog.csv", csv_bytes(rows(PRODUCTS)))
    assert done["products_created"] == PRODUCTS
    assert await outbox(runtime, key) == [(change_sets.CHANGE_SET, PRODUCTS), ("stock.updated", 1)]
    await run_jobs(runtime)
    assert sorted(b["data"]["ean"] for b in receiver.bodies) == [
        ean13(n) for n in range(1, PRODUCTS + 1)
    ]


async def test_a_product_of_a_set_and_its_later_event_arrive_in_order_with_stable_ids(
    client: httpx.AsyncClient,
    runtime: Runtime,
    key: Key,
    receiver: Receiver,
) -> None:
    endpoint = await create_endpoint(client, key, receiver.url)
    receiver.always = 500
    await write_products(client, key, *batch(200, "Créé"))
    await write_products(client, key, {"ean": ean13(200), "name": "Plus tard"})
    await run_jobs(runtime)
    sent = [b for b in receiver.bodies if b["data"]["ean"] == ean13(200)]
    # The set's event failed: the later single event of the same product waits behind it.
    assert [b["type"] for b in sent] == ["product.created"]
    assert len(receiver.received) == PRODUCTS

    receiver.always = None
    await deliver_at(runtime, utcnow() + BACKOFF[0] + timedelta(seconds=1))
    sent = [b for b in receiver.bodies if b["data"]["ean"] == ean13(200)]
    assert [b["type"] for b in sent] == ["product.created", "product.created", "product.updated"]
    assert sent[0]["id"] == sent[1]["id"] and sent[0] == sent[1]  # a retry is the same event
    log = await deliveries(client, key, endpoint["id"], limit=500)
    assert len(log) == PRODUCTS + 1 and {d["status"] for d in log} == {"succeeded"}
    assert len({d["event_id"] for d in log}) == PRODUCTS + 1


async def test_replay_of_a_products_event_and_of_a_range_expand_the_same_way(
    client: httpx.AsyncClient,
    runtime: Runtime,
    key: Key,
    receiver: Receiver,
) -> None:
    endpoint = await create_endpoint(client, key, receiver.url, ["product.created"])
    before = utcnow()
    await write_products(client, key, *batch(300, "Créé"))
    await run_jobs(runtime)
    original = {r.json["id"]: r.body for r in receiver.received}
    assert len(original) == PRODUCTS

    some = receiver.received[7].json["id"]
    assert await replay(client, key, endpoint["id"], some) == 202
    await run_jobs(runtime)
    assert receiver.received[-1].body == original[some]  # byte for byte, same id

    # A range starting inside the set replays only the products changed within it.
    ordered = sorted(original, key=lambda i: orjson.loads(original[i])["occurred_at"])
    middle = orjson.loads(original[ordered[PRODUCTS // 2]])["occurred_at"]
    until = isoformat_z(utcnow() + timedelta(seconds=1))
    for since, count in ((isoformat_z(before), PRODUCTS), (middle, PRODUCTS - PRODUCTS // 2)):
        sent = len(receiver.received)
        response = await client.post(
            f"{BASE}/{endpoint['id']}/replay-range", json={"since": since, "until": until},
            headers=key.headers,
        )  # fmt: skip
        assert response.status_code == 202 and response.json() == {"deliveries_created": count}
        await run_jobs(runtime)
        again = receiver.received[sent:]
        assert sorted(r.json["id"] for r in again) == sorted(ordered[PRODUCTS - count :])
        assert all(r.body == original[r.json["id"]] for r in again)

    # An id in a set's range that no product of it has is no event.
    of_set, _ = change_sets.set_of(uuid.UUID(some))
    assert await replay(client, key, endpoint["id"], str(change_sets.item_id(of_set, 999))) == 404


def test_a_set_holds_at_most_max_items_spanning_at_most_max_span() -> None:
    start = utcnow()
    at = [start + timedelta(microseconds=n) for n in range(CHANGE_SET_MIN)]
    at += [at[-1] + change_sets.MAX_SPAN + timedelta(microseconds=1)]
    changes = [
        change_sets.ProductChange(id=uuid.uuid4(), ean=ean13(n), reference=None,
                                  changed=["name"], created=False, at=when)
        for n, when in enumerate(at)
    ]  # fmt: skip
    made = events.product_events(uuid.uuid4(), changes)
    assert [(r["type"], len(r["payload"]["products"])) for r in made] == [
        (change_sets.CHANGE_SET, CHANGE_SET_MIN), (change_sets.CHANGE_SET, 1),
    ]  # fmt: skip
    # Item ids: the set's id plus the index, UUIDv7, growing in set order.
    ids = [change_sets.item_id(made[0]["id"], n) for n in range(3)]
    assert ids == sorted(ids) and {i.version for i in ids} == {7}
    assert [change_sets.set_of(i) for i in ids] == [(made[0]["id"], n) for n in range(3)]
    assert made[1]["occurred_at"] == at[-1]
    few = events.product_events(uuid.uuid4(), changes[: CHANGE_SET_MIN - 1])
    assert {r["type"] for r in few} == {"product.updated"} and len(few) == CHANGE_SET_MIN - 1
    many = [changes[0]] * (change_sets.MAX_ITEMS + 1)
    assert [len(run) for run in change_sets.split(many)] == [change_sets.MAX_ITEMS, 1]
