"""Mirakl Marketplace Platform (MMP), through its seller (shop) APIs.

- Auth: the shop's API key, as is, in the Authorization header (no scheme); option
  `shop_id` is passed as `shop_id` for keys that reach several shops.
- Test: A01 `GET /api/account` (the shop name).
Checked against Mirakl's seller API reference (developer.mirakl.com, MMP seller
OpenAPI: A01, P41, OF01, OF02, OF03, OF21, OF24).

- Products: a marketplace sells offers on the operator's catalog products. New products
  (no link yet) first have their sheet sent with P41 `POST /api/products/imports` (CSV,
  columns sku;ean;title;description;brand;weight, mapped by the operator's import
  configuration; the operator integrates them on its side). Every product then gets its
  offer through OF24 `POST /api/offers` (JSON, `update_delete: update`, product
  referenced by EAN when known, else by the shop SKU, state 11 = new). OF24 resets
  every field of the offer that is not sent, so each offer is sent whole: what the PIM
  holds (price, quantity, description) and the seller's own offer settings from option
  `offer_fields` (leadtime_to_ship, logistic_class, min_quantity_alert,
  internal_description, offer_additional_fields…, merged into every offer). A product
  without a price is refused before sending (OF24 requires one); an unknown stock, or
  an inactive product, is sent as quantity 0. The offer's outcome is the item's
  outcome: the external id is the shop SKU.
- Offer imports are asynchronous: OF02 `GET /api/offers/imports/{id}` is polled until
  COMPLETE (option `poll_attempts`, `poll_wait` seconds apart, a minute by default:
  Mirakl allows OF02 at most once a minute), then the OF03 error
  report (CSV, `sku` and `error-message` columns) tells which lines failed. An import
  still running after the last poll leaves its items transient, to be pushed again.
- Pull: OF21 `GET /api/offers` with `offset`/`max` (100 at most), up to `total_count`.
- Stock and prices: OF01 `POST /api/offers/imports` with `import_mode=PARTIAL_UPDATE`,
  a CSV of `sku;quantity` or `sku;price` only, so nothing else of the offer changes;
  tracked like OF24.
- Rate limits: Mirakl answers 429 with Retry-After (seconds). Offer imports (OF01,
  OF24) are allowed at most once a minute per shop: a connector never starts one
  within `import_interval` seconds (option, 60 by default) of the previous one, in
  any worker (the pace is shared through Redis on the real stack). An offer import
  is an upsert by shop SKU, so sending one again after an unknown outcome (a 5xx, a
  timeout) converges and nothing is looked up first.
- Auth is a shop API key that does not expire: no token to renew.
- Option `chunk_size` sends smaller imports than 10,000 offers.
"""

import asyncio
import csv
import io
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
from connectors.http import Bucket, PlatformHttp
from connectors.multipart import multipart_form
from connectors.tokens import Identified

PAGE_SIZE = 100  # OF21 refuses more
OFFER_IMPORTS = "/api/offers/imports"
NEW_STATE = "11"
PENDING = "import Mirakl toujours en cours : poussé de nouveau au prochain essai"
NO_PRICE = "prix manquant : une offre Mirakl (OF24) ne peut être envoyée sans prix"
# Mirakl's documented maximum for OF01, OF02 and OF24: once a minute.
IMPORT_INTERVAL = 60.0


def to_csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if value is None else value for value in row] for row in rows)
    return out.getvalue().encode()


def import_pacing(base: str, config: ConnectorConfig, http: PlatformHttp) -> Bucket:
    """One offer import (OF01 or OF24) per `import_interval` for the shop, shared by
    every job of the connector (through Redis on the real stack, so across workers)."""
    interval = float(config.options.get("import_interval", IMPORT_INTERVAL))
    shop = str(config.options.get("shop_id") or "")
    connector = config.connector_id or f"mirakl:{base} {shop}"
    return http.buckets.bucket(f"{connector}:offer-imports", 1 / max(interval, 1e-3), 1.0)


@register
class MiraklAdapter(PlatformAdapter):
    platform = "mirakl"
    # Offer imports are files: one per 10,000 offers rather than per 100, since Mirakl
    # asks for OF01/OF24 at most about once a minute.
    chunk_size = 10_000

    def __init__(self, config: ConnectorConfig, http: PlatformHttp) -> None:
        super().__init__(config, http)
        self.base = (config.base_url or "").rstrip("/")
        self.poll_attempts = int(config.options.get("poll_attempts", 20))
        self.poll_wait = float(config.options.get("poll_wait", IMPORT_INTERVAL))
        self.imports = import_pacing(self.base, config, http)

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {
            "Authorization": self.config.credentials["api_key"],
            "Accept": "application/json",
            **kwargs.pop("headers", {}),
        }
        if shop := self.config.options.get("shop_id"):
            kwargs["params"] = {**(kwargs.get("params") or {}), "shop_id": shop}
        return await self.http.request(method, self.base + path, headers=headers, **kwargs)

    async def _upload(self, path: str, fields: dict[str, str], rows: bytes) -> str:
        body, content_type = multipart_form(fields, "file", "pim.csv", rows, "text/csv")
        if path == OFFER_IMPORTS:
            await self.imports.take()
        response = await self._request(
            "POST", path, content=body, headers={"Content-Type": content_type}
        )
        return str(response.json()["import_id"])

    async def test(self) -> str:
        account = (await self._request("GET", "/api/account")).json()
        return str(account.get("shop_name") or account["shop_id"])

    async def _track(
        self, import_id: str, items: Sequence[Identified], skus: Sequence[str]
    ) -> list[ItemOutcome]:
        """Outcomes of an offers import (OF01/OF24), once Mirakl has processed it."""
        status: dict[str, Any] = {}
        for attempt in range(self.poll_attempts):
            status = (await self._request("GET", f"/api/offers/imports/{import_id}")).json()
            if status.get("status") in ("COMPLETE", "FAILED"):
                break
            if attempt + 1 < self.poll_attempts:
                await asyncio.sleep(self.poll_wait)
        if status.get("status") not in ("COMPLETE", "FAILED"):
            return [
                ItemOutcome(i.product_id, ok=False, transient=True, error=PENDING) for i in items
            ]
        errors: dict[str, str] = {}
        if status.get("status") == "FAILED":
            reason = str(status.get("reason_status") or "import refusé par Mirakl")
            errors = dict.fromkeys(skus, reason)
        elif status.get("lines_in_error") or status.get("has_error_report"):
            report = await self._request("GET", f"/api/offers/imports/{import_id}/error_report")
            for line in csv.DictReader(io.StringIO(report.text), delimiter=";"):
                errors[line.get("sku", "")] = line.get("error-message") or "ligne en erreur"
        return [
            ItemOutcome(item.product_id, ok=False, error=errors[sku])
            if sku in errors
            else ItemOutcome(item.product_id, ok=True, external_id=sku)
            for item, sku in zip(items, skus, strict=True)
        ]

    def _offer(self, product: OutgoingProduct) -> dict[str, Any]:
        # The whole offer: OF24 resets whatever is left out.
        return {
            **dict(self.config.options.get("offer_fields") or {}),
            "shop_sku": product.sku,
            "product_id": product.ean or product.sku,
            "product_id_type": "EAN" if product.ean else "SHOP_SKU",
            "state_code": NEW_STATE,
            "update_delete": "update",
            "description": product.short_description or product.description,
            "price": product.price,
            "quantity": (product.stock or 0) if product.is_active else 0,
        }

    async def push_products(self, products: Sequence[OutgoingProduct]) -> list[ItemOutcome]:
        priced = [p for p in products if p.price is not None]
        new = [p for p in priced if not p.external_id]
        if new:
            rows = [(p.sku, p.ean, p.name, p.description, p.brand, p.weight) for p in new]
            header = ("sku", "ean", "title", "description", "brand", "weight")
            await self._upload("/api/products/imports", {}, to_csv(header, rows))
        sent: list[ItemOutcome] = []
        if priced:
            await self.imports.take()
            response = await self._request(
                "POST", "/api/offers", json={"offers": [self._offer(p) for p in priced]}
            )
            import_id = str(response.json()["import_id"])
            sent = await self._track(import_id, priced, [p.sku for p in priced])
        outcomes = iter(sent)
        return [
            next(outcomes)
            if p.price is not None
            else ItemOutcome(p.product_id, ok=False, error=NO_PRICE)
            for p in products
        ]

    async def pull_products(self) -> AsyncIterator[list[RemoteProduct]]:
        offset = 0
        while True:
            body = (await self._request(
                "GET", "/api/offers", params={"offset": offset, "max": PAGE_SIZE}
            )).json()  # fmt: skip
            offers = body.get("offers", [])
            yield [_remote(offer) for offer in offers]
            offset += len(offers)
            if not offers or offset >= int(body.get("total_count", 0)):
                return

    async def _partial(
        self, column: str, items: Sequence[StockLevel | PriceLevel], values: list[Any]
    ) -> list[ItemOutcome]:
        skus = [item.external_id or item.sku for item in items]
        rows = to_csv(("sku", column), list(zip(skus, values, strict=True)))
        import_id = await self._upload(OFFER_IMPORTS, {"import_mode": "PARTIAL_UPDATE"}, rows)
        return await self._track(import_id, items, skus)

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemOutcome]:
        return await self._partial("quantity", levels, [level.quantity for level in levels])

    async def push_prices(self, prices: Sequence[PriceLevel]) -> list[ItemOutcome]:
        return await self._partial("price", prices, [f"{p.price:.2f}" for p in prices])


def _remote(offer: dict[str, Any]) -> RemoteProduct:
    eans = [r["reference"] for r in offer.get("product_references", [])
            if r.get("reference_type") == "EAN"]  # fmt: skip
    price = offer.get("price")
    return RemoteProduct(
        external_id=str(offer["shop_sku"]),
        sku=offer.get("shop_sku"),
        ean=eans[0] if eans else None,
        name=offer.get("product_title"),
        description=offer.get("description"),
        brand=offer.get("product_brand"),
        price=float(price) if price is not None else None,
        stock=offer.get("quantity"),
        is_active=offer.get("active"),
    )
