"""Each platform adapter against its fake on loopback: test, push in chunks, pull with the
platform's pagination, stock, prices, and the platform's rate-limit and 5xx signals."""

import uuid
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.base import (
    CHUNK_SIZE,
    NOT_LINKED,
    ConnectorConfig,
    OutgoingProduct,
    PlatformAdapter,
    PriceLevel,
    StockLevel,
    adapter_for,
)
from connectors.base import PLATFORMS as EVERY_PLATFORM
from connectors.http import ConnectorUnusable, PlatformError, PlatformHttp
from pim import outbound
from tests.connectors.fakes.stores import FAKES, SHOPIFY_CLIENT, SHOPIFY_SUPPORTED, StoreFake
from tests.connectors.helpers import LOOPBACK, products
from tests.loopback import serve

PLATFORMS = sorted(FAKES)


@pytest.fixture(params=PLATFORMS)
async def platform(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[StoreFake, PlatformAdapter]]:
    fake = FAKES[request.param]()
    async with serve(fake.app()) as url, outbound.client() as client:
        fields = fake.connector(url)
        config = ConnectorConfig(
            platform=fields["platform"], base_url=fields["base_url"],
            credentials=fields["credentials"],
        )  # fmt: skip
        yield fake, adapter_for(config, PlatformHttp(client, LOOPBACK))


async def test_test_checks_auth_and_reachability(
    platform: tuple[StoreFake, PlatformAdapter],
) -> None:
    fake, adapter = platform
    assert await adapter.test()
    assert fake.writes == 0


async def test_wrong_credentials_are_a_permanent_error(
    platform: tuple[StoreFake, PlatformAdapter],
) -> None:
    _fake, adapter = platform
    for name in adapter.config.credentials:
        adapter.config.credentials[name] = "wrong"
    with pytest.raises(PlatformError) as caught:
        await adapter.test()
    assert caught.value.status == 401 and not caught.value.transient


async def test_push_creates_then_updates_by_the_platform_id(
    platform: tuple[StoreFake, PlatformAdapter],
) -> None:
    fake, adapter = platform
    batch = products(CHUNK_SIZE)
    outcomes = await adapter.push_products(batch)
    assert [o.product_id for o in outcomes] == [p.product_id for p in batch]
    assert all(o.ok and o.external_id for o in outcomes)
    assert len(fake.products) == CHUNK_SIZE
    assert fake.by_sku()["SKU-007"].price == 17.0

    renamed = [
        OutgoingProduct(
            product_id=p.product_id,
            sku=p.sku,
            ean=None,
            name="Renommé",
            price=p.price,
            external_id=o.external_id,
        )
        for p, o in zip(batch[:3], outcomes, strict=False)
    ]
    again = await adapter.push_products(renamed)
    assert all(o.ok for o in again)
    assert len(fake.products) == CHUNK_SIZE
    assert fake.by_sku()["SKU-001"].name == "Renommé"


async def test_pull_follows_the_platforms_pagination(
    platform: tuple[StoreFake, PlatformAdapter],
) -> None:
    fake, adapter = platform
    fake.seed(260)
    pages = [page async for page in adapter.pull_products()]
    assert len(pages) >= 2
    pulled = [p for page in pages for p in page]
    assert sorted(p.sku for p in pulled if p.sku) == sorted(fake.by_sku())
    assert len({p.external_id for p in pulled}) == 260


async def test_push_stock_and_prices(platform: tuple[StoreFake, PlatformAdapter]) -> None:
    fake, adapter = platform
    batch = products(3)
    linked = await adapter.push_products(batch)
    levels = [StockLevel(p.product_id, p.sku, 40 + i, o.external_id)
              for i, (p, o) in enumerate(zip(batch, linked, strict=True))]  # fmt: skip
    assert all(o.ok for o in await adapter.push_stock(levels))
    assert [fake.by_sku()[p.sku].stock for p in batch] == [40, 41, 42]
    prices = [PriceLevel(p.product_id, p.sku, 99.5, "EUR", o.external_id)
              for p, o in zip(batch, linked, strict=True)]  # fmt: skip
    assert all(o.ok for o in await adapter.push_prices(prices))
    assert {fake.by_sku()[p.sku].price for p in batch} == {99.5}


@pytest.mark.parametrize("name", ["woocommerce", "shopify", "bigcommerce"])
async def test_platforms_addressing_by_id_refuse_unlinked_stock(name: str) -> None:
    fake = FAKES[name]()
    async with serve(fake.app()) as url, outbound.client() as client:
        fields = fake.connector(url)
        config = ConnectorConfig(name, fields["base_url"], fields["credentials"])
        adapter = adapter_for(config, PlatformHttp(client, LOOPBACK))
        [outcome] = await adapter.push_stock([StockLevel(uuid.uuid4(), "X", 3)])
    assert not outcome.ok and outcome.error == NOT_LINKED


async def test_rate_limit_is_transient_with_the_platforms_wait(
    platform: tuple[StoreFake, PlatformAdapter],
) -> None:
    fake, adapter = platform
    fake.errors.append(fake.throttle)
    with pytest.raises(PlatformError) as caught:
        await adapter.push_products(products(2))
    assert caught.value.transient
    expected = {"shopify": 0.4, "bigcommerce": 1.5}.get(adapter.platform, 1.0)
    assert caught.value.retry_after == pytest.approx(expected)
    assert all(o.ok for o in await adapter.push_products(products(2)))


async def test_server_errors_are_transient_and_client_errors_permanent(
    platform: tuple[StoreFake, PlatformAdapter],
) -> None:
    fake, adapter = platform
    fake.errors.append((503, {}))
    with pytest.raises(PlatformError) as caught:
        await adapter.test()
    assert caught.value.transient and caught.value.status == 503
    fake.errors.append((400, {}))
    with pytest.raises(PlatformError) as refused:
        await adapter.test()
    assert not refused.value.transient


async def test_shopify_asks_for_an_admin_api_version_shopify_still_supports() -> None:
    fake = FAKES["shopify"]()
    async with serve(fake.app()) as url, outbound.client() as client:
        fields = fake.connector(url)
        for options, version in (({}, "2026-10"), ({"api_version": "2026-07"}, "2026-07")):
            config = ConnectorConfig(
                platform="shopify", base_url=url, credentials=fields["credentials"],
                options=options,
            )  # fmt: skip
            http = PlatformHttp(client, LOOPBACK)
            assert await adapter_for(config, http).test()
            assert fake.requests[-1] == ("POST", f"/admin/api/{version}/graphql.json")
            # Shopify serves it as asked (an unsupported one falls forward).
            assert version in SHOPIFY_SUPPORTED


async def test_a_shopify_dev_dashboard_app_signs_in_with_its_client_credentials() -> None:
    # No app can be created in a shop's admin since January 2026: a Dev Dashboard app
    # gives a client id and secret, for a token that lasts 24 hours.
    fake = FAKES["shopify"]()
    token_path = "/admin/oauth/access_token"
    async with serve(fake.app()) as url, outbound.client() as client:

        def adapter(credentials: dict[str, str]) -> PlatformAdapter:
            config = ConnectorConfig(platform="shopify", base_url=url, credentials=credentials)
            return adapter_for(config, PlatformHttp(client, LOOPBACK))

        granted = adapter(SHOPIFY_CLIENT)
        assert await granted.test() == "Pixee Demo Shop"
        outcomes = await granted.push_products(products(60))
        assert all(o.ok for o in outcomes) and len(fake.products) == 60
        # One token for the test and the three requests of the push.
        assert [path for _method, path in fake.requests].count(token_path) == 1

        with pytest.raises(PlatformError) as refused:
            await adapter({**SHOPIFY_CLIENT, "client_secret": "wrong"}).test()
    assert refused.value.status == 400 and not refused.value.transient
    assert fake.requests[-1] == ("POST", token_path)  # nothing sent without a token


def refusing() -> Starlette:
    """A platform that refuses every request: what an adapter without credentials meets."""

    async def refuse(_request: Request) -> Response:
        return JSONResponse({"message": "unauthorized"}, status_code=401)

    return Starlette(routes=[Route("/{path:path}", refuse, methods=["GET", "POST", "PUT"])])


@pytest.mark.parametrize("name", sorted(EVERY_PLATFORM))
async def test_a_connector_without_what_its_platform_requires_is_told_so(name: str) -> None:
    # A key an adapter requires and the connector lacks was a KeyError: the test route
    # answered an internal error, a job failed with "erreur interne : KeyError".
    async with serve(refusing()) as url, outbound.client() as client:
        config = ConnectorConfig(platform=name, base_url=url, credentials={})
        with pytest.raises(PlatformError) as refused:
            await adapter_for(config, PlatformHttp(client, LOOPBACK)).test()
    # The platform's refusal, or what is missing named before anything is sent.
    message = refused.value.message
    assert refused.value.status == 401 or "manquant" in message or "requis" in message


async def test_the_missing_key_is_named() -> None:
    config = ConnectorConfig(platform="sfcc", base_url="https://sfcc.example", credentials={})
    # An empty token is no token: Magento then signs in as an admin, and says who is missing.
    blank = ConnectorConfig(platform="magento", base_url="https://shop.example",
                            credentials={"access_token": ""})  # fmt: skip
    async with outbound.client() as client:
        with pytest.raises(ConnectorUnusable, match="magento : « username » manquant"):
            await adapter_for(blank, PlatformHttp(client, LOOPBACK)).test()
        with pytest.raises(
            ConnectorUnusable, match="sfcc : « client_id » manquant dans credentials"
        ):
            adapter_for(config, PlatformHttp(client, LOOPBACK))


# Credentials enough for each adapter to reach its first request.
EVERY_CREDENTIAL = dict.fromkeys(
    ("access_token", "api_key", "client_id", "client_secret", "email", "key", "partner_id",
     "password", "refresh_token", "seller_id", "shop_id", "username"), "x",
)  # fmt: skip


@pytest.mark.parametrize(
    "name", ["medusa", "mirakl", "saleor", "sap_commerce", "shopware", "sylius"]
)
async def test_a_connector_saved_without_the_address_its_platform_needs_is_told_so(
    name: str,
) -> None:
    config = ConnectorConfig(platform=name, base_url=None, credentials=EVERY_CREDENTIAL,
                             options={"channel": "WEB"})  # fmt: skip
    async with outbound.client() as client:
        with pytest.raises(PlatformError, match=r"base_url du connecteur manquante"):
            await adapter_for(config, PlatformHttp(client, LOOPBACK)).test()
