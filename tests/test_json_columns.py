"""JSON columns are encoded by orjson on both backends; integers it refuses are written
exactly, and a document reads back as it was written."""

import json
import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy import update

from models import Event, Product
from pim.db import json_text
from pim.responses import OrjsonResponse
from pim.runtime import Runtime
from resolvers.webhook_delivery import event_body
from tests.conftest import Key, gql


def test_json_text_is_compact_utf8_and_writes_big_integers_exactly() -> None:
    assert json_text({"é": [1.5, None, True], 3: "x"}) == '{"é":[1.5,null,true],"3":"x"}'
    assert json_text({"n": [2**70, -(2**64), 2**63 - 1]}) == (
        '{"n":[1180591620717411303424,-18446744073709551616,9223372036854775807]}'
    )


async def test_a_document_reads_back_as_it_was_written(client: httpx.AsyncClient, key: Key) -> None:
    specs = {"matière": "acier inoxydable", "cotes": [1.25, -3, 2**62], "vide": {}, "non": None}
    body = {"ean": "3760000000001", "name": "x", "technical_specs": specs}
    created = await client.post("/api/v1/products", json=body, headers=key.headers)
    assert created.status_code == 201, created.text
    query = "query($id: ID!) { product(id: $id) { technicalSpecs } }"
    read = await gql(client, query, key, id=created.json()["id"])
    assert read["data"]["product"]["technicalSpecs"] == specs


async def test_a_document_stored_before_numbers_were_bounded_still_reads(
    runtime: Runtime, client: httpx.AsyncClient, key: Key
) -> None:
    """Documents written before their numbers were bounded may hold integers beyond 64
    bits, which orjson refuses: every surface that encodes them writes them exactly."""
    body = {"ean": "3760000000001", "name": "x", "technical_specs": {"k": 1}}
    created = await client.post("/api/v1/products", json=body, headers=key.headers)
    product_id = created.json()["id"]
    specs = {"k": [1.5, 2**70, {"n": -(2**64)}]}
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Product).where(Product.id == uuid.UUID(product_id)).values(technical_specs=specs)
        )
    assert json.loads(OrjsonResponse({"specs": specs}).body) == {"specs": specs}
    query = "query($id: ID!) { product(id: $id) { technicalSpecs } }"
    assert (await gql(client, query, key, id=product_id))["data"]["product"] == {
        "technicalSpecs": specs
    }
    event = Event(
        id=uuid.uuid4(), account_id=key.account_id, type="product.updated",
        payload={"technical_specs": specs}, occurred_at=datetime.now(UTC),
    )  # fmt: skip
    assert json.loads(event_body(event, event.id))["data"] == {"technical_specs": specs}
