"""Property-based pass: generated requests never make the API answer 5xx or show internals.

Schemathesis generates requests for every REST operation of /openapi.json, and hypothesis
generates bodies for the batch routes. Generation is derandomized and bounded (a fixed
number of examples per operation), and the requests go in process through the ASGI app
with a valid key holding every scope. The pass over every operation runs on PostgreSQL
only (the backend that refuses what SQLite silently stores), to keep it within a minute;
the batch bodies run on both.
"""

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.conftest import Key

EXAMPLES_PER_OPERATION = 12
BATCH_EXAMPLES = 50
# What a leaked database error or traceback would show.
INTERNALS = re.compile(
    r"Traceback|sqlalchemy|asyncpg|aiosqlite|psycopg|\[SQL|parameters:|File \"", re.IGNORECASE
)
SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def postgres_only(backend: str) -> None:
    if backend != "postgres":
        pytest.skip("the generated pass runs on one backend (PostgreSQL) to stay short")


def drawn(strategy: st.SearchStrategy[Any], examples: int) -> list[Any]:
    """`examples` values of `strategy`, the same ones on every run."""
    values: list[Any] = []

    @settings(SETTINGS, max_examples=examples)
    @given(strategy)
    def collect(value: Any) -> None:
        values.append(value)

    collect()
    return values


def server_faults(responses: list[tuple[str, httpx.Response]]) -> list[str]:
    return [
        f"{what} -> {r.status_code} {r.text[:200]}"
        for what, r in responses
        if r.status_code >= 500 or INTERNALS.search(r.text)
    ]


@pytest.mark.usefixtures("postgres_only")
async def test_no_generated_request_to_a_rest_operation_is_answered_5xx(
    app: FastAPI, key: Key
) -> None:
    schema = schemathesis.openapi.from_dict(app.openapi())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    responses: list[tuple[str, httpx.Response]] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        for result in schema.get_all_operations():
            operation = result.ok()
            if operation.path.startswith("/graphql"):
                continue  # not a REST surface
            # Valid requests, and requests that break the schema (wrong types, bounds).
            strategy = operation.as_strategy() | operation.as_strategy(GenerationMode.NEGATIVE)
            for case in drawn(strategy, EXAMPLES_PER_OPERATION):
                sent = case.as_transport_kwargs(base_url="http://testserver")
                sent["headers"] = {**(sent.get("headers") or {}), **key.headers}
                sent.pop("cookies", None)
                request = http.build_request(**sent)
                responses.append((f"{sent['method']} {request.url}", await http.send(request)))
    assert len(responses) > 500
    assert server_faults(responses) == []


TEXT = st.text(max_size=40) | st.sampled_from(["", "\x00", "a\x00b", "x" * 300])
NUMBER = st.integers(min_value=-(2**70), max_value=2**70) | st.floats(
    allow_nan=False, allow_infinity=False
)
SCALAR = st.none() | st.booleans() | NUMBER | TEXT
# Mostly valid EANs: an item must pass its EAN check to reach the database.
EANS = st.sampled_from(["3760000000001", "3760000000018", "12345670", "3760000000025", "abc"])
JSON = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def item(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[Any]:
    """Mostly items that reach the database (their keys given), else anything at all."""
    known = st.fixed_dictionaries(required, optional=optional)
    return known | known | known | st.dictionaries(TEXT, JSON, max_size=3) | SCALAR


# Required texts are mostly valid, so that an item's other values get to the database.
NAME = st.text(min_size=1, max_size=20) | st.just("a\x00b")
PRODUCT = item(
    {"ean": EANS, "reference": NAME, "name": NAME},
    {"title": TEXT, "stock": NUMBER, "price": NUMBER, "cost_price": NUMBER,
     "price_ht": NUMBER, "price_ttc": NUMBER, "weight": NUMBER, "status": TEXT,
     "is_active": SCALAR, "brand_name": TEXT, "brand": TEXT, "supplier_code": TEXT,
     "category_id": TEXT, "technical_specs": JSON, "package_quantity": NUMBER,
     "end_of_life_date": TEXT, "description": TEXT},
)  # fmt: skip
STOCK = item({"ean": EANS, "stock": NUMBER}, {"supplier_code": TEXT})
PRICES = item({"ean": EANS}, {"price_ttc": NUMBER, "price_ht": NUMBER})


def items(one: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(one, max_size=6)


BATCHES: list[tuple[str, str, Callable[[list[Any]], Any]]] = [
    ("POST", "/api/v1/ext/products/batch", lambda xs: {"products": xs}),
    ("POST", "/api/v1/windev/products/sync", lambda xs: xs),
    ("POST", "/api/v1/products/bulk", lambda xs: {"products": xs, "skip_duplicates": True}),
    ("PATCH", "/api/v1/products/bulk", lambda xs: {"products": xs, "skip_not_found": True}),
]


async def test_no_generated_batch_body_is_answered_5xx(app: FastAPI, key: Key) -> None:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    plans = [(m, path, wrap, PRODUCT) for m, path, wrap in BATCHES] + [
        ("POST", "/api/v1/windev/stock/update", list, STOCK),
        ("POST", "/api/v1/windev/prices/update", list, PRICES),
    ]
    responses: list[tuple[str, httpx.Response]] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        for method, path, wrap, one in plans:
            for body in drawn(items(one) | JSON, BATCH_EXAMPLES):
                sent = wrap(body) if isinstance(body, list) else body
                response = await http.request(method, path, json=sent, headers=key.headers)
                responses.append((f"{method} {path} {str(sent)[:200]}", response))
    assert server_faults(responses) == []
    assert {r.status_code for _, r in responses} >= {200, 422}
