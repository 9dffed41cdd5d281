"""The Sylius adapter against a fake Admin API (JWT from administrators/token, JSON-LD,
Hydra pagination, products and product variants)."""

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectors.base import ConnectorConfig
from connectors.http import PlatformError, PlatformHttp
from connectors.sylius import SyliusAdapter
from tests.connectors.exactly_once import CREATED_ONCE as CHECKS
from tests.connectors.exactly_once import FAULTS, Platform, assert_exactly_once_through
from tests.connectors.fakes.sylius import TOKEN_PATH, Sylius
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

TOKEN = "sylius-jwt"
ADMIN = "/api/v2/admin"


def collection(members: list[dict], next_page: str | None = None) -> JSONResponse:
    body: dict = {"@type": "hydra:Collection", "hydra:member": members,
                  "hydra:totalItems": len(members)}  # fmt: skip
    if next_page:
        body["hydra:view"] = {"@type": "hydra:PartialCollectionView", "hydra:next": next_page}
    return JSONResponse(body, media_type="application/ld+json")


class FakeSylius(Fake):
    def __init__(self, catalog: int = 0, refuse: frozenset[str] = frozenset()) -> None:
        super().__init__(bearer(TOKEN))
        self.products: dict[str, dict] = {}
        self.variants: dict[str, dict] = {}
        for i in range(catalog):
            self.store(f"P{i}", f"V{i}", price=1000 + i, on_hand=i)
        self.refuse = refuse
        self.add_routes()

    def store(self, code: str, variant: str, *, price: int, on_hand: int) -> None:
        self.products[code] = {"@id": f"{ADMIN}/products/{code}", "code": code, "enabled": True,
                               "translations": {"fr_FR": {"@id": f"{ADMIN}/product-translations/{code}",
                                                          "locale": "fr_FR", "name": f"Nom {code}"}}}  # fmt: skip
        self.variants[variant] = {"code": variant, "product": f"{ADMIN}/products/{code}", "onHand": on_hand,
                                  "channelPricings": {"WEB": {"@id": f"{ADMIN}/channel-pricings/{variant}",
                                                              "channelCode": "WEB", "price": price}}}  # fmt: skip

    def add_routes(self) -> None:
        @self.route(f"{ADMIN}/administrators/token", "POST", open=True)
        async def token(request: Request) -> Response:
            if await request.json() != {"email": "admin@example.com", "password": "sylius"}:
                return JSONResponse(
                    {"code": 401, "message": "Invalid credentials."}, status_code=401
                )
            return JSONResponse({"token": TOKEN, "adminUser": f"{ADMIN}/administrators/1"})

        @self.route(f"{ADMIN}/channels")
        async def channels(_request: Request) -> Response:
            return collection([{"code": "WEB", "name": "Boutique web"}])

        @self.route(f"{ADMIN}/products", "GET", "POST")
        async def product_list(request: Request) -> Response:
            if request.method == "POST":
                body = await request.json()
                if body["code"] in self.refuse:
                    return JSONResponse({"violations": [{"propertyPath": "code", "message": "Code invalide."}]},
                                        status_code=422)  # fmt: skip
                self.products[body["code"]] = body
                return JSONResponse(body, status_code=201)
            page, size = (
                int(request.query_params["page"]),
                int(request.query_params["itemsPerPage"]),
            )
            members = list(self.products.values())[(page - 1) * size : page * size]
            more = page * size < len(self.products)
            return collection(
                members, f"{ADMIN}/products?itemsPerPage={size}&page={page + 1}" if more else None
            )

        @self.route(f"{ADMIN}/products/{{code}}", "GET", "PUT")
        async def product(request: Request) -> Response:
            code = request.path_params["code"]
            if code not in self.products:
                return JSONResponse({"hydra:description": "Not Found"}, status_code=404)
            if request.method == "PUT":
                self.products[code].update(await request.json())
            return JSONResponse(self.products[code])

        @self.route(f"{ADMIN}/product-variants", "GET", "POST")
        async def variant_list(request: Request) -> Response:
            if request.method == "POST":
                body = await request.json()
                self.variants[body["code"]] = body
                return JSONResponse(body, status_code=201)
            wanted = request.query_params.getlist("product[]")
            return collection([v for v in self.variants.values() if v["product"] in wanted])

        @self.route(f"{ADMIN}/product-variants/{{code}}", "GET", "PUT")
        async def variant(request: Request) -> Response:
            code = request.path_params["code"]
            if request.method == "PUT":
                self.variants[code].update(await request.json())
            return JSONResponse(self.variants[code])


def adapter(base: str, http: PlatformHttp, password: str = "sylius") -> SyliusAdapter:
    config = ConnectorConfig(
        platform="sylius", base_url=base, channel="WEB",
        credentials={"email": "admin@example.com", "password": password},
        options={"page_size": 2},
    )  # fmt: skip
    return SyliusAdapter(config, http)


async def test_connection_test_lists_channels() -> None:
    async with running(FakeSylius()) as (base, http):
        assert await adapter(base, http).test() == "Sylius : 1 channel(s) (Boutique web)"


async def test_wrong_password_is_a_permanent_error() -> None:
    async with running(FakeSylius()) as (base, http):
        await assert_refused_for_good(adapter(base, http, password="nope").test)


async def test_hundred_products_created_or_updated_one_by_one_with_item_errors() -> None:
    fake = FakeSylius(refuse=frozenset({"SKU-010"}))
    fake.store("EXT-005", "SKU-005", price=100, on_hand=1)
    batch = products(100, linked=[5])
    async with running(fake) as (base, http):
        outcomes = await adapter(base, http).push_products(batch)

    assert [o.product_id for o in outcomes] == [p.product_id for p in batch]
    assert outcomes[10].ok is False and "HTTP 422" in (outcomes[10].error or "")
    assert sum(o.ok for o in outcomes) == 99 and outcomes[5].external_id == "EXT-005"
    assert len(fake.to(f"{ADMIN}/products", "POST")) == 99
    assert len(fake.to(f"{ADMIN}/product-variants", "POST")) == 98
    (update,) = fake.to(f"{ADMIN}/products/EXT-005", "PUT")
    assert update.headers["content-type"] == "application/ld+json"
    assert update.json()["translations"]["fr_FR"]["@id"] == f"{ADMIN}/product-translations/EXT-005"
    created = fake.to(f"{ADMIN}/products", "POST")[1].json()
    assert created == {"code": "SKU-001", "enabled": True, "channels": [f"{ADMIN}/channels/WEB"],
                       "translations": {"fr_FR": {"locale": "fr_FR", "name": "Produit 1", "slug": "produit-1-sku-001",
                                                  "description": "Description 1", "shortDescription": "Court 1"}}}  # fmt: skip
    assert fake.variants["SKU-001"]["channelPricings"] == {
        "WEB": {"channelCode": "WEB", "price": 1100}
    }
    assert fake.variants["SKU-001"]["onHand"] == 1


async def test_throttled_product_push_stops_the_chunk_as_transient() -> None:
    fake = FakeSylius()
    async with running(fake) as (base, http):
        fake.fail(429, {"Retry-After": "30"})
        with pytest.raises(PlatformError) as throttled:
            await adapter(base, http).push_products(products(3))
    assert (throttled.value.transient, throttled.value.retry_after) == (True, 30.0)
    assert fake.to(f"{ADMIN}/products", "POST") == []


async def test_pull_follows_hydra_next_and_joins_variants() -> None:
    fake = FakeSylius(catalog=5)
    async with running(fake) as (base, http):
        pages = await all_pages(adapter(base, http))
    assert [[p.external_id for p in page] for page in pages] == [["P0", "P1"], ["P2", "P3"], ["P4"]]
    assert (pages[1][1].sku, pages[1][1].price, pages[1][1].stock, pages[1][1].name) == (
        "V3",
        10.03,
        3,
        "Nom P3",
    )
    lookups = fake.to(f"{ADMIN}/product-variants", "GET")
    assert lookups[0].query.getlist("product[]") == [f"{ADMIN}/products/P0", f"{ADMIN}/products/P1"]


async def test_stock_sends_on_hand_only() -> None:
    fake = FakeSylius(catalog=0)
    for i in range(2):
        fake.store(f"P{i}", f"SKU-00{i}", price=500, on_hand=99)
    async with running(fake) as (base, http):
        outcomes = await adapter(base, http).push_stock(stock_levels(2))
    assert all(o.ok for o in outcomes)
    assert [r.json() for r in fake.received if r.method == "PUT"] == [{"onHand": 0}, {"onHand": 2}]


async def test_prices_update_the_channel_pricing_only() -> None:
    fake = FakeSylius()
    fake.store("P0", "SKU-000", price=500, on_hand=99)
    async with running(fake) as (base, http):
        outcomes = await adapter(base, http).push_prices(price_levels(1))
    assert outcomes[0].ok
    (sent,) = [r.json() for r in fake.received if r.method == "PUT"]
    assert sent == {"channelPricings": {"WEB": {"channelCode": "WEB", "price": 1990,
                                                "@id": f"{ADMIN}/channel-pricings/SKU-000"}}}  # fmt: skip


async def test_throttling_outage_and_refusal_are_mapped() -> None:
    fake = FakeSylius(catalog=1)
    async with running(fake) as (base, http):
        client = adapter(base, http)
        await check_error_mapping(fake, lambda: first_page(client))


def strict_sylius(fake: Sylius) -> Platform:
    credentials = {"email": "admin@example.com", "password": "sylius"}
    return Platform(
        fake.app(), fake.sessions,
        lambda base: ConnectorConfig("sylius", base, credentials, channel="WEB"),
        writes=f"{ADMIN}/products", login=TOKEN_PATH,
        records=lambda: set(fake.products) & fake.complete(), token_calls=100,
    )  # fmt: skip


@pytest.mark.parametrize("check", sorted(CHECKS))
async def test_each_product_exists_once_with_its_variant_whatever_sylius_answers(
    check: str,
) -> None:
    await CHECKS[check](strict_sylius(Sylius()))


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_a_variant_whose_answer_was_lost_is_not_created_again(fault: str) -> None:
    platform = strict_sylius(Sylius())
    platform.writes = f"{ADMIN}/product-variants"
    await assert_exactly_once_through(platform, fault)
