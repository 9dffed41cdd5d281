"""With introspection off, error messages do not hint at the schema's names either."""

from typing import Any

import httpx
import pytest

from pim.runtime import Runtime
from pim.settings import Settings
from service.api import create_app
from tests.conftest import Key

FILTERED = "query ($f: ProductFilterInput) { products(filter: $f) { totalCount } }"
MISSPELT = [
    ("{ products(first: 1) { edgs { cursor } } }", None),  # a field
    ("{ products(frist: 1) { totalCount } }", None),  # an argument
    ("{ products(first: 1, sort: CREATD_AT) { totalCount } }", None),  # an enum value
    ('{ products(first: 1, filter: {serch: "x"}) { totalCount } }', None),  # an input field
    (FILTERED, {"f": {"serch": "x"}}),  # an input field in the variables
]


async def _messages(app: object, key: Key, query: str, variables: Any) -> list[str]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=key.headers
        )
    return [e["message"] for e in response.json()["errors"]]


@pytest.mark.parametrize(("query", "variables"), MISSPELT)
async def test_no_suggestions_when_introspection_is_off(
    settings: Settings, runtime: Runtime, key: Key, query: str, variables: Any
) -> None:
    closed = create_app(settings.model_copy(update={"graphql_introspection": False}), runtime)
    messages = await _messages(closed, key, query, variables)
    assert messages and not any("Did you mean" in m for m in messages), messages
    open_ = create_app(settings, runtime)
    assert any("Did you mean" in m for m in await _messages(open_, key, query, variables))
