"""Amazon listings in bulk: the JSON_LISTINGS_FEED of the Feeds API 2021-06-30.

One feed carries a chunk's listings as messages (`messageId`, `sku`, `operationType`
UPDATE, `productType`, `requirements`, `attributes`: the body of a Listings Items PUT),
under a header naming the seller, the schema version 2.0 and the locale of the issues.
createFeedDocument gives an upload slot (a presigned URL: a plain PUT with the declared
Content-Type, never an SP-API credential), createFeed submits it, getFeed is polled
until DONE, FATAL or CANCELLED, and the processing report (getFeedDocument of
`resultFeedDocumentId`, GZIP when said so) lists issues per `messageId`: a message with
an ERROR issue failed, the others were accepted.

Exactly once: a feed UPDATE replaces the listing of its SKU, so a feed sent again
converges; still, a createFeed whose answer was lost (a 5xx, a timeout, a dropped
connection) is looked up with getFeeds rather than sent blind: the one feed of this
type and marketplace created since just before it was sent that this adapter does
not know yet. Feeds carry no reference of ours (getFeeds does not show the input
document), so none is taken when several match, and one taken whose report counts
other than the messages sent was not ours: either way the chunk is sent again. A feed
still unfinished past the connector's wait leaves its items transient; when they
come back it is polled again, not sent again.
"""

import gzip
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from connectors.base import ConnectorConfig, ItemOutcome
from connectors.http import PlatformError, PlatformHttp, Rate
from connectors.item_calls import Item
from connectors.reports import Report, poll_within, reported_outcomes

FEEDS = "/feeds/2021-06-30"
FEED_TYPE = "JSON_LISTINGS_FEED"
CONTENT_TYPE = "application/json; charset=UTF-8"
FINISHED = ("DONE", "FATAL", "CANCELLED")
# Documented for this feed type since May 2025: 5 submissions per 5 minutes per
# seller and region (createFeed's general default is 0.0083/s, bursts of 15).
SUBMISSIONS = Rate(per_second=5 / 300, burst=5)
# A lost createFeed is looked for among feeds created since this long before it was
# sent: our clock against Amazon's.
CLOCK_MARGIN = timedelta(seconds=30)
PENDING = "flux Amazon toujours en cours de traitement : suivi de nouveau au prochain essai"
NOT_OURS = "flux Amazon non retrouvé après une réponse perdue : envoyé de nouveau au prochain essai"
CANCELLED = "flux Amazon annulé avant traitement : envoyé de nouveau au prochain essai"
FATAL = "flux Amazon rejeté en entier (FATAL)"

Request = Callable[..., Awaitable[Any]]


@dataclass
class Feed:
    feed_id: str
    skus: list[str]  # by messageId - 1
    found: bool = False  # taken from getFeeds after createFeed's answer was lost


class ListingsFeeds:
    """Feeds of one seller's listings on one marketplace, sent with `request` (the
    adapter's authenticated SP-API call)."""

    def __init__(self, request: Request, config: ConnectorConfig, http: PlatformHttp,
                 seller: str, marketplace: str, language: str) -> None:  # fmt: skip
        self.request = request
        self.config = config
        self.http = http
        self.header = {"sellerId": seller, "version": "2.0", "issueLocale": language}
        self.marketplace = marketplace
        connector = config.connector_id or f"amazon:{config.base_url or ''} {seller}"
        self.submissions = http.buckets.bucket(
            f"{connector}:listings-feeds", SUBMISSIONS.per_second, SUBMISSIONS.burst
        )
        self.known: set[str] = set()
        self.unfinished: list[Feed] = []

    def tracking(self, skus: Sequence[str]) -> Feed | None:
        """The unfinished feed of this adapter that carries all of `skus`."""
        return next((f for f in self.unfinished if set(skus) <= set(f.skus)), None)

    async def push(
        self, items: Sequence[Item], messages: list[dict[str, Any]]
    ) -> list[ItemOutcome]:
        skus = [str(m["sku"]) for m in messages]
        feed = self.tracking(skus)
        if feed is None:
            feed = await self._submit(messages)
            self.unfinished.append(feed)
        status = await poll_within(
            self.config, partial(self.request, "GET", f"{FEEDS}/feeds/{feed.feed_id}"),
            lambda s: s.get("processingStatus") in FINISHED,
        )  # fmt: skip
        state = status.get("processingStatus")
        if state in FINISHED:
            self.unfinished.remove(feed)
        if state == "CANCELLED":
            return [ItemOutcome(i.product_id, ok=False, transient=True, error=CANCELLED)
                    for i in items]  # fmt: skip
        reports: dict[str, Report] = {}
        if state in FINISHED and (document := status.get("resultFeedDocumentId")):
            report = await self._report(str(document))
            summary = report.get("summary") or {}
            if feed.found and summary.get("messagesProcessed") != len(feed.skus):
                # Not the feed whose answer was lost after all: its items are sent again.
                return reported_outcomes(items, skus, {}, pending=NOT_OURS)
            reports = _reports(report, feed.skus, state == "FATAL")
        elif state == "FATAL":
            reports = dict.fromkeys(feed.skus, (False, FATAL))
        return reported_outcomes(items, skus, reports, pending=PENDING)

    async def _submit(self, messages: list[dict[str, Any]]) -> Feed:
        # An upload slot asked for twice leaves one unused, which Amazon lets expire.
        slot = await self.request("POST", f"{FEEDS}/documents", json={"contentType": CONTENT_TYPE},
                                  idempotent=True)  # fmt: skip
        skus = [str(m["sku"]) for m in messages]
        document = json.dumps({"header": self.header, "messages": messages}).encode()
        await self.http.request(
            "PUT", str(slot["url"]), content=document, headers={"Content-Type": CONTENT_TYPE},
            idempotent=True,
        )  # fmt: skip
        specification = {"feedType": FEED_TYPE, "marketplaceIds": [self.marketplace],
                         "inputFeedDocumentId": slot["feedDocumentId"]}  # fmt: skip
        await self.submissions.take()
        since = datetime.now(UTC) - CLOCK_MARGIN
        try:
            answer = await self.request("POST", f"{FEEDS}/feeds", json=specification)
            feed = Feed(str(answer["feedId"]), skus)
        except PlatformError as exc:
            if not exc.uncertain or (found := await self._lost(since)) is None:
                raise
            feed = Feed(found, skus, found=True)
        self.known.add(feed.feed_id)
        return feed

    async def _lost(self, since: datetime) -> str | None:
        """The feed a createFeed whose answer was lost created, if Amazon shows it: the
        one feed of this type created since, not known yet (several: none is taken)."""
        page = await self.request("GET", f"{FEEDS}/feeds", params={
            "feedTypes": FEED_TYPE, "marketplaceIds": self.marketplace, "pageSize": 100,
            "createdSince": since.strftime("%Y-%m-%dT%H:%M:%SZ")})  # fmt: skip
        feeds = [f for f in page.get("feeds") or [] if str(f.get("feedId")) not in self.known]
        return str(feeds[0]["feedId"]) if len(feeds) == 1 else None

    async def _report(self, document_id: str) -> dict[str, Any]:
        document = await self.request("GET", f"{FEEDS}/documents/{document_id}")
        # Presigned as well: fetched without SP-API credentials.
        content = (await self.http.request("GET", str(document["url"]))).content
        if document.get("compressionAlgorithm") == "GZIP":
            content = gzip.decompress(content)
        report: dict[str, Any] = json.loads(content)
        return report


def _reports(report: dict[str, Any], skus: Sequence[str], fatal: bool) -> dict[str, Report]:
    """Each SKU's outcome from a processing report: failed with its ERROR issues, else
    accepted; in a FATAL feed a message without issues of its own failed with the
    feed's."""
    errors: dict[int | None, list[str]] = {}
    for issue in report.get("issues") or []:
        if issue.get("severity") == "ERROR":
            errors.setdefault(issue.get("messageId"), []).append(
                f"{issue.get('code')}: {issue.get('message')}"
            )
    whole = "; ".join(errors.get(None, [])) or FATAL
    outcomes: dict[str, Report] = {}
    for number, sku in enumerate(skus, 1):
        if own := errors.get(number):
            outcomes[sku] = (False, "; ".join(own))
        else:
            outcomes[sku] = (False, whole) if fatal else (True, None)
    return outcomes
