"""The canonical GraphQL schema: reads, mutations with typed errors, scopes, limits,
DataLoaders (counted queries), and the checked-in SDL."""

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from jobs.demo import ean13
from models import PriceList, PriceListItem, Product
from pim.runtime import Runtime
from pim.settings import Settings
from schema import export_sdl
from tests.conftest import Key, MakeKey, gql
from tests.query_count import count_queries

VIEWER = "{ viewer { keyName scopes accountName } }"
UPSERT = """
mutation ($input: ProductInput!) {
  upsertProduct(input: $input) {
    created
    product { id ean name brandName status isActive weight eanChecksumValid }
    warnings { field code }
    errors { field message code }
  }
}"""
UPSERT_MANY = """
mutation ($inputs: [ProductInput!]!, $dryRun: Boolean!) {
  upsertProducts(inputs: $inputs, dryRun: $dryRun) {
    total created updated unchanged failed dryRun
    results { index status ean id errors { field code message } }
    errors { code message }
  }
}"""
PRODUCTS_NESTED = """
query ($first: Int!, $after: String, $filter: ProductFilterInput) {
  products(first: $first, after: $after, filter: $filter) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { ean name stock brand { name } category { name level } supplier { code } } }
  }
}"""


async def test_graphiql_page_and_introspection_work_without_a_key(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    body = await gql(client, "{ __schema { queryType { name } } }")
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_data_fields_need_a_key(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ products(first: 1) { totalCount } }")
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_viewer_tells_the_key_and_account(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key(["products:read"], name="Front office")
    body = await gql(client, VIEWER, key)
    assert body["data"]["viewer"] == {
        "keyName": "Front office",
        "scopes": ["products:read"],
        "accountName": key.account,
    }


async def test_upsert_returns_the_product_and_typed_errors(
    client: httpx.AsyncClient, key: Key
) -> None:
    created = await gql(
        client, UPSERT, key, input={"ean": "3760000000001", "name": "Support", "brandName": "KIMEX"}
    )
    payload = created["data"]["upsertProduct"]
    assert payload["created"] is True and payload["errors"] == []
    assert (
        payload["product"]["brandName"] == "KIMEX"
        and payload["product"]["eanChecksumValid"] is False
    )
    assert payload["warnings"] == [{"field": "ean", "code": "EAN_CHECKSUM"}]

    failed = await gql(client, UPSERT, key, input={"ean": "12", "name": "x"})
    assert failed["data"]["upsertProduct"]["product"] is None
    assert failed["data"]["upsertProduct"]["errors"] == [
        {
            "field": "ean",
            "message": "format invalide (8, 12, 13 ou 14 chiffres attendus)",
            "code": "INVALID_EAN",
        }
    ]


async def test_batch_upsert_is_independent_per_item_and_dry_run_writes_nothing(
    client: httpx.AsyncClient, key: Key
) -> None:
    inputs = [{"ean": ean13(1), "name": "A"}, {"ean": "bad", "name": "B"}, {"ean": ean13(3)}]
    dry = (await gql(client, UPSERT_MANY, key, inputs=inputs, dryRun=True))["data"][
        "upsertProducts"
    ]
    real = (await gql(client, UPSERT_MANY, key, inputs=inputs, dryRun=False))["data"][
        "upsertProducts"
    ]
    for payload in (dry, real):
        assert (payload["total"], payload["created"], payload["failed"]) == (3, 1, 2)
        assert [r["status"] for r in payload["results"]] == ["CREATED", "ERROR", "ERROR"]
        assert payload["results"][2]["errors"][0]["field"] == "name"
    assert dry["dryRun"] is True
    count = await gql(client, "{ products(first: 5) { totalCount } }", key)
    assert count["data"]["products"]["totalCount"] == 1


async def test_batch_over_500_is_a_typed_error(client: httpx.AsyncClient, key: Key) -> None:
    inputs = [{"ean": ean13(n), "name": "x"} for n in range(501)]
    payload = (await gql(client, UPSERT_MANY, key, inputs=inputs, dryRun=False))["data"][
        "upsertProducts"
    ]
    assert payload["total"] == 0 and payload["errors"][0]["code"] == "TOO_MANY"


async def test_page_sizes_out_of_range_are_refused_as_on_rest_not_clamped(
    client: httpx.AsyncClient, key: Key
) -> None:
    connector = "00000000-0000-7000-8000-000000000000"
    for query, variables in [
        ("query ($n: Int!) { products(first: $n) { totalCount } }", {"n": 0}),
        ("query ($n: Int!) { products(first: $n) { totalCount } }", {"n": 501}),
        ("query ($n: Int!) { connectors(first: $n) { totalCount } }", {"n": 101}),
        ("query ($n: Int!) { connectors(first: 1, offset: $n) { totalCount } }", {"n": -1}),
        (
            "query ($n: Int!, $c: ID!) { syncJobs(connectorId: $c, first: $n) { id } }",
            {"n": 0, "c": connector},
        ),
    ]:
        body = await gql(client, query, key, **variables)
        assert body["data"] is None, (query, variables)
        [error] = body["errors"]
        assert error["extensions"]["code"] == "VALIDATION_FAILED", (query, error)
        assert "doit être compris entre" in error["message"], error


async def test_replace_update_and_delete(client: httpx.AsyncClient, key: Key) -> None:
    await gql(
        client, UPSERT, key, input={"ean": ean13(1), "name": "A", "description": "D", "weight": 2}
    )
    replaced = await gql(
        client,
        'mutation { replaceProduct(ean: "%s", input: {name: "A2"}) { product { name description weight } errors { code } } }'
        % ean13(1),
        key,
    )
    assert replaced["data"]["replaceProduct"]["product"] == {
        "name": "A2",
        "description": None,
        "weight": None,
    }
    updated = await gql(
        client,
        'mutation { updateProduct(ean: "%s", input: {weight: 3.5, name: null}) { product { name weight } } }'
        % ean13(1),
        key,
    )
    assert updated["data"]["updateProduct"]["product"] == {"name": "A2", "weight": 3.5}
    missing = await gql(
        client,
        'mutation { updateProduct(ean: "%s", input: {weight: 1}) { errors { code } } }' % ean13(9),
        key,
    )
    assert missing["data"]["updateProduct"]["errors"] == [{"code": "NOT_FOUND"}]
    deleted = await gql(
        client,
        'mutation { deleteProduct(ean: "%s") { deletedId errors { code } } }' % ean13(1),
        key,
    )
    assert deleted["data"]["deleteProduct"]["deletedId"]
    gone = await gql(client, '{ product(ean: "%s") { id } }' % ean13(1), key)
    assert gone["data"]["product"] is None


async def test_scopes_match_the_rest_surfaces(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    writer_only = await make_key(["windev:write"])
    read = await gql(client, "{ products(first: 1) { totalCount } }", writer_only)
    assert read["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    reader = await make_key(["windev:read"])
    write = await gql(client, UPSERT, reader, input={"ean": ean13(1), "name": "x"})
    assert write["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await gql(client, "{ products(first: 1) { totalCount } }", reader))["data"]["products"][
        "totalCount"
    ] == 0


async def test_filters_sort_and_keyset_pages(client: httpx.AsyncClient, key: Key) -> None:
    inputs = [
        {"ean": ean13(n), "name": f"Produit {n:02d}", "supplierCode": "KIMEX" if n % 2 else "ALSO",
         "status": "ACTIVE" if n < 8 else "INACTIVE"}
        for n in range(1, 11)
    ]  # fmt: skip
    await gql(client, UPSERT_MANY, key, inputs=inputs, dryRun=False)
    filtered = await gql(
        client, PRODUCTS_NESTED, key, first=10, filter={"supplierCode": "KIMEX", "isActive": True}
    )
    assert [e["node"]["name"] for e in filtered["data"]["products"]["edges"]] == [
        "Produit 01",
        "Produit 03",
        "Produit 05",
        "Produit 07",
    ]
    searched = await gql(client, PRODUCTS_NESTED, key, first=10, filter={"search": "duit 1"})
    assert searched["data"]["products"]["totalCount"] == 1
    names: list[str] = []
    after = None
    while True:
        page = (await gql(client, PRODUCTS_NESTED, key, first=3, after=after))["data"]["products"]
        assert page["totalCount"] == 10
        names += [e["node"]["name"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert names == [f"Produit {n:02d}" for n in range(1, 11)]
    by_name = await gql(
        client, "{ products(first: 2, sort: NAME, order: DESC) { edges { node { name } } } }", key
    )
    assert [e["node"]["name"] for e in by_name["data"]["products"]["edges"]] == [
        "Produit 10",
        "Produit 09",
    ]


PRODUCT_FIELDS = """
fragment Identity on Product { id ean name status isActive }
fragment Rest on Product {
  ...Identity  price costPrice weight technicalSpecs createdAt updatedAt brandName stock
  brand { name } supplier { code } supplierStocks { quantity }
}"""


async def test_a_page_reads_the_columns_its_nodes_select_and_the_same_values(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    product = {"ean": ean13(1), "name": "Écran", "brandName": "KIMEX", "supplierCode": "ALSO",
               "price": 19.9, "costPrice": 9.5, "weight": 1.5, "stock": 4,
               "technicalSpecs": {"hdmi": 3}, "status": "INACTIVE"}  # fmt: skip
    await gql(client, UPSERT, key, input=product)
    alone = await gql(
        client, PRODUCT_FIELDS + f'{{ product(ean: "{ean13(1)}") {{ ...Rest }} }}', key
    )
    with count_queries(runtime) as statements:
        page = await gql(
            client,
            PRODUCT_FIELDS
            + "{ products(first: 5) { edges { node { ... on Product { ...Rest } } } } }",
            key,
        )
    assert page["data"]["products"]["edges"] == [{"node": alone["data"]["product"]}]
    assert page["data"]["products"]["edges"][0]["node"]["isActive"] is False
    listing = next(s for s in statements if "FROM products" in s and "LIMIT" in s)
    assert "technical_specs" in listing and "compatibility" not in listing


async def test_a_delta_reads_the_columns_its_nodes_select_and_the_same_values(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    product = {"ean": ean13(2), "name": "Souris", "brandName": "KIMEX", "price": 9.9,
               "stock": 2, "technicalSpecs": {"dpi": 1600}}  # fmt: skip
    await gql(client, UPSERT, key, input=product)
    alone = await gql(
        client, PRODUCT_FIELDS + f'{{ product(ean: "{ean13(2)}") {{ ...Rest }} }}', key
    )
    since = '"2000-01-01T00:00:00Z"'
    with count_queries(runtime) as statements:
        delta = await gql(
            client,
            PRODUCT_FIELDS + f"{{ productsDelta(since: {since}) {{ nodes {{ ...Rest }} }} }}",
            key,
        )
    assert delta["data"]["productsDelta"]["nodes"] == [alone["data"]["product"]]
    reads = [s for s in statements if "FROM products" in s and "technical_specs" in s]
    assert reads and all("compatibility" not in s for s in reads), statements


async def _pages_of_10_and_100(
    client: httpx.AsyncClient, key: Key, runtime: Runtime, query: str
) -> list[tuple[dict[str, Any], list[str]]]:
    """The answer to `query` and the SQL statements it ran, for `first` 10 then 100."""
    await gql(client, VIEWER, key)  # last_used_at is written on first use only
    pages = []
    for first in (10, 100):
        with count_queries(runtime) as statements:
            pages.append((await gql(client, query, key, first=first), statements))
    return pages


async def test_nested_page_costs_a_constant_number_of_queries(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    from jobs.demo import load_demo

    await load_demo(runtime, key.account, 120)
    (page, small), (big, large) = await _pages_of_10_and_100(client, key, runtime, PRODUCTS_NESTED)
    assert len(page["data"]["products"]["edges"]) == 10
    edges = big["data"]["products"]["edges"]
    assert len(edges) == 100
    assert all(
        e["node"]["brand"] and e["node"]["category"] and e["node"]["supplier"] for e in edges
    )
    assert all(e["node"]["stock"] is not None for e in edges)
    assert len(large) == len(small) <= 5, large


PRODUCTS_OFFERS = """
query ($first: Int!) {
  products(first: $first) {
    edges { node { ean supplierStocks { quantity supplier { code } } channelPrices { channel price } } }
  }
}"""


async def test_stock_and_prices_per_product_cost_a_constant_number_of_queries(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    from jobs.demo import load_demo

    await load_demo(runtime, key.account, 120)
    async with runtime.db.transaction() as session:
        shop = PriceList(account_id=key.account_id, name="Boutique", channel="shop")
        session.add(shop)
        await session.flush()
        product_ids = await session.scalars(
            select(Product.id).where(Product.account_id == key.account_id)
        )
        session.add_all(
            PriceListItem(
                account_id=key.account_id, price_list_id=shop.id, product_id=product_id,
                channel_price=9.9,
            )
            for product_id in product_ids
        )  # fmt: skip
    (page, small), (big, large) = await _pages_of_10_and_100(client, key, runtime, PRODUCTS_OFFERS)
    assert len(page["data"]["products"]["edges"]) == 10
    nodes = [e["node"] for e in big["data"]["products"]["edges"]]
    assert len(nodes) == 100
    assert any(n["supplierStocks"] for n in nodes)
    assert all(n["channelPrices"] == [{"channel": "shop", "price": 9.9}] for n in nodes)
    assert len(large) == len(small), large


async def test_depth_and_alias_limits_refuse_abusive_queries(
    client: httpx.AsyncClient, key: Key
) -> None:
    aliases = " ".join(f"a{n}: viewer {{ keyName }}" for n in range(40))
    body = await gql(client, "{ %s }" % aliases, key)
    assert body["data"] is None and "aliases" in body["errors"][0]["message"].lower()
    deep = "{ __schema { types { fields { type { fields { type { fields { type { fields { type { fields { name } } } } } } } } } } } }"
    body = await gql(client, deep, key)
    assert body["data"] is None and "depth" in body["errors"][0]["message"].lower()


async def test_categories_and_suppliers(client: httpx.AsyncClient, key: Key) -> None:
    root = await gql(
        client,
        'mutation { createCategory(input: {name: "Supports TV", sortOrder: 1}) { category { id slug level } errors { code } } }',
        key,
    )
    root_id = root["data"]["createCategory"]["category"]["id"]
    assert root["data"]["createCategory"]["category"]["slug"] == "supports-tv"
    child = await gql(
        client,
        'mutation ($p: ID!) { createCategory(input: {name: "Supports muraux", parentId: $p}) { category { level parentId } } }',
        key,
        p=root_id,
    )
    assert child["data"]["createCategory"]["category"] == {"level": 1, "parentId": root_id}
    tree = await gql(client, "{ categories { name level } }", key)
    assert tree["data"]["categories"] == [
        {"name": "Supports TV", "level": 0},
        {"name": "Supports muraux", "level": 1},
    ]
    made = await gql(
        client,
        'mutation { createSupplier(input: {code: "KIMEX", name: "KIMEX International", country: "fr"}) { supplier { code country } } }',
        key,
    )
    assert made["data"]["createSupplier"]["supplier"] == {"code": "KIMEX", "country": "FR"}
    dup = await gql(
        client,
        'mutation { createSupplier(input: {code: "KIMEX", name: "x"}) { supplier { code } errors { code } } }',
        key,
    )
    assert dup["data"]["createSupplier"]["errors"] == [{"code": "CONFLICT"}]


def test_checked_in_sdl_is_current() -> None:
    path = Path(__file__).resolve().parent.parent / "schema.graphql"
    assert path.read_text() == export_sdl(Settings()), "schema.graphql is stale: run `make schema`"
