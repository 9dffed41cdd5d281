"""The Salesforce B2C Commerce adapter against a fake OCAPI Data API (Account Manager
token, batch requests, product_search paging)."""

import base64
import io
import json
import uuid
import xml.etree.ElementTree as ET
import zipfile
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectors.base import ConnectorConfig
from connectors.http import PlatformHttp
from connectors.sfcc import SfccAdapter
from tests.connectors.exactly_once import CREATED_ONCE as CHECKS
from tests.connectors.exactly_once import Platform
from tests.connectors.fakes.sfcc import BATCH, TOKEN_PATH, Sfcc
from tests.connectors.helpers import (
    Fake,
    all_pages,
    assert_refused_for_good,
    bearer,
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

TOKEN = "sfcc-access-token"
DATA = "/s/-/dw/data/v23_2"
IMPEX = "/on/demandware.servlet/webdav/Sites/Impex/src/instance"
CATALOG: list[dict[str, Any]] = [{"id": f"P{i}", "name": {"default": f"Remote {i}"}, "ean": f"400{i}", "brand": "B",
            "online_flag": {"default": True}} for i in range(5)]  # fmt: skip


class FakeSfcc(Fake):
    uploads: dict[str, bytes]
    executions: dict[str, int]  # an execution's id, and the status polls it still runs for


def fake_sfcc(
    refuse: set[str] | None = None, busy: set[str] | None = None, import_exit: str = "OK",
    running_polls: int = 1,
) -> FakeSfcc:  # fmt: skip
    fake = FakeSfcc(bearer(TOKEN))
    fake.uploads = {}
    fake.executions = {}

    @fake.route("/dwsso/oauth2/access_token", "POST", open=True)
    async def token(request: Request) -> Response:
        form = await request.form()
        expected = "Basic " + base64.b64encode(b"client:secret").decode()
        if request.headers.get("authorization") != expected:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        assert form["grant_type"] == "client_credentials"
        return JSONResponse({"access_token": TOKEN, "token_type": "BEARER", "expires_in": 1799})

    @fake.route(f"{DATA}/sites")
    async def sites(_request: Request) -> Response:
        return JSONResponse({"count": 2, "data": [{"id": "RefArch"}, {"id": "Outlet"}]})

    @fake.route("/s/-/dw/batch", "POST")
    async def batch(request: Request) -> Response:
        assert request.headers["x-dw-resource-path"] == f"{DATA}/"
        answers = []
        for part in multipart_parts(await request.body(), request.headers["content-type"]):
            resource = part["x-dw-resource-path-extension"]
            body: dict[str, Any] = json.loads(part_bytes(part))
            key = resource.rsplit("/", 1)[-1]
            status, answer = 200, {"id": key, **body}
            if key in (refuse or set()):
                status, answer = 400, {"fault": {"type": "Invalid", "message": f"{key} refusé"}}
            if key in (busy or set()):
                status, answer = 503, {"fault": {"type": "ServiceUnavailable", "message": "busy"}}
            answers.append(({"x-dw-content-id": part["x-dw-content-id"],
                             "x-dw-status-code": str(status),
                             "Content-Type": "application/json"}, json.dumps(answer).encode()))  # fmt: skip
        boundary = "resp" + uuid.uuid4().hex
        return Response(multipart_body(answers, boundary),
                        media_type=f"multipart/mixed; boundary={boundary}")  # fmt: skip

    @fake.route(f"{DATA}/product_search", "POST")
    async def search(request: Request) -> Response:
        query = await request.json()
        assert query["query"] == {"match_all_query": {}}
        start, count = query["start"], query["count"]
        return JSONResponse({"_type": "product_search_result", "start": start, "count": count,
                             "total": len(CATALOG), "hits": CATALOG[start:start + count]})  # fmt: skip

    @fake.route(f"{IMPEX}/{{name}}", "PUT", "GET", "DELETE")
    async def webdav(request: Request) -> Response:
        name = request.path_params["name"]
        if request.method == "PUT":
            fake.uploads[name] = await request.body()
            return Response(status_code=201)
        if name not in fake.uploads:
            return Response(status_code=404)
        if request.method == "DELETE":
            del fake.uploads[name]
            return Response(status_code=204)
        return Response(fake.uploads[name], media_type="application/octet-stream")

    @fake.route(f"{DATA}/jobs/sfcc-site-archive-import/executions", "POST")
    async def start_import(request: Request) -> Response:
        assert (await request.json())["file_name"] in fake.uploads
        if any(polls > 0 for polls in fake.executions.values()):
            return JSONResponse({"fault": {"type": "JobAlreadyRunningException",
                                           "message": "The job is already running."}}, 400)  # fmt: skip
        execution = f"exec-{len(fake.executions) + 1}"
        fake.executions[execution] = running_polls
        return JSONResponse({"id": execution, "execution_status": "running"}, status_code=202)

    @fake.route(f"{DATA}/jobs/sfcc-site-archive-import/executions/{{execution}}")
    async def import_status(request: Request) -> Response:
        execution = request.path_params["execution"]
        if fake.executions.get(execution, 0) > 0:  # the job runs for a while
            fake.executions[execution] -= 1
            return JSONResponse({"id": execution, "execution_status": "running"})
        return JSONResponse({"id": execution, "execution_status": "finished",
                             "exit_status": {"code": import_exit, "message": "fichier invalide"}})  # fmt: skip

    return fake


def adapter(
    base: str, http: PlatformHttp, secret: str = "secret", wait: float = 1.0
) -> SfccAdapter:
    config = ConnectorConfig(
        platform="sfcc",
        base_url=base,
        credentials={"client_id": "client", "client_secret": secret},
        options={"token_url": f"{base}/dwsso/oauth2/access_token", "page_size": 2,
                 "inventory_list_id": "inventory_m", "price_book_id": "eur-list-prices"},
        async_wait_seconds=wait, poll_interval_seconds=0.001,
    )  # fmt: skip
    return SfccAdapter(config, http)


def batch_parts(fake: Fake) -> list[list[tuple[str, str, dict]]]:
    return [
        [(p["x-dw-http-method"], p["x-dw-resource-path-extension"], json.loads(part_bytes(p)))
         for p in multipart_parts(r.body, r.headers["content-type"])]
        for r in fake.to("/s/-/dw/batch")
    ]  # fmt: skip


async def test_connection_test_names_the_sites() -> None:
    fake = fake_sfcc()
    async with running(fake) as (base, http):
        assert (
            await adapter(base, http).test()
            == "Salesforce B2C Commerce : 2 site(s) (RefArch, Outlet)"
        )
    assert len(fake.to("/dwsso/oauth2/access_token")) == 1


async def test_wrong_client_secret_is_a_permanent_error() -> None:
    async with running(fake_sfcc()) as (base, http):
        await assert_refused_for_good(adapter(base, http, secret="wrong").test)


async def test_hundred_products_go_in_two_batches_with_item_errors_mapped_back() -> None:
    fake = fake_sfcc(refuse={"SKU-007"}, busy={"SKU-060"})
    batch = products(100, linked=[3, 50])
    async with running(fake) as (base, http):
        outcomes = await adapter(base, http).push_products(batch)

    assert [o.product_id for o in outcomes] == [p.product_id for p in batch]
    assert (outcomes[7].ok, outcomes[7].error, outcomes[7].transient) == (
        False,
        "SKU-007 refusé",
        False,
    )
    assert (outcomes[60].ok, outcomes[60].transient) == (False, True)
    assert all(o.ok for i, o in enumerate(outcomes) if i not in (7, 60))
    assert outcomes[3].external_id == "EXT-003" and outcomes[4].external_id == "SKU-004"
    sent = batch_parts(fake)
    assert [len(parts) for parts in sent] == [50, 50]
    assert sent[0][3][:2] == ("PATCH", "products/EXT-003")
    assert sent[0][4] == ("PUT", "products/SKU-004", {
        "id": "SKU-004", "name": {"default": "Produit 4"},
        "long_description": {"default": "Description 4"}, "short_description": {"default": "Court 4"},
        "brand": "Pixee", "ean": "3760000000004", "online_flag": {"default": True},
    })  # fmt: skip


async def test_pull_follows_start_and_count_until_total() -> None:
    fake = fake_sfcc()
    async with running(fake) as (base, http):
        pages = await all_pages(adapter(base, http))
    assert [[p.external_id for p in page] for page in pages] == [["P0", "P1"], ["P2", "P3"], ["P4"]]
    assert pages[0][1].name == "Remote 1" and pages[0][1].ean == "4001" and pages[0][1].is_active
    assert [r.json()["start"] for r in fake.to(f"{DATA}/product_search")] == [0, 2, 4]


async def test_stock_sends_allocation_amounts_only() -> None:
    fake = fake_sfcc()
    async with running(fake) as (base, http):
        outcomes = await adapter(base, http).push_stock(stock_levels(3))
    assert all(o.ok for o in outcomes)
    assert batch_parts(fake) == [[
        ("PUT", f"inventory_lists/inventory_m/product_inventory_records/SKU-00{i}",
         {"allocation": {"amount": i * 2}}) for i in range(3)
    ]]  # fmt: skip


async def test_prices_are_imported_as_a_price_book_archive() -> None:
    fake = fake_sfcc()
    levels = price_levels(2)
    async with running(fake) as (base, http):
        outcomes = await adapter(base, http).push_prices(levels)
    assert [(o.ok, o.external_id) for o in outcomes] == [(True, "SKU-000"), (True, "SKU-001")]
    ((name, upload),) = fake.uploads.items()  # the archive; the execution's note is gone
    with zipfile.ZipFile(io.BytesIO(upload)) as archive:
        book = ET.fromstring(archive.read(f"{name.removesuffix('.zip')}/pricebooks/pixee.xml"))
    ns = "{http://www.demandware.com/xml/impex/pricebook/2006-10-31}"
    assert [h.attrib for h in book.iter(f"{ns}header")] == [{"pricebook-id": "eur-list-prices"}]
    assert book.findtext(f"{ns}pricebook/{ns}header/{ns}currency") == "EUR"
    assert [(t.get("product-id"), t.findtext(f"{ns}amount"))
            for t in book.iter(f"{ns}price-table")] == [("SKU-000", "19.90"), ("SKU-001", "20.90")]  # fmt: skip
    (start,) = fake.to(f"{DATA}/jobs/sfcc-site-archive-import/executions", "POST")
    assert start.json() == {"file_name": name, "mode": "merge"}


async def test_a_price_import_still_running_is_resumed_by_the_next_run_not_started_again() -> None:
    fake = fake_sfcc(running_polls=50)
    levels = price_levels(2)
    async with running(fake) as (base, http):
        first = await adapter(base, http, wait=0.005).push_prices(levels)
        assert [(o.ok, o.transient) for o in first] == [(False, True)] * 2
        second = await adapter(base, http, wait=5.0).push_prices(levels)
    assert [o.ok for o in second] == [True, True]
    assert len(fake.to(f"{DATA}/jobs/sfcc-site-archive-import/executions", "POST")) == 1
    assert list(fake.executions) == ["exec-1"]
    assert [n for n in fake.uploads if n.endswith(".execution")] == []


async def test_a_failed_price_book_import_fails_every_price() -> None:
    fake = fake_sfcc(import_exit="ERROR")
    async with running(fake) as (base, http):
        outcomes = await adapter(base, http).push_prices(price_levels(2))
    assert [(o.ok, o.error, o.transient) for o in outcomes] == [
        (False, "fichier invalide", False)
    ] * 2


async def test_throttling_outage_and_refusal_are_mapped() -> None:
    fake = fake_sfcc()
    async with running(fake) as (base, http):
        client = adapter(base, http)
        await check_error_mapping(fake, lambda: first_page(client))


def strict_sfcc() -> Platform:
    fake = Sfcc()
    return Platform(
        fake.app(), fake.sessions,
        lambda base: ConnectorConfig("sfcc", base, {"client_id": "client", "client_secret": "secret"},
                                     options={"token_url": f"{base}{TOKEN_PATH}"}),
        writes=BATCH, login=TOKEN_PATH, records=lambda: set(fake.products),
        token_calls=2,  # two batches of 50 a chunk
    )  # fmt: skip


@pytest.mark.parametrize("check", sorted(CHECKS))
async def test_each_product_exists_once_whatever_sfcc_answers(check: str) -> None:
    await CHECKS[check](strict_sfcc())
