"""The SAP Commerce adapter against a fake of its authorization server, OCC v2 and the
Integration API's OData $batch."""

import base64
import json
import uuid

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectors.base import ConnectorConfig
from connectors.http import PlatformHttp
from connectors.sap_commerce import SapCommerceAdapter
from tests.connectors.exactly_once import CREATED_ONCE as CHECKS
from tests.connectors.exactly_once import TOKEN_EXPIRY, Platform
from tests.connectors.fakes.sap_commerce import BATCH, TOKEN_PATH, SapCommerce
from tests.connectors.helpers import (
    Fake,
    all_pages,
    assert_refused_for_good,
    check_error_mapping,
    first_page,
    multipart_body,
    multipart_parts,
    part_bytes,
    price_levels,
    products,
    running,
    stock_levels,
)

TOKEN = "sap-access-token"
CATALOG = [{"code": f"C{i}", "name": f"Remote {i}", "manufacturer": "M", "purchasable": True,
            "price": {"value": 5.0 + i, "currencyIso": "EUR"}, "stock": {"stockLevel": i}}
           for i in range(5)]  # fmt: skip


def http_request(message: bytes) -> tuple[str, str, dict]:
    head, _, body = message.replace(b"\r\n", b"\n").partition(b"\n\n")
    method, target, _version = head.split(b"\n")[0].decode().split(" ")
    return method, target, json.loads(body)


def changeset_answer(status: str, body: dict) -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\r\n{json.dumps(body)}".encode()


INTEGRATION_USER = "Basic " + base64.b64encode(b"integrationuser:pw").decode()


def sap_authorized(request: Request, body: bytes) -> bool:
    """The Integration API takes the OAuth token or an integration user's Basic
    credentials; OCC's base sites and product search are public storefront resources."""
    given = request.headers.get("authorization")
    if request.url.path.startswith("/odata2webservices/"):
        return given in (f"Bearer {TOKEN}", INTEGRATION_USER)
    return given in (None, f"Bearer {TOKEN}")


def fake_sap(refuse: set[str] | None = None) -> Fake:
    fake = Fake(sap_authorized)

    @fake.route("/odata2webservices/{io}/$metadata")
    async def metadata(_request: Request) -> Response:
        return Response('<edmx:Edmx Version="1.0"/>', media_type="application/xml")

    @fake.route("/authorizationserver/oauth/token", "POST", open=True)
    async def token(request: Request) -> Response:
        form = await request.form()
        if (form["client_id"], form["client_secret"]) != ("pim", "secret"):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        return JSONResponse({"access_token": TOKEN, "token_type": "bearer", "expires_in": 43199})

    @fake.route("/occ/v2/basesites")
    async def basesites(_request: Request) -> Response:
        return JSONResponse({"baseSites": [{"uid": "electronics", "name": "Electronics Site"}]})

    @fake.route("/occ/v2/electronics/products/search")
    async def search(request: Request) -> Response:
        page, size = int(request.query_params["currentPage"]), int(request.query_params["pageSize"])
        pages = -(-len(CATALOG) // size)
        return JSONResponse({"products": CATALOG[page * size:(page + 1) * size],
                             "pagination": {"currentPage": page, "pageSize": size,
                                            "totalPages": pages, "totalResults": len(CATALOG)}})  # fmt: skip

    @fake.route("/odata2webservices/{io}/$batch", "POST")
    async def batch(request: Request) -> Response:
        answers = []
        for changeset in multipart_parts(await request.body(), request.headers["content-type"]):
            (inner,) = changeset.iter_parts()  # type: ignore[attr-defined]
            _method, _target, body = http_request(part_bytes(inner))
            key = body.get("code") or body.get("productCode") or body["product"]["code"]
            if key in (refuse or set()):
                error = {"error": {"code": "invalid_attribute_value",
                                   "message": {"lang": "en", "value": f"{key} refused"}}}  # fmt: skip
                answers.append(({"Content-Type": "application/http"},
                                changeset_answer("400 Bad Request", error)))  # fmt: skip
            else:
                boundary = "changesetresponse_" + uuid.uuid4().hex
                created = multipart_body([({"Content-Type": "application/http"},
                                           changeset_answer("201 Created", {"d": body}))], boundary)  # fmt: skip
                answers.append(({"Content-Type": f"multipart/mixed; boundary={boundary}"}, created))
        boundary = "batchresponse_" + uuid.uuid4().hex
        return Response(multipart_body(answers, boundary),
                        media_type=f"multipart/mixed; boundary={boundary}")  # fmt: skip

    return fake


def adapter(base: str, http: PlatformHttp, secret: str = "secret") -> SapCommerceAdapter:
    config = ConnectorConfig(
        platform="sap_commerce", base_url=base,
        credentials={"client_id": "pim", "client_secret": secret},
        options={"base_site": "electronics", "page_size": 2, "warehouse": "warehouse_e"},
    )  # fmt: skip
    return SapCommerceAdapter(config, http)


def posted(fake: Fake, integration_object: str) -> list[list[tuple[str, str, dict]]]:
    return [
        [http_request(part_bytes(next(cs.iter_parts())))  # type: ignore[attr-defined]
         for cs in multipart_parts(r.body, r.headers["content-type"])]
        for r in fake.to(f"/odata2webservices/{integration_object}/$batch")
    ]  # fmt: skip


async def test_connection_test_names_the_base_sites() -> None:
    async with running(fake_sap()) as (base, http):
        assert await adapter(base, http).test() == "SAP Commerce : 1 site(s) (Electronics Site)"


def basic_adapter(base: str, http: PlatformHttp, password: str = "pw") -> SapCommerceAdapter:
    config = ConnectorConfig(
        platform="sap_commerce", base_url=base,
        credentials={"username": "integrationuser", "password": password},
        options={"base_site": "electronics", "warehouse": "warehouse_e"},
    )  # fmt: skip
    return SapCommerceAdapter(config, http)


async def test_an_integration_user_with_basic_auth_writes_through_the_integration_api() -> None:
    fake = fake_sap()
    async with running(fake) as (base, http):
        client = basic_adapter(base, http)
        assert await client.test() == "SAP Commerce : 1 site(s) (Electronics Site)"
        outcomes = await client.push_products(products(2))
    assert [o.ok for o in outcomes] == [True, True]
    assert not fake.to("/authorizationserver/oauth/token")
    (write,) = fake.to("/odata2webservices/InboundProduct/$batch")
    assert write.headers["authorization"] == INTEGRATION_USER
    (sites,) = fake.to("/occ/v2/basesites")
    assert "authorization" not in sites.headers


async def test_a_wrong_integration_password_fails_the_connection_test() -> None:
    async with running(fake_sap()) as (base, http):
        await assert_refused_for_good(basic_adapter(base, http, password="nope").test)


async def test_wrong_client_secret_is_a_permanent_error() -> None:
    async with running(fake_sap()) as (base, http):
        await assert_refused_for_good(adapter(base, http, secret="nope").test)


async def test_hundred_products_in_one_batch_each_in_its_own_changeset() -> None:
    fake = fake_sap(refuse={"SKU-042"})
    batch = products(100, linked=[9])
    async with running(fake) as (base, http):
        outcomes = await adapter(base, http).push_products(batch)

    assert [o.product_id for o in outcomes] == [p.product_id for p in batch]
    assert (outcomes[42].ok, outcomes[42].error) == (False, "SKU-042 refused")
    assert sum(o.ok for o in outcomes) == 99
    assert outcomes[9].external_id == "EXT-009"
    (sent,) = posted(fake, "InboundProduct")
    assert len(sent) == 100
    assert sent[1] == ("POST", "Products", {
        "code": "SKU-001", "catalogVersion": {"catalog": {"id": "Default"}, "version": "Staged"},
        "name": "Produit 1", "description": "Description 1", "summary": "Court 1",
        "ean": "3760000000001", "manufacturerName": "Pixee", "approvalStatus": {"code": "approved"},
    })  # fmt: skip
    assert sent[9][2]["code"] == "EXT-009"


async def test_pull_follows_occ_pagination() -> None:
    fake = fake_sap()
    async with running(fake) as (base, http):
        pages = await all_pages(adapter(base, http))
    assert [[p.sku for p in page] for page in pages] == [["C0", "C1"], ["C2", "C3"], ["C4"]]
    assert (pages[1][0].price, pages[1][0].stock, pages[1][0].brand) == (7.0, 2, "M")
    assert [r.query["currentPage"] for r in fake.to("/occ/v2/electronics/products/search")] == [
        "0", "1", "2"
    ]  # fmt: skip


async def test_stock_sends_available_quantities_only() -> None:
    fake = fake_sap()
    async with running(fake) as (base, http):
        outcomes = await adapter(base, http).push_stock(stock_levels(2))
    assert all(o.ok for o in outcomes)
    assert posted(fake, "InboundStockLevel") == [[
        ("POST", "StockLevels", {"productCode": f"SKU-00{i}", "warehouse": {"code": "warehouse_e"},
                                 "available": i * 2}) for i in range(2)
    ]]  # fmt: skip


async def test_prices_send_price_rows_only() -> None:
    fake = fake_sap()
    async with running(fake) as (base, http):
        outcomes = await adapter(base, http).push_prices(price_levels(1))
    assert outcomes[0].ok
    assert posted(fake, "InboundPriceRow") == [[("POST", "PriceRows", {
        "product": {"code": "SKU-000", "catalogVersion": {"catalog": {"id": "Default"}, "version": "Staged"}},
        "price": 19.9, "currency": {"isocode": "EUR"}, "unit": {"code": "pieces"}, "net": False,
    })]]  # fmt: skip


async def test_throttling_outage_and_refusal_are_mapped() -> None:
    fake = fake_sap()
    async with running(fake) as (base, http):
        client = adapter(base, http)
        await check_error_mapping(fake, lambda: first_page(client))


CREDENTIALS = {
    "oauth": {"client_id": "client", "client_secret": "secret"},
    "basic": {"username": "integrationuser", "password": "pw"},
}


def strict_sap(credentials: str = "oauth") -> Platform:
    fake = SapCommerce()
    return Platform(
        fake.app(), fake.sessions,
        lambda base: ConnectorConfig("sap_commerce", base, CREDENTIALS[credentials]),
        writes=BATCH, login=TOKEN_PATH, token_calls=1,
        records=lambda: {code for code, *_ in fake.products},
    )  # fmt: skip


@pytest.mark.parametrize("check", sorted(CHECKS))
async def test_each_product_exists_once_whatever_sap_commerce_answers(check: str) -> None:
    await CHECKS[check](strict_sap())


@pytest.mark.parametrize("check", sorted(set(CHECKS) - {TOKEN_EXPIRY}))
async def test_with_an_integration_user_each_product_exists_once_too(check: str) -> None:
    """Basic credentials: no token to renew, and the header stays on its host as well."""
    await CHECKS[check](strict_sap("basic"))
