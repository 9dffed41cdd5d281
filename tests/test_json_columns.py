"""JSON columns are encoded by orjson on both backends; what it refuses goes the
standard library's way, and a document reads back as it was written."""

import json

import httpx

from pim.db import json_text
from tests.conftest import Key, gql


def test_json_text_is_compact_utf8_and_takes_what_orjson_refuses() -> None:
    assert json_text({"é": [1.5, None, True], 3: "x"}) == '{"é":[1.5,null,true],"3":"x"}'
    assert json.loads(json_text({"n": 2**70})) == {"n": 2**70}


async def test_a_document_reads_back_as_it_was_written(client: httpx.AsyncClient, key: Key) -> None:
    specs = {"matière": "acier inoxydable", "cotes": [1.25, -3, 2**62], "vide": {}, "non": None}
    body = {"ean": "3760000000001", "name": "x", "technical_specs": specs}
    created = await client.post("/api/v1/products", json=body, headers=key.headers)
    assert created.status_code == 201, created.text
    query = "query($id: ID!) { product(id: $id) { technicalSpecs } }"
    read = await gql(client, query, key, id=created.json()["id"])
    assert read["data"]["product"]["technicalSpecs"] == specs
