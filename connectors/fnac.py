"""Fnac Darty marketplace, through its XML web services (`https://vendeur.fnac.com/api.php/`,
the `mp-dialog.xsd` schema).

Checked against Fnac Darty's Marketplace API documentation for sellers (services auth,
offers_update, batch_status, offers_query and the mp-dialog.xsd schema).

- Auth: `POST auth` with partner_id, shop_id and key answers a token and its
  `validity` (an ISO 8601 time); every later call carries partner_id, shop_id and token
  as attributes of its root element. The token is renewed a minute before its
  validity ends, and once more when Fnac refuses a call as a whole (root status
  FATAL, what an expired session gets), the call then being sent again: a FATAL call
  was not processed. fnapy, the Python client, also re-authenticates and resends.
- Products: Fnac sells offers on its own catalogue, matched by EAN, so a product is
  pushed as an offer: one `offers_update` for the whole chunk, one `<offer>` per
  product (`product_reference type="Ean"`, `offer_reference type="SellerSku"` = our
  SKU, which is also the external id Fnac addresses the offer by; price, quantity,
  `product_state` 11 = new, description). A product without an EAN cannot be offered
  and is refused without a call.
- An offers_update is an upsert by SellerSku: sent again after an unknown outcome (a
  5xx, a timeout), it updates the same offers, so nothing is looked up before. Option
  `chunk_size` sends smaller batches than 10,000 offers.
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

import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
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
# A session's lifetime when the auth answer gives no `validity`: ten minutes.
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

    async def _post(self, service: str, root: ET.Element) -> ET.Element:
        response = await self.http.request(
            "POST", f"{self.base}/{service}",
            headers={"Content-Type": "text/xml; charset=utf-8"},
            content=ET.tostring(root, encoding="utf-8", xml_declaration=True),
        )  # fmt: skip
        try:
            return ET.fromstring(response.content)
        except ET.ParseError as exc:
            raise PlatformError(f"{service} : réponse XML illisible") from exc

    async def _call(
        self, service: str, fill: Callable[[ET.Element], object], *,
        refused: tuple[str, ...] = ("ERROR", "FATAL"), **attributes: str,
    ) -> ET.Element:  # fmt: skip
        """`service` called with a root element signed with the session token and
        filled by `fill`. Fnac refuses a call whose session has expired as a whole
        (FATAL, nothing processed), so a FATAL answer opens a new session and sends the
        call again, once; an answer whose status is in `refused` raises Fnac's error."""
        signed, fetch = await self._signed(service, fill, attributes)
        answer = await self._post(service, signed)
        if answer.get("status") == "FATAL":
            renewed, _ = await self._signed(service, fill, attributes, expired=fetch)
            answer = await self._post(service, renewed)
        if answer.get("status") in refused:
            raise PlatformError(f"{service} : {error_text(answer)}")
        return answer

    async def _signed(
        self, service: str, fill: Callable[[ET.Element], object], attributes: dict[str, str],
        expired: int | None = None,
    ) -> tuple[ET.Element, int]:  # fmt: skip
        """The call's root element, and the fetch of the session token it carries;
        `expired`: the fetch of a call Fnac refused (renewed unless another call's refusal
        already has)."""
        credentials = self.config.credentials
        token = await self.token.get(expired)
        root = ET.Element(
            service,
            {"xmlns": NS, "partner_id": credentials["partner_id"],
             "shop_id": credentials["shop_id"], "token": token, **attributes},
        )  # fmt: skip
        fill(root)
        return root, self.token.fetched

    async def _login(self) -> tuple[str, float]:
        credentials = self.config.credentials
        auth = ET.Element("auth", {"xmlns": NS})
        child(auth, "partner_id", credentials["partner_id"])
        child(auth, "shop_id", credentials["shop_id"])
        child(auth, "key", credentials["key"])
        answer = await self._post("auth", auth)
        if answer.get("status") in ("ERROR", "FATAL"):
            raise PlatformError(f"auth : {error_text(answer)}")
        token = text_of(answer, "token")
        if not token:
            raise PlatformError("auth : pas de jeton dans la réponse Fnac")
        return token, session_lifetime(text_of(answer, "validity"))

    async def test(self) -> str:
        answer = await self._call("offers_query", paging(1), results_count="1")
        offers = text_of(answer, "nb_total_result") or 0
        return f"Fnac : boutique {self.config.credentials['shop_id']}, {offers} offre(s)"

    async def _update(
        self, items: Sequence[Any], offers: Sequence[dict[str, Any] | None]
    ) -> list[ItemOutcome]:
        """One offers_update for `offers` (one per item, or None to refuse the item), then
        batch_status until Fnac has reported every offer or the polls run out."""
        reports: dict[str, Report] = {}
        if any(offer is not None for offer in offers):
            answer = await self._call("offers_update", lambda root: add_offers(root, offers))
            batch_id = text_of(answer, "batch_id") or ""
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
        # ERROR at the root means "finished, with at least one offer in error".
        answer = await self._call(
            "batch_status", lambda root: child(root, "batch_id", batch_id), refused=("FATAL",)
        )
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
            answer = await self._call("offers_query", paging(page), results_count=page_size)
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


def paging(page: int) -> Callable[[ET.Element], object]:
    """Fills an offers_query with the page wanted."""
    return lambda root: child(root, "paging", page)


def add_offers(root: ET.Element, offers: Sequence[dict[str, Any] | None]) -> None:
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


def session_lifetime(validity: str | None) -> float:
    """Seconds until the session token expires, from the `validity` of Fnac's auth
    answer (an ISO 8601 time); SESSION_SECONDS when it says none, or a time already
    past by our clock (clocks apart: the FATAL answer renews it when it lapses)."""
    try:
        expires = datetime.fromisoformat(validity or "")
    except ValueError:
        return SESSION_SECONDS
    left = expires.timestamp() - time.time() if expires.tzinfo else 0.0
    return left if left > 0 else SESSION_SECONDS


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
