"""The Cdiscount adapter against a fake of the Octopia Seller API v2 (Keycloak token,
SellerId header, product integration packages and reports, offer packages, offers)."""

from collections.abc import Sequence

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectors.base import ConnectorConfig, OutgoingProduct
from connectors.cdiscount import CdiscountAdapter
from connectors.http import PlatformHttp
from tests.connectors.exactly_once import (
    FAULTS,
    assert_sent_again,
    outgoing,
    push_redirected_elsewhere,
    push_redirected_on_host,
    push_through_fault,
    push_with_expiring_tokens,
)
from tests.connectors.fakes import cdiscount as octopia
from tests.connectors.helpers import (
    Fake,
    all_pages,
    assert_refused_for_good,
    check_error_mapping,
    first_page,
    price_levels,
    products,
    running,
    stock_levels,
)

TOKEN = "octopia-token"
API = "/seller/v2"
TOKEN_PATH = "/auth/realms/maas/protocol/openid-connect/token"


def authorized(request: Request, _body: bytes) -> bool:
    return (request.headers.get("authorization"), request.headers.get("sellerid")) == (
        f"Bearer {TOKEN}", "SELLER1"
    )  # fmt: skip


class FakeOctopia(Fake):
    def __init__(self, offers: int = 0, refuse: frozenset[str] = frozenset()) -> None:
        super().__init__(authorized)
        self.offers = [{"offerId": f"O{i}", "sellerExternalReference": f"REF-{i}",
                        "product": {"gtin": f"376{i}", "title": f"Offre {i}"}, "condition": "New",
                        "price": {"price": 9.5 + i, "currencyCode": "EUR"}, "quantity": i}
                       for i in range(offers)]  # fmt: skip
        self.refuse = refuse
        self.sheets: list[dict] = []
        self.offer_requests: dict[str, list[dict]] = {}
        self.report_polls = 0
        self.add_routes()

    def add_routes(self) -> None:
        @self.route(TOKEN_PATH, "POST", open=True)
        async def token(request: Request) -> Response:
            form = await request.form()
            if (form["grant_type"], form["client_id"], form["client_secret"]) != (
                "client_credentials", "pim", "secret"
            ):  # fmt: skip
                return JSONResponse({"error": "unauthorized_client"}, status_code=401)
            return JSONResponse({"access_token": TOKEN, "expires_in": 7200, "token_type": "Bearer"})

        @self.route(f"{API}/sellers")
        async def sellers(_request: Request) -> Response:
            return JSONResponse({"sellerId": "SELLER1", "name": "Boutique Pixee"})

        @self.route(f"{API}/products-integration", "POST")
        async def integrate(request: Request) -> Response:
            self.sheets = (await request.json())["products"]
            return JSONResponse({"packageId": "4242"}, status_code=202)

        @self.route(f"{API}/products-integration-reports")
        async def reports(request: Request) -> Response:
            assert request.query_params["packageId"] == "4242"
            self.report_polls += 1
            # Octopia integrates a package progressively: half of it at the first poll.
            sheets = self.sheets if self.report_polls > 1 else self.sheets[: len(self.sheets) // 2]
            items = [
                {"sellerProductReference": s["sellerProductReference"], "status": "Refused",
                 "errors": [{"code": "ER400-6067", "message": "L'attribut est requis"}]}
                if s["sellerProductReference"] in self.refuse else
                {"sellerProductReference": s["sellerProductReference"], "status": "Integrated"}
                for s in sheets
            ]  # fmt: skip
            return JSONResponse({"items": items, "itemsPerPage": 100})

        @self.route(f"{API}/offer-packages", "POST")
        async def offer_package(request: Request) -> Response:
            assert await request.json() == {"packageType": "Update"}
            package = f"op-{len(self.offer_requests) + 1}"
            self.offer_requests[package] = []
            # Octopia names the new package by its location.
            location = {"content-location": f"{API}/offer-packages/{package}"}
            return Response(status_code=201, headers=location)

        @self.route(f"{API}/offer-packages/{{package}}/offer-requests", "POST")
        async def offer_requests(request: Request) -> Response:
            self.offer_requests[request.path_params["package"]] += await request.json()
            return JSONResponse({"accepted": True})

        @self.route(f"{API}/offer-packages/{{package}}", "PATCH")
        async def ready(request: Request) -> Response:
            assert await request.json() == {"state": "Ready"}
            return Response(status_code=204)

        @self.route(f"{API}/offer-packages/{{package}}/offer-requests-results")
        async def results(request: Request) -> Response:
            requests = self.offer_requests[request.path_params["package"]]
            return JSONResponse({"itemsPerPage": len(requests), "items": [
                {"sellerExternalReference": r["sellerExternalReference"], "integrationStatus": "Rejected",
                 "results": [{"resultCode": "4012", "message": "Prix hors bornes"}]}
                if r["sellerExternalReference"] in self.refuse else
                {"sellerExternalReference": r["sellerExternalReference"], "integrationStatus": "Integrated",
                 "results": [{"resultCode": "8000", "message": "Offer updated"}]}
                for r in requests
            ]})  # fmt: skip

        @self.route(f"{API}/offers")
        async def offers(request: Request) -> Response:
            assert request.query_params["salesChannelId"] == "CDISFR"
            page, size = (
                int(request.query_params["pageIndex"]),
                int(request.query_params["pageSize"]),
            )
            return JSONResponse({"items": self.offers[(page - 1) * size:page * size],
                                 "itemsPerPage": size, "currentPageIndex": page})  # fmt: skip


def adapter(
    base: str, http: PlatformHttp, secret: str = "secret", polls: int = 5
) -> CdiscountAdapter:
    config = ConnectorConfig(
        platform="cdiscount", base_url=f"{base}{API}",
        credentials={"client_id": "pim", "client_secret": secret, "seller_id": "SELLER1"},
        options={"token_url": f"{base}{TOKEN_PATH}", "page_size": 2, "report_wait": 0,
                 "report_polls": polls},
    )  # fmt: skip
    return CdiscountAdapter(config, http)


async def test_connection_test_names_the_seller() -> None:
    async with running(FakeOctopia()) as (base, http):
        assert await adapter(base, http).test() == "Cdiscount : vendeur Boutique Pixee"


async def test_wrong_client_secret_is_a_permanent_error() -> None:
    async with running(FakeOctopia()) as (base, http):
        await assert_refused_for_good(adapter(base, http, secret="nope").test)


async def test_hundred_product_sheets_in_one_package_with_report_per_sheet() -> None:
    fake = FakeOctopia(refuse=frozenset({"SKU-021"}))
    batch = products(100)
    async with running(fake) as (base, http):
        outcomes = await adapter(base, http).push_products(batch)

    assert [o.product_id for o in outcomes] == [p.product_id for p in batch]
    assert (outcomes[21].ok, outcomes[21].error) == (False, "ER400-6067 L'attribut est requis")
    assert sum(o.ok for o in outcomes) == 99 and outcomes[99].external_id == "SKU-099"
    assert len(fake.to(f"{API}/products-integration", "POST")) == 1
    assert fake.sheets[3] == {"gtin": "3760000000003", "sellerProductReference": "SKU-003",
                              "title": "Produit 3", "description": "Description 3", "brand": "Pixee"}  # fmt: skip
    assert fake.report_polls == 2


async def test_unreported_sheets_are_transient() -> None:
    fake = FakeOctopia()
    async with running(fake) as (base, http):
        outcomes = await adapter(base, http, polls=1).push_products(products(4))
    assert [(o.ok, o.transient) for o in outcomes] == [(True, False)] * 2 + [(False, True)] * 2


async def test_pull_pages_through_offers() -> None:
    fake = FakeOctopia(offers=3)
    async with running(fake) as (base, http):
        pages = await all_pages(adapter(base, http))
    assert [[p.sku for p in page] for page in pages] == [["REF-0", "REF-1"], ["REF-2"]]
    remote = pages[0][1]
    assert (remote.price, remote.stock, remote.ean, remote.name) == (10.5, 1, "3761", "Offre 1")


async def test_stock_goes_in_an_offer_package_with_quantities_only() -> None:
    fake = FakeOctopia()
    async with running(fake) as (base, http):
        outcomes = await adapter(base, http).push_stock(stock_levels(2))
    assert all(o.ok for o in outcomes)
    assert fake.offer_requests == {"op-1": [
        {"sellerExternalReference": f"SKU-00{i}", "quantity": i * 2} for i in range(2)
    ]}  # fmt: skip
    assert len(fake.to(f"{API}/offer-packages/op-1", "PATCH")) == 1


async def test_prices_go_in_an_offer_package_with_prices_only() -> None:
    fake = FakeOctopia(refuse=frozenset({"SKU-001"}))
    async with running(fake) as (base, http):
        outcomes = await adapter(base, http).push_prices(price_levels(2))
    assert [(o.ok, o.error) for o in outcomes] == [(True, None), (False, "4012 Prix hors bornes")]
    assert fake.offer_requests == {"op-1": [
        {"sellerExternalReference": f"SKU-00{i}", "price": {"price": 19.9 + i}} for i in range(2)
    ]}  # fmt: skip


async def test_throttling_outage_and_refusal_are_mapped() -> None:
    fake = FakeOctopia(offers=1)
    async with running(fake) as (base, http):
        client = adapter(base, http)
        await check_error_mapping(fake, lambda: first_page(client))


# --- exactly once, against the strict Octopia of tests.connectors.fakes.cdiscount ---------
# 250 products go as three packages of at most 100 sheets (the adapter's chunk size).
SHEETS = f"{octopia.API}/products-integration"


def seller_adapter(base: str, http: PlatformHttp) -> CdiscountAdapter:
    config = ConnectorConfig(
        platform="cdiscount", base_url=f"{base}{octopia.API}",
        credentials={"client_id": octopia.CLIENT_ID, "client_secret": octopia.CLIENT_SECRET,
                     "seller_id": octopia.SELLER_ID},
        options={"token_url": f"{base}{octopia.TOKEN_PATH}", "report_wait": 0},
    )  # fmt: skip
    return CdiscountAdapter(config, http)


def assert_sheets_exist_once(
    seller: octopia.Octopia, products: Sequence[OutgoingProduct], links: dict
) -> None:
    assert sorted(seller.products) == sorted(p.sku for p in products)
    assert links == {p.product_id: p.sku for p in products}  # linked by seller reference
    # A sheet sent again went in another package under the same reference: an upsert.
    sent = [s["sellerProductReference"] for pkg in seller.packages.values() for s in pkg.sheets]
    assert sorted(set(sent)) == sorted(seller.products) and len(sent) == seller.sheet_sends.total()


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_250_sheets_exist_once_whatever_octopia_answers(fault: str) -> None:
    seller, products = octopia.Octopia(), outgoing()
    links, _rule = await push_through_fault(seller.app(), seller_adapter, fault, SHEETS, products)
    assert_sheets_exist_once(seller, products, links)
    assert_sent_again(fault, seller.sheet_sends)


async def test_an_expired_octopia_token_is_renewed_and_the_push_goes_on() -> None:
    """Octopia's tokens last two hours: one refused mid-push is renewed once, and the
    call it refused is sent again (a 401 means it was not processed)."""
    seller, products = octopia.Octopia(), outgoing()
    links, expiry = await push_with_expiring_tokens(
        seller.app(), seller_adapter, products, header="authorization", calls=3,
        login=octopia.TOKEN_PATH,
    )  # fmt: skip
    assert expiry.refusals >= 2 and seller.tokens_issued == expiry.refusals + 1
    assert_sheets_exist_once(seller, products, links)
    assert max(seller.sheet_sends.values()) == 1


async def test_a_package_redirected_on_the_same_host_is_followed_once() -> None:
    seller, products = octopia.Octopia(), outgoing()
    links, _redirect = await push_redirected_on_host(seller.app(), seller_adapter, SHEETS, products)
    assert_sheets_exist_once(seller, products, links)
    assert max(seller.sheet_sends.values()) == 1


async def test_a_package_redirected_to_another_host_is_refused_and_keeps_the_token_home() -> None:
    seller, elsewhere = octopia.Octopia(), octopia.Octopia()
    await push_redirected_elsewhere(seller.app(), seller_adapter, SHEETS, outgoing(100),
                                    elsewhere=elsewhere.app())  # fmt: skip
    assert elsewhere.credentials == [] and elsewhere.packages == {}
    assert seller.packages == {} and seller.products == {}
