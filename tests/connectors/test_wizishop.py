"""The WiziShop adapter against a fake of its API v3 (login JWT, shop products, SKUs)."""

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectors.base import ConnectorConfig
from connectors.http import PlatformHttp
from connectors.wizishop import WizishopAdapter
from tests.connectors.exactly_once import CREATED_ONCE as CHECKS
from tests.connectors.exactly_once import Platform
from tests.connectors.fakes.wizishop import TOKEN_PATH, Wizishop
from tests.connectors.helpers import (
    Fake,
    all_pages,
    assert_refused_for_good,
    bearer,
    check_error_mapping,
    first_page,
    price_levels,
    products,
    running,
    stock_levels,
)

TOKEN = "wizishop-jwt"
SHOP = "/v3/shops/42"


class FakeWizishop(Fake):
    def __init__(self, catalog: int = 0, refuse: frozenset[str] = frozenset()) -> None:
        super().__init__(bearer(TOKEN))
        self.products: dict[str, dict] = {
            f"{900 + i}": {"id": 900 + i, "name": f"Remote {i}", "status": "visible",
                           "skus": [{"sku": f"R-{i}", "ean13": f"376{i}", "price": 4.5, "stock": i}]}
            for i in range(catalog)
        }  # fmt: skip
        self.refuse = refuse
        self.add_routes()

    def add_routes(self) -> None:
        @self.route("/v3/auth/login", "POST", open=True)
        async def login(request: Request) -> Response:
            if await request.json() != {"username": "shop@example.com", "password": "pw"}:
                return JSONResponse({"message": "Bad credentials"}, status_code=401)
            return JSONResponse(
                {"token": TOKEN, "default_shop_id": 42, "account_id": 7}, status_code=201
            )

        @self.route(f"{SHOP}/products", "GET", "POST")
        async def product_list(request: Request) -> Response:
            if request.method == "POST":
                body = await request.json()
                if body["skus"][0]["sku"] in self.refuse:
                    return JSONResponse({"message": "Le nom est trop long"}, status_code=400)
                body["id"] = 1000 + len(self.products)
                self.products[str(body["id"])] = body
                return JSONResponse(body, status_code=201)
            query = request.query_params
            if "sku" in query:
                found = [p for p in self.products.values() if p["skus"][0]["sku"] == query["sku"]]
                return JSONResponse({"results": found, "total": len(found)})
            page, limit = int(query["page"]), int(query["limit"])
            everything = list(self.products.values())
            return JSONResponse({"results": everything[(page - 1) * limit:page * limit],
                                 "total": len(everything), "page": page, "limit": limit})  # fmt: skip

        @self.route(f"{SHOP}/products/{{id}}", "PUT")
        async def product(request: Request) -> Response:
            self.products[request.path_params["id"]].update(await request.json())
            return JSONResponse(self.products[request.path_params["id"]])

        @self.route(f"{SHOP}/skus/{{sku}}", "PUT")
        async def sku(request: Request) -> Response:
            return JSONResponse({"sku": request.path_params["sku"], **await request.json()})


def adapter(base: str, http: PlatformHttp, password: str = "pw") -> WizishopAdapter:
    config = ConnectorConfig(
        platform="wizishop", base_url=base,
        credentials={"username": "shop@example.com", "password": password},
        options={"page_size": 2},
    )  # fmt: skip
    return WizishopAdapter(config, http)


async def test_connection_test_counts_products() -> None:
    async with running(FakeWizishop(catalog=3)) as (base, http):
        assert await adapter(base, http).test() == "WiziShop : boutique 42, 3 produit(s)"


async def test_wrong_password_is_a_permanent_error() -> None:
    async with running(FakeWizishop()) as (base, http):
        await assert_refused_for_good(adapter(base, http, password="nope").test)


async def test_hundred_products_created_or_updated_with_item_errors() -> None:
    fake = FakeWizishop(refuse=frozenset({"SKU-017"}))
    fake.products["555"] = {"id": 555, "name": "Déjà là", "skus": [{"sku": "SKU-008"}]}
    fake.products["EXT-004"] = {"id": "EXT-004", "name": "Lié", "skus": [{"sku": "SKU-004"}]}
    batch = products(100, linked=[4])
    async with running(fake) as (base, http):
        outcomes = await adapter(base, http).push_products(batch)

    assert [o.product_id for o in outcomes] == [p.product_id for p in batch]
    assert (outcomes[17].ok, "HTTP 400" in (outcomes[17].error or "")) == (False, True)
    assert sum(o.ok for o in outcomes) == 99
    assert (outcomes[4].external_id, outcomes[8].external_id) == ("EXT-004", "555")
    assert len(fake.to(f"{SHOP}/products", "POST")) == 98
    assert [r.path for r in fake.received if r.method == "PUT"] == [
        f"{SHOP}/products/EXT-004", f"{SHOP}/products/555"
    ]  # fmt: skip
    assert fake.to(f"{SHOP}/products", "POST")[0].json() == {
        "name": "Produit 0", "description": "Description 0", "short_description": "Court 0",
        "brand": "Pixee", "status": "visible",
        "skus": [{"sku": "SKU-000", "ean13": "3760000000000", "price": 10.0, "stock": 0, "weight": 0.5}],
    }  # fmt: skip


async def test_pull_pages_until_total() -> None:
    fake = FakeWizishop(catalog=4)
    async with running(fake) as (base, http):
        pages = await all_pages(adapter(base, http))
    assert [[p.sku for p in page] for page in pages] == [["R-0", "R-1"], ["R-2", "R-3"]]
    assert (pages[0][1].external_id, pages[0][1].ean, pages[0][1].stock) == ("901", "3761", 1)
    assert len(fake.to(f"{SHOP}/products", "GET")) == 2  # the total stops it, no empty page


async def test_stock_replaces_sku_quantities_only() -> None:
    fake = FakeWizishop()
    async with running(fake) as (base, http):
        outcomes = await adapter(base, http).push_stock(stock_levels(2))
    assert all(o.ok for o in outcomes)
    assert [(r.path, r.json()) for r in fake.received if r.method == "PUT"] == [
        (f"{SHOP}/skus/SKU-000", {"method": "replace", "stock": 0}),
        (f"{SHOP}/skus/SKU-001", {"method": "replace", "stock": 2}),
    ]


async def test_prices_send_sku_prices_only() -> None:
    fake = FakeWizishop()
    async with running(fake) as (base, http):
        outcomes = await adapter(base, http).push_prices(price_levels(1))
    assert outcomes[0].ok
    assert [r.json() for r in fake.received if r.method == "PUT"] == [{"price": 19.9}]


async def test_throttling_outage_and_refusal_are_mapped() -> None:
    fake = FakeWizishop(catalog=1)
    async with running(fake) as (base, http):
        client = adapter(base, http)
        await check_error_mapping(fake, lambda: first_page(client))


def strict_wizishop() -> Platform:
    fake = Wizishop()
    credentials = {"username": "shop@example.com", "password": "pw"}
    return Platform(
        fake.app(), fake.sessions, lambda base: ConnectorConfig("wizishop", base, credentials),
        writes=f"{SHOP}/products", login=TOKEN_PATH, records=lambda: set(fake.products),
        token_calls=100,
    )  # fmt: skip


@pytest.mark.parametrize("check", sorted(CHECKS))
async def test_each_product_exists_once_whatever_wizishop_answers(check: str) -> None:
    await CHECKS[check](strict_wizishop())
