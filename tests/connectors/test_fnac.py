"""The Fnac adapter against a fake of the marketplace's XML services (auth token,
offers_update + batch_status, offers_query paging)."""

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from starlette.requests import Request
from starlette.responses import Response

from connectors.base import ConnectorConfig, OutgoingProduct
from connectors.fnac import SESSION_SECONDS, FnacAdapter, session_lifetime
from connectors.http import PlatformError, PlatformHttp
from tests.connectors.exactly_once import (
    FAULTS,
    assert_sent_again,
    outgoing,
    push_all,
    push_redirected_elsewhere,
    push_redirected_on_host,
    push_through_fault,
    served,
)
from tests.connectors.fakes import fnac as fnac_fake
from tests.connectors.fakes.faults import Faults
from tests.connectors.helpers import (
    Fake,
    all_pages,
    check_error_mapping,
    first_page,
    price_levels,
    products,
    running,
    stock_levels,
)

NS = "{http://www.fnac.com/schemas/mp-dialog.xsd}"
TOKEN = "fnac-token"
API = "/api.php"


def xml(body: str) -> Response:
    return Response(f'<?xml version="1.0" encoding="utf-8"?>{body}', media_type="text/xml")


def parsed(body: bytes) -> ET.Element:
    return ET.fromstring(body)


def signed(_request: Request, body: bytes) -> bool:
    root = parsed(body)
    return (root.get("partner_id"), root.get("shop_id"), root.get("token")) == (
        "PARTNER",
        "SHOP",
        TOKEN,
    )


class FakeFnac(Fake):
    def __init__(self, offers: int = 0, refuse: frozenset[str] = frozenset()) -> None:
        super().__init__(signed)
        self.catalog = [f"OFF-{i}" for i in range(offers)]
        self.refuse = refuse
        self.batches: dict[str, list[str]] = {}
        self.polls = 0
        self.add_routes()

    def add_routes(self) -> None:
        @self.route(f"{API}/auth", "POST", open=True)
        async def auth(request: Request) -> Response:
            root = parsed(await request.body())
            given = [root.findtext(f"{NS}{name}") for name in ("partner_id", "shop_id", "key")]
            if given != ["PARTNER", "SHOP", "KEY"]:
                return xml(f'<auth_response xmlns="{NS[1:-1]}" status="FATAL">'
                           '<error code="ERR_001">Identifiants invalides</error></auth_response>')  # fmt: skip
            return xml(f'<auth_response xmlns="{NS[1:-1]}" status="OK"><token>{TOKEN}</token>'
                       "<validity>2026-11-22T10:00:00+01:00</validity></auth_response>")  # fmt: skip

        @self.route(f"{API}/offers_update", "POST")
        async def offers_update(request: Request) -> Response:
            batch_id = str(uuid.uuid4()).upper()
            root = parsed(await request.body())
            self.batches[batch_id] = [
                o.findtext(f"{NS}offer_reference") or "" for o in root.iter(f"{NS}offer")
            ]
            return xml(f'<offers_update_response xmlns="{NS[1:-1]}" status="OK">'
                       f"<batch_id>{batch_id}</batch_id></offers_update_response>")  # fmt: skip

        @self.route(f"{API}/batch_status", "POST")
        async def batch_status(request: Request) -> Response:
            batch_id = parsed(await request.body()).findtext(f"{NS}batch_id") or ""
            self.polls += 1
            if self.polls % 2:  # Fnac processes the batch between two polls
                return xml(f'<batch_status_response xmlns="{NS[1:-1]}" status="ACTIVE">'
                           f"<batch_id>{batch_id}</batch_id></batch_status_response>")  # fmt: skip
            offers = "".join(
                f'<offer status="ERROR"><offer_seller_id>{sku}</offer_seller_id>'
                f'<error code="ERR_105">Produit inconnu : {sku}</error></offer>'
                if sku in self.refuse else
                f'<offer status="OK"><offer_seller_id>{sku}</offer_seller_id></offer>'
                for sku in self.batches[batch_id]
            )  # fmt: skip
            # Like Fnac: a batch with any offer in error finishes with status ERROR.
            status = "ERROR" if set(self.batches[batch_id]) & self.refuse else "OK"
            return xml(f'<batch_status_response xmlns="{NS[1:-1]}" status="{status}">'
                       f"<batch_id>{batch_id}</batch_id>{offers}</batch_status_response>")  # fmt: skip

        @self.route(f"{API}/offers_query", "POST")
        async def offers_query(request: Request) -> Response:
            root = parsed(await request.body())
            page, size = (
                int(root.findtext(f"{NS}paging") or 1),
                int(root.get("results_count") or 100),
            )
            pages = max(1, -(-len(self.catalog) // size))
            offers = "".join(
                f"<offer><product_name>Nom {sku}</product_name><offer_seller_id>{sku}</offer_seller_id>"
                f"<price>12.5</price><quantity>4</quantity><description>Neuf</description></offer>"
                for sku in self.catalog[(page - 1) * size:page * size]
            )  # fmt: skip
            return xml(f'<offers_query_response xmlns="{NS[1:-1]}" status="OK"><page>{page}</page>'
                       f"<total_paging>{pages}</total_paging><nb_total_per_page>{size}</nb_total_per_page>"
                       f"<nb_total_result>{len(self.catalog)}</nb_total_result>{offers}</offers_query_response>")  # fmt: skip


def adapter(base: str, http: PlatformHttp, key: str = "KEY") -> FnacAdapter:
    config = ConnectorConfig(
        platform="fnac", base_url=f"{base}{API}",
        credentials={"partner_id": "PARTNER", "shop_id": "SHOP", "key": key},
        options={"page_size": 2}, poll_interval_seconds=0.001,
    )  # fmt: skip
    return FnacAdapter(config, http)


def sent_offers(fake: FakeFnac) -> list[list[dict[str, str]]]:
    return [
        [{child.tag.removeprefix(NS): child.text or "" for child in offer}
         for offer in parsed(r.body).iter(f"{NS}offer")]
        for r in fake.to(f"{API}/offers_update")
    ]  # fmt: skip


async def test_connection_test_counts_offers() -> None:
    async with running(FakeFnac(offers=3)) as (base, http):
        assert await adapter(base, http).test() == "Fnac : boutique SHOP, 3 offre(s)"


async def test_wrong_key_is_a_permanent_error() -> None:
    async with running(FakeFnac()) as (base, http):
        with pytest.raises(PlatformError, match="Identifiants invalides") as refused:
            await adapter(base, http, key="nope").test()
    assert refused.value.transient is False


async def test_hundred_products_in_one_offers_update_with_batch_status_per_offer() -> None:
    fake = FakeFnac(refuse=frozenset({"SKU-013"}))
    batch = [*products(99), OutgoingProduct(uuid.uuid4(), sku="NO-EAN", ean=None, name="Sans EAN")]
    async with running(fake) as (base, http):
        outcomes = await adapter(base, http).push_products(batch)

    assert [o.product_id for o in outcomes] == [p.product_id for p in batch]
    assert outcomes[13].ok is False and outcomes[13].error == "Produit inconnu : SKU-013"
    assert (outcomes[99].ok, outcomes[99].error) == (False, "EAN requis pour une offre Fnac")
    assert sum(o.ok for o in outcomes) == 98 and outcomes[0].external_id == "SKU-000"
    (sent,) = sent_offers(fake)
    assert len(sent) == 99
    assert sent[2] == {"product_reference": "3760000000002", "offer_reference": "SKU-002", "price": "12.0",
                       "product_state": "11", "quantity": "2", "description": "Court 2"}  # fmt: skip
    assert len(fake.to(f"{API}/batch_status")) == 2  # polled again while the batch was ACTIVE


async def test_a_batch_finished_with_errors_fails_only_the_offers_in_error() -> None:
    fake = FakeFnac(refuse=frozenset({"SKU-001"}))
    async with running(fake) as (base, http):
        outcomes = await adapter(base, http).push_stock(stock_levels(3))
    assert [(o.ok, o.error) for o in outcomes] == [
        (True, None), (False, "Produit inconnu : SKU-001"), (True, None),
    ]  # fmt: skip


async def test_pull_pages_through_offers_query() -> None:
    fake = FakeFnac(offers=3)
    async with running(fake) as (base, http):
        pages = await all_pages(adapter(base, http))
    assert [[p.sku for p in page] for page in pages] == [["OFF-0", "OFF-1"], ["OFF-2"]]
    assert (pages[0][0].name, pages[0][0].price, pages[0][0].stock) == ("Nom OFF-0", 12.5, 4)


async def test_stock_sends_quantities_only() -> None:
    fake = FakeFnac()
    async with running(fake) as (base, http):
        outcomes = await adapter(base, http).push_stock(stock_levels(2))
    assert all(o.ok for o in outcomes)
    assert sent_offers(fake) == [[{"offer_reference": "SKU-000", "quantity": "0"},
                                  {"offer_reference": "SKU-001", "quantity": "2"}]]  # fmt: skip


async def test_prices_send_prices_only() -> None:
    fake = FakeFnac()
    async with running(fake) as (base, http):
        outcomes = await adapter(base, http).push_prices(price_levels(1))
    assert outcomes[0].ok
    assert sent_offers(fake) == [[{"offer_reference": "SKU-000", "price": "19.9"}]]


async def test_throttling_outage_and_refusal_are_mapped() -> None:
    fake = FakeFnac(offers=1)
    async with running(fake) as (base, http):
        client = adapter(base, http)
        await check_error_mapping(fake, lambda: first_page(client))


# --- exactly once, against the strict shop of tests.connectors.fakes.fnac ----------------
# Batches of 100 offers (option chunk_size), so that 250 products make three
# offers_update calls and a fault can hit the second.
UPDATES = f"{fnac_fake.API}/offers_update"


def shop_adapter(base: str, http: PlatformHttp) -> FnacAdapter:
    config = ConnectorConfig(
        platform="fnac", base_url=f"{base}{fnac_fake.API}",
        credentials={"partner_id": fnac_fake.PARTNER_ID, "shop_id": fnac_fake.SHOP_ID,
                     "key": fnac_fake.KEY},
        options={"chunk_size": 100}, poll_interval_seconds=0.001,
    )  # fmt: skip
    return FnacAdapter(config, http)


def assert_offers_exist_once(
    shop: fnac_fake.FnacShop, products: Sequence[OutgoingProduct], links: dict
) -> None:
    assert sorted(shop.offers) == sorted(p.sku for p in products)
    assert links == {p.product_id: p.sku for p in products}  # linked by SellerSku
    # Whatever was sent twice updated the same offer (an upsert by SellerSku): no batch
    # reported an offer in error, the second time included.
    assert all(report is None for b in shop.batches.values() for report in b.reports.values())


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_250_offers_exist_once_whatever_fnac_answers(fault: str) -> None:
    shop, products = fnac_fake.FnacShop(), outgoing()
    links, _rule = await push_through_fault(shop.app(), shop_adapter, fault, UPDATES, products)
    assert_offers_exist_once(shop, products, links)
    assert_sent_again(fault, shop.offer_sends)


def test_a_session_lasts_as_long_as_the_auth_answer_validity_says() -> None:
    in_an_hour = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert 3590 < session_lifetime(in_an_hour) <= 3600
    # None given, unreadable, or already past by our clock: the default session.
    assert {session_lifetime(v) for v in (None, "bientôt", "2020-01-01T10:00:00+01:00")} == {
        SESSION_SECONDS
    }


async def test_an_expired_fnac_session_is_renewed_and_the_refused_call_sent_again() -> None:
    """A session good for 4 calls: the offers_update or batch_status it refuses (FATAL,
    nothing processed) goes again with a new session, and nothing is sent twice."""
    shop, products = fnac_fake.FnacShop(session_calls=4), outgoing()
    async with served(shop.app(), shop_adapter, Faults()) as (adapter, _base):
        links = await push_all(adapter, products)
    assert shop.expired_refusals >= 2 and len(shop.sessions) == shop.expired_refusals + 1
    assert_offers_exist_once(shop, products, links)
    assert max(shop.offer_sends.values()) == 1


async def test_offers_pushed_to_the_strict_shop_come_back_from_offers_query() -> None:
    shop, products = fnac_fake.FnacShop(), outgoing(3)
    async with served(shop.app(), shop_adapter, Faults()) as (adapter, _base):
        await push_all(adapter, products)
        pulled = await all_pages(adapter)
    assert [[r.external_id for r in page] for page in pulled] == [[p.sku for p in products]]


async def test_an_offers_update_redirected_on_the_same_host_is_followed_once() -> None:
    shop, products = fnac_fake.FnacShop(), outgoing()
    links, _redirect = await push_redirected_on_host(shop.app(), shop_adapter, UPDATES, products)
    assert_offers_exist_once(shop, products, links)
    assert max(shop.offer_sends.values()) == 1


async def test_an_offers_update_redirected_to_another_host_is_refused_and_keeps_the_token() -> None:
    shop, elsewhere = fnac_fake.FnacShop(), fnac_fake.FnacShop()
    await push_redirected_elsewhere(shop.app(), shop_adapter, UPDATES, outgoing(100),
                                    elsewhere=elsewhere.app())  # fmt: skip
    # The token travels in the body: a 307 would resend it, so it must not be followed.
    assert elsewhere.tokens == [] and elsewhere.sessions == {} and elsewhere.offers == {}
    assert shop.offers == {} and shop.batches == {}
