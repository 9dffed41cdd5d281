"""The cost of a GraphQL request: computed before it runs, refused over the maximum,
reported in `extensions.cost`, and spent from the key's rate budget."""

import httpx

from pim.runtime import Runtime
from tests.conftest import Key, MakeKey, gql
from tests.query_count import count_queries

MAXIMUM = 50_000
FRONT_PAGE = """
query {
  products(first: 50) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { ean name stock brand { name } category { name level } supplier { code } } }
  }
}"""
# products 1 + totalCount 1 + pageInfo 3 + edges (1 + 50 × (cursor 1 + node 11)).
FRONT_PAGE_COST = 1 + 1 + 3 + 1 + 50 * 12
NESTED = "edges { node { ean name brand { name } category { name } supplier { name } stock } }"
# A page of 500: products 1 + edges (1 + 500 × (node 1 + ean, name, stock 3 + 3 objects × 2)).
PAGE_OF_500_COST = 2 + 500 * 10


async def test_an_ordinary_front_page_passes_and_tells_its_cost(
    client: httpx.AsyncClient, key: Key
) -> None:
    body = await gql(client, FRONT_PAGE, key)
    assert "errors" not in body
    assert body["data"]["products"]["totalCount"] == 0
    assert body["extensions"]["cost"] == {"requested": FRONT_PAGE_COST, "maximum": MAXIMUM}


async def test_thirty_pages_of_500_are_refused_before_anything_runs(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    aliases = " ".join(f"p{n}: products(first: 500) {{ {NESTED} }}" for n in range(30))
    await gql(client, "{ viewer { keyName } }", key)  # the key's first use is written once
    with count_queries(runtime) as statements:
        body = await gql(client, "{ %s }" % aliases, key)
    cost = 30 * PAGE_OF_500_COST
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert f"coût {cost}" in error["message"] and f"maximum {MAXIMUM}" in error["message"]
    assert body["extensions"]["cost"] == {"requested": cost, "maximum": MAXIMUM}
    assert not [s for s in statements if "products" in s.lower()], statements


async def test_the_page_size_is_read_from_the_variables(
    client: httpx.AsyncClient, key: Key
) -> None:
    query = "query ($n: Int! = 7) { products(first: $n) { %s } }" % NESTED
    small = await gql(client, query, key, n=10)
    large = await gql(client, query, key, n=500)
    default = await gql(client, query, key)
    assert small["extensions"]["cost"]["requested"] == 2 + 10 * 10
    assert large["extensions"]["cost"]["requested"] == PAGE_OF_500_COST
    assert default["extensions"]["cost"]["requested"] == 2 + 7 * 10


async def test_fragments_and_inline_fragments_count_like_the_fields_they_hold(
    client: httpx.AsyncClient, key: Key
) -> None:
    spread = """
    query { products(first: 500) { edges { node { ...Card ... on Product { stock } } } } }
    fragment Card on Product { ean name brand { name } category { name } supplier { name } }
    """
    body = await gql(client, spread, key)
    assert body["extensions"]["cost"]["requested"] == PAGE_OF_500_COST


async def test_lists_nested_in_a_page_multiply(client: httpx.AsyncClient, key: Key) -> None:
    query = "{ products(first: 100) { edges { node { supplierStocks { quantity } } } } }"
    body = await gql(client, query, key)
    # products 1 + edges (1 + 100 × (node 1 + supplierStocks (1 + 50 unsized × 1))).
    assert body["extensions"]["cost"]["requested"] == 2 + 100 * (1 + 1 + 50)


async def test_an_expensive_query_spends_more_of_the_rate_budget_than_a_cheap_one(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key(rate_limit=20)
    cheap = await client.post(
        "/graphql", json={"query": "{ viewer { keyName } }"}, headers=key.headers
    )
    assert cheap.headers["X-RateLimit-Remaining"] == "19"
    aliases = " ".join(f"p{n}: products(first: 500) {{ {NESTED} }}" for n in range(3))
    costly = await client.post("/graphql", json={"query": "{ %s }" % aliases}, headers=key.headers)
    # 15,006 of cost: 16 requests' worth, the request itself included.
    assert costly.json()["extensions"]["cost"]["requested"] == 3 * PAGE_OF_500_COST
    assert "errors" not in costly.json()
    assert costly.headers["X-RateLimit-Remaining"] == "3"
    again = await client.post("/graphql", json={"query": "{ %s }" % aliases}, headers=key.headers)
    assert again.json()["data"] is None
    assert again.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert again.headers["X-RateLimit-Remaining"] == "0" and "Retry-After" in again.headers
