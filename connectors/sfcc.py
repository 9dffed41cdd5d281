"""Salesforce B2C Commerce Cloud, through the OCAPI Data API (version v23_2 by default).

Checked against Salesforce's B2C Commerce OCAPI documentation (Data API: batch requests,
products, product_search, inventory_lists, jobs/executions; Account Manager client
credentials; WebDAV Impex access and the pricebook 2006-10-31 import schema), and the
Products reference of Salesforce's commerce-sdk for what a PUT by id does to an
existing product (it is overwritten).

- Auth: OAuth2 client credentials at Account Manager
  (`POST https://account.demandware.com/dwsso/oauth2/access_token`, HTTP Basic
  client_id:client_secret, `grant_type=client_credentials`); the bearer token goes on
  every Data API and WebDAV call, renewed before it expires and once after a 401.
  `options.token_url` points elsewhere (a sandbox, a test fake).
- Writes go through OCAPI batch requests (`POST /s/-/dw/batch`, multipart/mixed, at
  most 50 subrequests): each subrequest names its method (`x-dw-http-method`) and path
  (`x-dw-resource-path-extension` under the Data API root), each sub-response echoes
  `x-dw-content-id` and carries `x-dw-status-code`, which is mapped back per product.
- Products: `PUT products/{id}` creates the product with that id or replaces it,
  `PATCH products/{external_id}` updates a linked one (name, descriptions, brand, EAN,
  `online_flag`). Every subrequest is addressed by our id, so a batch whose answer
  was lost (timeout, 5xx, connection reset) is sent again as it is: nothing is
  created twice, and no lookup is needed.
- Pull: `POST product_search` with a `match_all_query`, paged with start/count up to
  `total`.
- Stock: `PUT inventory_lists/{options.inventory_list_id}/product_inventory_records/{id}`
  with `allocation.amount` only.
- Prices: we found no Data API resource that writes price book entries; the
  documented way in is an import: a site archive holding a price book XML
  (`pricebook/2006-10-31` schema, `options.price_book_id`, one `price-table` per
  product with the amount for quantity 1) is uploaded over WebDAV to
  `Impex/src/instance`, then the `sfcc-site-archive-import` system job is started
  (`POST jobs/sfcc-site-archive-import/executions`, mode merge) and polled until
  finished, within the connector's wait (settings connector_async_wait_seconds,
  connector_poll_interval_seconds); its exit status is the outcome of every price of
  the chunk. WebDAV takes the same bearer token once the API client is granted `Impex`
  in the WebDAV client permissions. The archive is named after a digest of its price
  book, and the execution id is written next to it (`{name}.execution`) as soon as the
  job starts: a run that finds it (the same chunk, after a wait that ran out or a
  crash) resumes polling that execution instead of starting a second import; it is
  removed once the execution has finished.
- Throttling: OCAPI quotas answer 429 (with Retry-After when given); a 429 or 5xx
  sub-response is a transient outcome for that product.
"""

import hashlib
import io
import json
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import AsyncIterator, Sequence
from typing import Any

from connectors.base import (
    ConnectorConfig,
    ItemOutcome,
    OutgoingProduct,
    PlatformAdapter,
    PriceLevel,
    RemoteProduct,
    StockLevel,
    register,
)
from connectors.http import PlatformError, PlatformHttp
from connectors.multipart import Part, decode_multipart, encode_multipart, new_boundary
from connectors.reports import poll_within
from connectors.tokens import ClientCredentials

ACCOUNT_MANAGER_TOKEN_URL = "https://account.demandware.com/dwsso/oauth2/access_token"
API_VERSION = "v23_2"
BATCH_LIMIT = 50  # OCAPI refuses batch requests with more subrequests
SEARCH_PAGE = 200  # product_search's largest page
IMPEX = "/on/demandware.servlet/webdav/Sites/Impex/src/instance"
IMPORT_JOB = "sfcc-site-archive-import"
PRICEBOOK_NS = "http://www.demandware.com/xml/impex/pricebook/2006-10-31"
JOB_ENDED = {"finished", "aborted"}  # execution statuses after which nothing changes


def localized(value: str | None) -> dict[str, str] | None:
    return None if value is None else {"default": value}


def default_text(value: Any) -> str | None:
    if isinstance(value, dict):
        text = value.get("default")
        if isinstance(text, dict):  # markup attributes: {"default": {"markup": ...}}
            text = text.get("markup") or text.get("source")
        return None if text is None else str(text)
    return None if value is None else str(value)


@register
class SfccAdapter(PlatformAdapter):
    platform = "sfcc"

    def __init__(self, config: ConnectorConfig, http: PlatformHttp) -> None:
        super().__init__(config, http)
        options = config.options
        self.version = options.get("api_version", API_VERSION)
        self.base = (config.base_url or "").rstrip("/")
        self.root = f"{self.base}/s/-/dw"
        self.token = ClientCredentials(
            http,
            options.get("token_url", ACCOUNT_MANAGER_TOKEN_URL),
            config.credentials["client_id"],
            config.credentials["client_secret"],
            basic_auth=True,
        )

    @property
    def data_path(self) -> str:
        return f"/s/-/dw/data/{self.version}/"

    async def _call(
        self, method: str, resource: str, body: Any = None, *, idempotent: bool | None = None
    ) -> Any:
        response = await self.http.request(
            method, f"{self.root}/data/{self.version}/{resource}",
            auth=self.token.headers, json=body, idempotent=idempotent,
        )  # fmt: skip
        return response.json()

    async def test(self) -> str:
        sites = await self._call("GET", "sites")
        ids = [site.get("id", "?") for site in sites.get("data", [])]
        return f"Salesforce B2C Commerce : {len(ids)} site(s) ({', '.join(ids)})"

    async def _batch(
        self, requests: Sequence[tuple[str, str, dict[str, Any]]]
    ) -> list[tuple[int, dict[str, Any]]]:
        """Send (method, resource, body) subrequests in one OCAPI batch request; answer
        (status, body) per subrequest, in order. The subrequests are PUTs and PATCHes
        by our ids (a PUT by product id creates or replaces that product), so a batch
        whose answer was lost is sent again as it is: nothing can be created twice."""
        boundary = new_boundary("dw")
        parts = [
            Part(
                {
                    "x-dw-content-id": str(index),
                    "x-dw-http-method": method,
                    "x-dw-resource-path-extension": resource,
                    "Content-Type": "application/json",
                },
                json.dumps(body).encode(),
            )
            for index, (method, resource, body) in enumerate(requests)
        ]
        response = await self.http.request(
            "POST",
            f"{self.root}/batch",
            headers={
                "Content-Type": f"multipart/mixed; boundary={boundary}",
                "x-dw-http-method": "POST",
                "x-dw-resource-path": self.data_path,
            },
            content=encode_multipart(parts, boundary),
            auth=self.token.headers,
            idempotent=True,
        )
        answers: dict[int, tuple[int, dict[str, Any]]] = {}
        for part in decode_multipart(response.content, response.headers["content-type"]):
            status = int(part.headers.get("x-dw-status-code", "500"))
            body = json.loads(part.body) if part.body.strip() else {}
            answers[int(part.headers["x-dw-content-id"])] = (status, body)
        return [answers.get(index, (500, {})) for index in range(len(requests))]

    async def _batched(
        self,
        items: Sequence[Any],
        requests: Sequence[tuple[str, str, dict[str, Any]]],
        ids: Sequence[str],
    ) -> list[ItemOutcome]:
        outcomes = []
        for start in range(0, len(items), BATCH_LIMIT):
            answers = await self._batch(requests[start : start + BATCH_LIMIT])
            for item, external_id, (status, body) in zip(
                items[start : start + BATCH_LIMIT], ids[start : start + BATCH_LIMIT], answers,
                strict=True,
            ):  # fmt: skip
                outcomes.append(outcome(item.product_id, external_id, status, body))
        return outcomes

    async def push_products(self, products: Sequence[OutgoingProduct]) -> list[ItemOutcome]:
        requests = []
        ids = []
        for product in products:
            body = {
                "name": localized(product.name),
                "long_description": localized(product.description),
                "short_description": localized(product.short_description),
                "brand": product.brand,
                "ean": product.ean,
                "online_flag": {"default": product.is_active},
            }
            body = {key: value for key, value in body.items() if value is not None}
            if product.external_id:
                requests.append(("PATCH", f"products/{product.external_id}", body))
                ids.append(product.external_id)
            else:
                requests.append(("PUT", f"products/{product.sku}", {"id": product.sku, **body}))
                ids.append(product.sku)
        return await self._batched(products, requests, ids)

    async def pull_products(self) -> AsyncIterator[list[RemoteProduct]]:
        page_size = int(self.config.options.get("page_size", SEARCH_PAGE))
        start = 0
        while True:
            result = await self._call(
                "POST",
                "product_search",
                {
                    "query": {"match_all_query": {}},
                    "select": "(**)",
                    "start": start,
                    "count": page_size,
                },
                idempotent=True,  # a search
            )
            hits = result.get("hits", [])
            if hits:
                yield [remote(hit) for hit in hits]
            start += len(hits)
            if not hits or start >= int(result.get("total", 0)):
                return

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemOutcome]:
        inventory_list = self.config.options["inventory_list_id"]
        ids = [level.external_id or level.sku for level in levels]
        requests = [
            (
                "PUT",
                f"inventory_lists/{inventory_list}/product_inventory_records/{product_id}",
                {"allocation": {"amount": level.quantity}},
            )
            for level, product_id in zip(levels, ids, strict=True)
        ]
        return await self._batched(levels, requests, ids)

    async def push_prices(self, prices: Sequence[PriceLevel]) -> list[ItemOutcome]:
        """Prices travel as a price book import: a site archive holding one price book
        XML, uploaded over WebDAV and imported by the `sfcc-site-archive-import` system
        job; the job's exit status is every price's outcome."""
        book = self._price_book(prices)
        name = f"pixee-prices-{hashlib.sha256(book).hexdigest()[:32]}"
        marker = f"{self.base}{IMPEX}/{name}.execution"
        execution_id = await self._started_execution(marker)
        if execution_id is None:
            execution_id = await self._start_import(name, book)
            await self._webdav("PUT", marker, execution_id.encode())
        execution = await poll_within(
            self.config,
            lambda: self._call("GET", f"jobs/{IMPORT_JOB}/executions/{execution_id}"),
            lambda execution: execution.get("execution_status") in JOB_ENDED,
        )
        if execution.get("execution_status") not in JOB_ENDED:
            error = f"import du price book en cours (exécution {execution_id}), suivi ensuite"
            return [ItemOutcome(p.product_id, ok=False, transient=True, error=error)
                    for p in prices]  # fmt: skip
        await self._webdav("DELETE", marker)
        exit_status = execution.get("exit_status") or {}
        if exit_status.get("code") != "OK":
            error = exit_status.get("message") or f"import du price book : {exit_status}"
            return [ItemOutcome(p.product_id, ok=False, error=error) for p in prices]
        return [ItemOutcome(p.product_id, ok=True, external_id=p.external_id or p.sku)
                for p in prices]  # fmt: skip

    async def _webdav(self, method: str, url: str, content: bytes | None = None) -> bytes:
        response = await self.http.request(method, url, auth=self.token.headers, content=content)
        return response.content

    async def _started_execution(self, marker: str) -> str | None:
        """The execution already importing this very price book, if one was started."""
        try:
            return (await self._webdav("GET", marker)).decode().strip() or None
        except PlatformError as exc:
            if exc.status == 404:
                return None
            raise

    async def _start_import(self, name: str, book: bytes) -> str:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{name}/pricebooks/pixee.xml", book)
        await self._webdav("PUT", f"{self.base}{IMPEX}/{name}.zip", buffer.getvalue())
        started = await self._call(
            "POST", f"jobs/{IMPORT_JOB}/executions", {"file_name": f"{name}.zip", "mode": "merge"}
        )
        return str(started["id"])

    def _price_book(self, prices: Sequence[PriceLevel]) -> bytes:
        books = ET.Element("pricebooks", {"xmlns": PRICEBOOK_NS})
        book = ET.SubElement(books, "pricebook")
        header = ET.SubElement(
            book,
            "header",
            {"pricebook-id": self.config.options["price_book_id"]},
        )
        ET.SubElement(header, "currency").text = self.config.currency
        tables = ET.SubElement(book, "price-tables")
        for price in prices:
            table = ET.SubElement(
                tables, "price-table",
                {"product-id": price.external_id or price.sku},
            )  # fmt: skip
            ET.SubElement(table, "amount", {"quantity": "1"}).text = f"{price.price:.2f}"
        return ET.tostring(books, encoding="utf-8", xml_declaration=True)


def outcome(product_id: Any, external_id: str, status: int, body: dict[str, Any]) -> ItemOutcome:
    if 200 <= status < 300:
        return ItemOutcome(product_id, ok=True, external_id=body.get("id", external_id))
    fault = body.get("fault") or {}
    message = fault.get("message") or fault.get("type") or f"HTTP {status}"
    return ItemOutcome(
        product_id, ok=False, error=message, transient=status == 429 or status >= 500
    )


def remote(hit: dict[str, Any]) -> RemoteProduct:
    online = hit.get("online_flag")
    return RemoteProduct(
        external_id=str(hit["id"]),
        sku=str(hit["id"]),
        ean=hit.get("ean"),
        name=default_text(hit.get("name")),
        description=default_text(hit.get("long_description")),
        brand=hit.get("brand"),
        is_active=online.get("default") if isinstance(online, dict) else online,
    )
