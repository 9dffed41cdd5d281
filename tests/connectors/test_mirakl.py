"""Mirakl adapter against a fake of the MMP shop APIs (A01, P41, OF01, OF02, OF03, OF21, OF24)."""

import asyncio
import csv
import io
import time
from collections.abc import Sequence
from dataclasses import replace

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse

from connectors.base import ConnectorConfig, OutgoingProduct, PriceLevel, StockLevel
from connectors.http import PlatformHttp
from connectors.mirakl import MiraklAdapter
from pim import outbound
from tests.connectors.exactly_once import (
    FAULTS,
    assert_sent_again,
    matrix_http,
    outgoing,
    push_all,
    push_redirected_elsewhere,
    push_redirected_on_host,
    push_through_fault,
)
from tests.connectors.fakes.mirakl import API_KEY, SHOP_ID, MiraklShop
from tests.connectors.helpers import Fake, check_error_mapping, connected, products
from tests.loopback import serve

# What an offer's fields become when OF24 does not send them.
OF24_DEFAULTS = {"description": None, "internal_description": None, "price": None,
                 "quantity": 0, "min_quantity_alert": None, "leadtime_to_ship": None,
                 "logistic_class": None, "allow_quote_requests": False,
                 "offer_additional_fields": []}  # fmt: skip


def mirakl_fake() -> tuple[Fake, dict]:
    fake = Fake(authorized=lambda r, _body: r.headers.get("authorization") == "shop-key")
    state: dict = {"imports": {}, "files": [], "polls": 0, "shop": {}}
    offers = [
        {"offer_id": i, "shop_sku": f"R-{i}", "product_sku": f"P{i}", "product_title": f"Remote {i}",
         "price": 12.0, "quantity": i, "active": True,
         "product_references": [{"reference_type": "EAN", "reference": f"500000000000{i}"}]}
        for i in range(3)
    ]  # fmt: skip

    async def account(request: Request) -> JSONResponse:
        assert request.query_params["shop_id"] == "2001"
        return JSONResponse({"shop_id": 2001, "shop_name": "Pixee Store"})

    def record_import(lines: list[dict], bad: set[str]) -> JSONResponse:
        import_id = len(state["imports"]) + 1
        state["imports"][import_id] = (lines, bad)
        return JSONResponse({"import_id": import_id})

    async def of24(request: Request) -> JSONResponse:
        lines = (await request.json())["offers"]
        bad = {o["shop_sku"] for o in lines if o["shop_sku"] == "SKU-001" or o.get("price") is None}
        for line in lines:
            if line["shop_sku"] not in bad:
                # OF24 resets every field of the offer that is not sent.
                state["shop"][line["shop_sku"]] = {**OF24_DEFAULTS, **line}
        return record_import(lines, bad)

    async def uploads(request: Request) -> JSONResponse:
        form = await request.form()
        rows = list(
            csv.DictReader(io.StringIO((await form["file"].read()).decode()), delimiter=";")
        )
        state["files"].append((request.url.path, dict(form), rows))
        if request.url.path == "/api/products/imports":
            return JSONResponse({"import_id": 77})
        assert form["import_mode"] == "PARTIAL_UPDATE"
        return record_import(rows, set())

    async def of02(request: Request) -> JSONResponse:
        lines, bad = state["imports"][int(request.path_params["id"])]
        state["polls"] += 1
        if state["polls"] % 2:  # every import is seen running once before it completes
            return JSONResponse({"status": "RUNNING"})
        return JSONResponse({"import_id": request.path_params["id"], "status": "COMPLETE",
                             "lines_in_success": len(lines) - len(bad),
                             "lines_in_error": len(bad), "has_error_report": bool(bad)})  # fmt: skip

    async def of03(request: Request) -> PlainTextResponse:
        _, bad = state["imports"][int(request.path_params["id"])]
        rows = "".join(f'"{sku}";"5";"error-line";"Le produit n\'existe pas"\n' for sku in bad)
        return PlainTextResponse(f'"sku";"quantity";"error-line";"error-message"\n{rows}')

    async def of21(request: Request) -> JSONResponse:
        offset, size = int(request.query_params["offset"]), int(request.query_params["max"])
        size = min(size, 2)  # small pages, to be followed
        return JSONResponse({"offers": offers[offset : offset + size], "total_count": len(offers)})

    fake.route("/api/account")(account)
    fake.route("/api/offers", "POST")(of24)
    fake.route("/api/offers", "GET")(of21)
    fake.route("/api/products/imports", "POST")(uploads)
    fake.route("/api/offers/imports", "POST")(uploads)
    fake.route("/api/offers/imports/{id}")(of02)
    fake.route("/api/offers/imports/{id}/error_report")(of03)
    return fake, state


def config(base: str) -> ConnectorConfig:
    return ConnectorConfig("mirakl", base, {"api_key": "shop-key"},
                           options={"shop_id": "2001", "poll_wait": 0, "import_interval": 0})  # fmt: skip


async def test_mirakl_end_to_end() -> None:
    fake, state = mirakl_fake()
    async with connected(fake, config) as adapter:
        assert await adapter.test() == "Pixee Store"

        batch = [*products(2), *products(3, linked=range(3))[2:]]
        outcomes = await adapter.push_products(batch)
        assert [(o.ok, o.external_id) for o in outcomes] == [
            (True, "SKU-000"),
            (False, None),
            (True, "SKU-002"),
        ]
        assert outcomes[1].error == "Le produit n'existe pas"
        # Sheets only for the products not linked yet; offers for all.
        path, _, sheets = state["files"][0]
        assert path == "/api/products/imports" and [r["sku"] for r in sheets] == [
            "SKU-000",
            "SKU-001",
        ]
        assert sheets[0] == {"sku": "SKU-000", "ean": "3760000000000", "title": "Produit 0",
                             "description": "Description 0", "brand": "Pixee", "weight": "0.5"}  # fmt: skip
        offer = fake.to("/api/offers", "POST")[0].json()["offers"][0]
        assert offer == {"shop_sku": "SKU-000", "product_id": "3760000000000",
                         "product_id_type": "EAN", "state_code": "11", "update_delete": "update",
                         "description": "Court 0", "price": 10.0, "quantity": 0}  # fmt: skip

        pages = [page async for page in adapter.pull_products()]
        assert [[p.external_id for p in page] for page in pages] == [["R-0", "R-1"], ["R-2"]]
        assert (pages[1][0].ean, pages[1][0].stock, pages[1][0].price) == ("5000000000002", 2, 12.0)

        stock = await adapter.push_stock([StockLevel(batch[0].product_id, "SKU-000", 9)])
        assert stock[0].ok and state["files"][-1][2] == [{"sku": "SKU-000", "quantity": "9"}]
        prices = await adapter.push_prices([PriceLevel(batch[0].product_id, "SKU-000", 14.5)])
        assert prices[0].ok and state["files"][-1][2] == [{"sku": "SKU-000", "price": "14.50"}]

        await check_error_mapping(fake, adapter.test, throttled={"Retry-After": "30"}, wait=30.0)


async def test_mirakl_import_still_running_leaves_items_transient() -> None:
    fake, _ = mirakl_fake()

    def slow(base: str) -> ConnectorConfig:
        return ConnectorConfig("mirakl", base, {"api_key": "shop-key"},
                               options={"shop_id": "2001", "poll_wait": 0, "poll_attempts": 1,
                                        "import_interval": 0})  # fmt: skip

    async with connected(fake, slow) as adapter:
        outcomes = await adapter.push_stock([StockLevel(products(1)[0].product_id, "SKU-000", 1)])
        assert (outcomes[0].ok, outcomes[0].transient) == (False, True)


async def test_mirakl_sends_a_chunk_of_100_in_one_offers_import() -> None:
    fake, state = mirakl_fake()
    async with connected(fake, config) as adapter:
        outcomes = await adapter.push_products(products(100))
    assert [o.ok for o in outcomes] == [n != 1 for n in range(100)]
    (offers,) = fake.to("/api/offers", "POST")
    assert len(offers.json()["offers"]) == 100 and len(state["files"][0][2]) == 100


async def test_mirakl_sends_each_offer_whole_so_of24_resets_nothing() -> None:
    fake, state = mirakl_fake()
    settings = {"leadtime_to_ship": 3, "logistic_class": "L", "min_quantity_alert": 2,
                "offer_additional_fields": [{"code": "warranty", "value": "2"}]}  # fmt: skip

    def with_settings(base: str) -> ConnectorConfig:
        return replace(config(base), options={**config(base).options, "offer_fields": settings})

    linked = products(3, linked=range(3))[2]
    async with connected(fake, with_settings) as adapter:
        (outcome,) = await adapter.push_products([replace(linked, stock=None)])
    assert outcome.ok
    assert state["shop"]["SKU-002"] == {
        **OF24_DEFAULTS, **settings, "shop_sku": "SKU-002", "product_id": "3760000000002",
        "product_id_type": "EAN", "state_code": "11", "update_delete": "update",
        "description": "Court 2", "price": 12.0, "quantity": 0,
    }  # fmt: skip


async def test_mirakl_refuses_an_offer_without_price_before_sending_it() -> None:
    fake, _ = mirakl_fake()
    batch = products(3, linked=range(3))
    batch[0] = replace(batch[0], price=None)
    async with connected(fake, config) as adapter:
        outcomes = await adapter.push_products([batch[0], batch[2]])
    assert [(o.ok, o.error and "prix" in o.error) for o in outcomes] == [
        (False, True),
        (True, None),
    ]
    (sent,) = fake.to("/api/offers", "POST")
    assert [o["shop_sku"] for o in sent.json()["offers"]] == ["SKU-002"]


async def test_mirakl_offers_an_inactive_product_with_no_quantity() -> None:
    fake, state = mirakl_fake()
    inactive = replace(products(3, linked=range(3))[2], is_active=False)
    async with connected(fake, config) as adapter:
        (outcome,) = await adapter.push_products([inactive])
    assert outcome.ok and state["shop"]["SKU-002"]["quantity"] == 0


# --- exactly once, against the strict shop of tests.connectors.fakes.mirakl ---------------
# Imports of 100 offers (option chunk_size), so that 250 products make three OF24 imports
# and a fault can hit the second; imports paced PACE seconds apart, the shop refusing
# closer ones as Mirakl refuses them within a minute. Mirakl authenticates with the
# shop's API key, which does not expire: there is no token to renew.
PACE = 0.3
OFFERS = "/api/offers"


def shop_adapter(base: str, http: PlatformHttp) -> MiraklAdapter:
    config = ConnectorConfig("mirakl", base, {"api_key": API_KEY}, options={
        "shop_id": SHOP_ID, "poll_wait": 0, "chunk_size": 100, "import_interval": PACE})  # fmt: skip
    return MiraklAdapter(config, http)


def assert_offers_exist_once(
    shop: MiraklShop, products: Sequence[OutgoingProduct], links: dict
) -> None:
    assert sorted(shop.offers) == sorted(p.sku for p in products)
    assert links == {p.product_id: p.sku for p in products}  # linked by shop SKU
    # Whatever was sent twice went as an OF24 upsert by shop SKU, so it is still one offer.
    lines = [line for job in shop.imports.values() for line in job.lines]
    assert {line["update_delete"] for line in lines} == {"update"}
    assert sum(shop.offer_sends.values()) == len(lines)
    assert shop.refused_imports == 0  # never two imports within the interval


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_250_offers_exist_once_whatever_mirakl_answers(fault: str) -> None:
    shop, products = MiraklShop(import_interval=PACE), outgoing()
    links, _rule = await push_through_fault(shop.app(), shop_adapter, fault, OFFERS, products)
    assert_offers_exist_once(shop, products, links)
    assert_sent_again(fault, shop.offer_sends)


async def test_offer_imports_of_one_shop_start_a_minute_apart_across_its_jobs() -> None:
    """Two jobs of the same connector share the shop's pace: Mirakl's "at most once a
    minute" (here PACE seconds) holds between their imports too."""
    shop = MiraklShop(import_interval=PACE)
    first, second = outgoing(150), outgoing(300)[150:]
    async with serve(shop.app()) as base, outbound.client() as client:
        started = time.monotonic()
        links = await asyncio.gather(push_all(shop_adapter(base, matrix_http(client)), first),
                                     push_all(shop_adapter(base, matrix_http(client)), second))  # fmt: skip
        elapsed = time.monotonic() - started
    assert len(shop.imports) == 4 and shop.refused_imports == 0
    assert elapsed >= 3 * PACE * 0.9
    assert len(shop.offers) == 300 and len(links[0]) + len(links[1]) == 300


async def test_stock_after_the_offers_is_a_paced_partial_import_that_keeps_the_rest() -> None:
    shop, products = MiraklShop(import_interval=PACE), outgoing(3)
    async with serve(shop.app()) as base, outbound.client() as client:
        adapter = shop_adapter(base, matrix_http(client))
        await push_all(adapter, products)
        levels = [StockLevel(p.product_id, p.sku, 7, external_id=p.sku) for p in products]
        outcomes = await adapter.push_stock(levels)
        pulled = [page async for page in adapter.pull_products()]
    assert [(o.ok, o.external_id) for o in outcomes] == [(True, p.sku) for p in products]
    assert [[(r.external_id, r.stock) for r in page] for page in pulled] == [
        [(p.sku, 7) for p in products]
    ]
    assert shop.refused_imports == 0 and len(shop.imports) == 2  # OF24, then OF01
    assert {sku: (offer["quantity"], offer["price"]) for sku, offer in shop.offers.items()} == {
        p.sku: (7, p.price) for p in products
    }


async def test_an_offers_import_redirected_on_the_same_host_is_followed_once() -> None:
    shop, products = MiraklShop(import_interval=PACE), outgoing()
    links, _redirect = await push_redirected_on_host(shop.app(), shop_adapter, OFFERS, products)
    assert_offers_exist_once(shop, products, links)
    assert max(shop.offer_sends.values()) == 1


async def test_an_offers_import_redirected_to_another_host_is_refused_and_keeps_the_key() -> None:
    shop, elsewhere = MiraklShop(), MiraklShop()
    await push_redirected_elsewhere(shop.app(), shop_adapter, OFFERS, outgoing(100),
                                    elsewhere=elsewhere.app())  # fmt: skip
    assert elsewhere.keys == [] and elsewhere.offers == {}  # neither the key nor an offer
    assert shop.offers == {} and shop.imports == {}
