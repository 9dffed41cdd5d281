"""A strict fake of Fnac Darty's marketplace XML services (`api.php/`, mp-dialog.xsd) for
the exactly-once tests: auth sessions, offers_update batches and their batch_status,
offers_query.

As on Fnac: every service but auth is signed with partner_id, shop_id and a session
token as attributes of its root; a token unknown or past its session (here: after
`session_calls` calls) gets a FATAL answer and nothing is processed. An
offers_update upserts offers by SellerSku; a new offer needs its product EAN, a price
and a product state, else it is refused in the batch's report; at most 10,000 offers
a batch. A batch is reported RUNNING once, then per offer (OK or ERROR), the batch
ERROR when any offer is. Every batch processed is kept, so a test sees what was sent
more than once. It sits behind tests.connectors.fakes.faults like the other fakes.
"""

import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

NS = "http://www.fnac.com/schemas/mp-dialog.xsd"
API = "/api.php"
PARTNER_ID, SHOP_ID, KEY = "PARTNER", "SHOP", "KEY"
MAX_OFFERS = 10_000


def found(element: ET.Element, name: str) -> ET.Element | None:
    return element.find(f"{{{NS}}}{name}")


def text(element: ET.Element, name: str) -> str:
    child = found(element, name)
    return (child.text or "").strip() if child is not None else ""


def answer(service: str, status: str, inner: str = "") -> Response:
    body = f'<?xml version="1.0" encoding="utf-8"?><{service}_response xmlns="{NS}" ' \
           f'status="{status}">{inner}</{service}_response>'  # fmt: skip
    return Response(body, media_type="text/xml")


def error(code: str, message: str) -> str:
    return f'<error code="{code}" severity="ERROR">{message}</error>'


@dataclass
class Batch:
    reports: dict[str, str | None]  # SellerSku -> error (None: applied)
    polls: int = 0


@dataclass
class FnacShop:
    session_calls: int = 1_000_000  # signed calls a session token is good for
    offers: dict[str, dict[str, str]] = field(default_factory=dict)  # by SellerSku
    batches: dict[str, Batch] = field(default_factory=dict)
    offer_sends: Counter[str] = field(default_factory=Counter)  # offers per SellerSku
    sessions: dict[str, int] = field(default_factory=dict)  # token -> calls made with it
    expired_refusals: int = 0
    # Tokens of the calls received (a test asserts none reached another host).
    tokens: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route(f"{API}/auth", self.auth, methods=["POST"]),
            Route(f"{API}/offers_update", self.offers_update, methods=["POST"]),
            Route(f"{API}/batch_status", self.batch_status, methods=["POST"]),
            Route(f"{API}/offers_query", self.offers_query, methods=["POST"]),
        ])  # fmt: skip

    async def auth(self, request: Request) -> Response:
        root = ET.fromstring(await request.body())
        given = tuple(text(root, name) for name in ("partner_id", "shop_id", "key"))
        if given != (PARTNER_ID, SHOP_ID, KEY):
            return answer("auth", "FATAL", error("ERR_001", "Identifiants invalides"))
        token = str(uuid.uuid4()).upper()
        self.sessions[token] = 0
        return answer("auth", "OK", f"<token>{token}</token>"
                                    "<validity>2099-01-01T10:00:00+01:00</validity>")  # fmt: skip

    async def _signed(self, request: Request, service: str) -> ET.Element | Response:
        root = ET.fromstring(await request.body())
        token = root.get("token", "")
        self.tokens.append(token)
        if (root.get("partner_id"), root.get("shop_id")) != (PARTNER_ID, SHOP_ID):
            return answer(service, "FATAL", error("ERR_002", "Partenaire ou boutique inconnus"))
        if token not in self.sessions or self.sessions[token] >= self.session_calls:
            self.expired_refusals += 1
            return answer(service, "FATAL", error("ERR_011", "Session expirée ou invalide"))
        self.sessions[token] += 1
        return root

    async def offers_update(self, request: Request) -> Response:
        root = await self._signed(request, "offers_update")
        if isinstance(root, Response):
            return root
        offers = root.findall(f"{{{NS}}}offer")
        if not offers or len(offers) > MAX_OFFERS:
            return answer("offers_update", "FATAL", error("ERR_020", "1 à 10000 offres par lot"))
        batch_id = str(uuid.uuid4()).upper()
        self.batches[batch_id] = Batch({})
        for offer in offers:
            self._upsert(offer, self.batches[batch_id])
        return answer("offers_update", "OK", f"<batch_id>{batch_id}</batch_id>")

    def _upsert(self, offer: ET.Element, batch: Batch) -> None:
        reference = found(offer, "offer_reference")
        sku = text(offer, "offer_reference")
        if reference is None or reference.get("type") != "SellerSku" or not sku:
            return  # not reportable: Fnac reports offers by SellerSku
        self.offer_sends[sku] += 1
        values = {child.tag.split("}")[1]: (child.text or "").strip() for child in offer}
        ean = values.get("product_reference", "")
        if sku not in self.offers and not (ean.isdigit() and len(ean) == 13):
            batch.reports[sku] = "ERR_105 Produit inconnu : EAN requis pour une nouvelle offre"
        elif sku not in self.offers and not {"price", "product_state"} <= values.keys():
            batch.reports[sku] = "ERR_106 Prix et état requis pour une nouvelle offre"
        else:
            self.offers[sku] = {**self.offers.get(sku, {}), **values}
            batch.reports[sku] = None

    async def batch_status(self, request: Request) -> Response:
        root = await self._signed(request, "batch_status")
        if isinstance(root, Response):
            return root
        batch_id = text(root, "batch_id")
        batch = self.batches.get(batch_id)
        if batch is None:
            return answer("batch_status", "FATAL", error("ERR_030", "Lot inconnu"))
        batch.polls += 1
        if batch.polls == 1:
            return answer("batch_status", "RUNNING", f"<batch_id>{batch_id}</batch_id>")
        offers = "".join(
            f'<offer status="OK"><offer_seller_id>{sku}</offer_seller_id></offer>'
            if problem is None else
            f'<offer status="ERROR"><offer_seller_id>{sku}</offer_seller_id>'
            f"{error(*problem.split(' ', 1))}</offer>"
            for sku, problem in batch.reports.items()
        )  # fmt: skip
        status = "ERROR" if any(batch.reports.values()) else "OK"
        return answer("batch_status", status, f"<batch_id>{batch_id}</batch_id>{offers}")

    async def offers_query(self, request: Request) -> Response:
        root = await self._signed(request, "offers_query")
        if isinstance(root, Response):
            return root
        page, size = int(text(root, "paging") or 1), int(root.get("results_count") or 100)
        skus = list(self.offers)[(page - 1) * size : page * size]
        pages = max(1, -(-len(self.offers) // size))
        offers = "".join(f"<offer><offer_seller_id>{sku}</offer_seller_id></offer>" for sku in skus)
        return answer("offers_query", "OK", f"<page>{page}</page><total_paging>{pages}"
                      f"</total_paging><nb_total_result>{len(self.offers)}</nb_total_result>"
                      f"{offers}")  # fmt: skip
