"""Fnac Darty marketplace, through its XML web services (`https://vendeur.fnac.com/api.php/`,
the `mp-dialog.xsd` schema).

Checked against Fnac Darty's Marketplace API documentation for sellers (services auth,
offers_update, batch_status, offers_query and the mp-dialog.xsd schema).

- Auth: `POST auth` with partner_id, shop_id and key answers a token; every later call
  carries partner_id, shop_id and token as attributes of its root element.
- Products: Fnac sells offers on its own catalogue, matched by EAN, so a product is
  pushed as an offer: one `offers_update` for the whole chunk, one `<offer>` per
  product (`product_reference type="Ean"`, `offer_reference type="SellerSku"` = our
  SKU, which is also the external id Fnac addresses the offer by; price, quantity,
  `product_state` 11 = new, description). A product without an EAN cannot be offered
  and is refused without a call.
- The update is asynchronous: it answers a `batch_id`, and `batch_status` reports each
  offer (status, error). It is polled within the connector's wait (settings
  connector_async_wait_seconds, connector_poll_interval_seconds); an offer still
  unreported then is a transient outcome, to be sent again. A batch whose root status
  is ERROR has finished with at least one offer in error: each offer's own status
  (OK or WARNING: done; ERROR: refused with its error text) is its outcome; only a
  FATAL batch, or an ERROR that reports no offer, fails the call.
- Pull: `offers_query` with `<paging>` and `results_count`, until `page` reaches
  `total_paging`.
- Stock: `offers_update` with the offer reference and `quantity` only; prices with
  `price` only.
- Errors: 429/5xx are transient through PlatformHttp; an answer whose root `status` is
  ERROR or FATAL refuses the whole call, with Fnac's error text.
"""

import xml.etree.ElementTree as ET
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
from connectors.reports import Report, poll_within, reported_outcomes
from connectors.tokens import CachedToken

NS = "http://www.fnac.com/schemas/mp-dialog.xsd"
API = "https://vendeur.fnac.com/api.php"
NEW = "11"  # product_state of a new item
PENDING = {"ACTIVE", "RUNNING"}
DONE = {"OK", "WARNING"}  # an offer's statuses in batch_status that mean it was applied
PAGE_SIZE = 100
# The session token was cached for the adapter's life; its validity is not stated in
# the documentation we could read, so it is renewed every ten minutes.
SESSION_SECONDS = 10 * 60 + 60  # CachedToken renews a minute early


def tag(name: str) -> str:
    return f"{{{NS}}}{name}"


def child(parent: ET.Element, name: str, text: Any = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, name, attributes)
    if text is not None:
        element.text = str(text)
    return element


def text_of(element: ET.Element, name: str) -> str | None:
    found = element.find(tag(name))
    return None if found is None or found.text is None else found.text.strip()


def error_text(element: ET.Element) -> str:
    errors = [e.text.strip() for e in element.iter(tag("error")) if e.text]
    return "; ".join(errors) or element.get("status", "ERROR")


@register
class FnacAdapter(PlatformAdapter):
    platform = "fnac"
    chunk_size = 10_000  # offers per offers_update, Fnac's documented maximum

    def __init__(self, config: ConnectorConfig, http: PlatformHttp) -> None:
        super().__init__(config, http)
        self.base = (config.base_url or API).rstrip("/")
        self.token = CachedToken(self._login)

    async def _post(
        self, service: str, root: ET.Element, refused: tuple[str, ...] = ("ERROR", "FATAL")
    ) -> ET.Element:
        response = await self.http.request(
            "POST", f"{self.base}/{service}",
            headers={"Content-Type": "text/xml; charset=utf-8"},
            content=ET.tostring(root, encoding="utf-8", xml_declaration=True),
        )  # fmt: skip
        try:
            answer = ET.fromstring(response.content)
        except ET.ParseError as exc:
            raise PlatformError(f"{service} : réponse XML illisible") from exc
        if answer.get("status") in refused:
            raise PlatformError(f"{service} : {error_text(answer)}")
        return answer

    async def _request(self, service: str, **attributes: str) -> ET.Element:
        """A root element for `service`, signed with the session token."""
        credentials = self.config.credentials
        return ET.Element(
            service,
            {"xmlns": NS, "partner_id": credentials["partner_id"],
             "shop_id": credentials["shop_id"], "token": await self.token.get(), **attributes},
        )  # fmt: skip

    async def _login(self) -> tuple[str, float]:
        credentials = self.config.credentials
        auth = ET.Element("auth", {"xmlns": NS})
        child(auth, "partner_id", credentials["partner_id"])
        child(auth, "shop_id", credentials["shop_id"])
        child(auth, "key", credentials["key"])
        token = text_of(await self._post("auth", auth), "token")
        if not token:
            raise PlatformError("auth : pas de jeton dans la réponse Fnac")
        return token, SESSION_SECONDS

    async def test(self) -> str:
        root = await self._request("offers_query", results_count="1")
        child(root, "paging", 1)
        answer = await self._post("offers_query", root)
        offers = text_of(answer, "nb_total_result") or 0
        return f"Fnac : boutique {self.config.credentials['shop_id']}, {offers} offre(s)"

    async def _update(
        self, items: Sequence[Any], offers: Sequence[dict[str, Any] | None]
    ) -> list[ItemOutcome]:
        """One offers_update for `offers` (one per item, or None to refuse the item), then
        batch_status until Fnac has reported every offer or the polls run out."""
        root = await self._request("offers_update")
        for offer in offers:
            if offer is None:
                continue
            element = child(root, "offer")
            if "ean" in offer:
                child(element, "product_reference", offer["ean"], type="Ean")
            child(element, "offer_reference", offer["sku"], type="SellerSku")
            for name in ("price", "product_state", "quantity", "description"):
                if offer.get(name) is not None:
                    child(element, name, offer[name])
        reports: dict[str, Report] = {}
        if any(offer is not None for offer in offers):
            batch_id = text_of(await self._post("offers_update", root), "batch_id") or ""
            status = await poll_within(
                self.config, lambda: self._batch_status(batch_id), lambda r: r is not None
            )
            reports = status or {}
        return reported_outcomes(
            items, [None if offer is None else offer["sku"] for offer in offers], reports,
            pending="offre pas encore traitée par Fnac (batch en cours)",
            unsent="EAN requis pour une offre Fnac",
        )  # fmt: skip

    async def _batch_status(self, batch_id: str) -> dict[str, Report] | None:
        """Each offer's report, or None while Fnac is still processing the batch."""
        root = await self._request("batch_status")
        child(root, "batch_id", batch_id)
        # ERROR at the root means "finished, with at least one offer in error".
        answer = await self._post("batch_status", root, refused=("FATAL",))
        if answer.get("status") in PENDING:
            return None
        offers = list(answer.iter(tag("offer")))
        if answer.get("status") == "ERROR" and not offers:
            raise PlatformError(f"batch_status : {error_text(answer)}")
        return {
            text_of(offer, "offer_seller_id") or "": (
                offer.get("status") in DONE,
                None if offer.get("status") in DONE else error_text(offer),
            )
            for offer in offers
        }

    async def push_products(self, products: Sequence[OutgoingProduct]) -> list[ItemOutcome]:
        offers = [
            None if not product.ean else {
                "ean": product.ean, "sku": product.sku, "price": product.price,
                "product_state": NEW, "quantity": product.stock if product.is_active else 0,
                "description": product.short_description or product.description,
            }
            for product in products
        ]  # fmt: skip
        return await self._update(products, offers)

    async def pull_products(self) -> AsyncIterator[list[RemoteProduct]]:
        page_size = str(self.config.options.get("page_size", PAGE_SIZE))
        page = 1
        while True:
            root = await self._request("offers_query", results_count=page_size)
            child(root, "paging", page)
            answer = await self._post("offers_query", root)
            offers = [remote(offer) for offer in answer.iter(tag("offer"))]
            if offers:
                yield offers
            if page >= int(text_of(answer, "total_paging") or 0):
                return
            page += 1

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemOutcome]:
        offers: list[dict[str, Any] | None] = [
            {"sku": level.sku, "quantity": level.quantity} for level in levels
        ]
        return await self._update(levels, offers)

    async def push_prices(self, prices: Sequence[PriceLevel]) -> list[ItemOutcome]:
        offers: list[dict[str, Any] | None] = [
            {"sku": price.sku, "price": price.price} for price in prices
        ]
        return await self._update(prices, offers)


def remote(offer: ET.Element) -> RemoteProduct:
    sku = text_of(offer, "offer_seller_id") or text_of(offer, "offer_fnac_id") or ""
    price = text_of(offer, "price")
    quantity = text_of(offer, "quantity")
    return RemoteProduct(
        external_id=sku,
        sku=sku,
        ean=text_of(offer, "product_ean"),
        name=text_of(offer, "product_name"),
        description=text_of(offer, "description"),
        price=None if price is None else float(price),
        stock=None if quantity is None else int(quantity),
    )
