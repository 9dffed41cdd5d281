"""A strict loopback Feeds API 2021-06-30 for the JSON_LISTINGS_FEED, shaped from
developer-docs.amazon.com/sp-api: Login with Amazon's token exchange, feed documents
with their presigned upload and download URLs (served by the same fake), feeds
processed asynchronously and a processing report per message.

A feed waits IN_QUEUE, is IN_PROGRESS at its first getFeed, and is processed at the
`polls`-th one. Its document is read as Amazon reads it: a header of another seller or
version, or no JSON at all, makes the feed FATAL with a feed-level issue; each message
is an UPDATE (a listing replaced by SKU, in `listings`), a PATCH of an existing
listing or a DELETE, and one with unknown fields, or lacking what the LISTING
requirements need, gets its ERROR issues and changes nothing. The presigned URLs
refuse an SP-API credential or Authorization header (an unsigned x-amz header, for
S3) and an upload whose Content-Type is not the one declared. Access tokens expire
after `token_calls` calls with the SP-API's 403 Unauthorized.
"""

import gzip
import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.connectors.fakes.amazon import (
    CREDENTIALS,
    REQUIREMENTS,
    SELLER,
    errors,
    issues_of,
)
from tests.connectors.fakes.oauth import is_refresh_grant
from tests.connectors.fakes.upserts import Upserts

FEEDS = "/feeds/2021-06-30"
MESSAGE_FIELDS = {"messageId", "sku", "operationType", "productType", "requirements",
                  "attributes", "patches"}  # fmt: skip
SIGNED = "X-Amz-Signature"


@dataclass
class Document:
    content_type: str
    content: bytes | None = None


@dataclass
class FeedsCentral:
    token_calls: int | None = None
    polls: int = 2
    listings: Upserts = field(default_factory=Upserts)
    documents: dict[str, Document] = field(default_factory=dict)
    feeds: dict[str, dict[str, Any]] = field(default_factory=dict)
    reports: dict[str, bytes] = field(default_factory=dict)
    token_requests: int = 0
    tokens: Counter[str] = field(default_factory=Counter)  # calls each token served
    ids: Any = field(default_factory=lambda: itertools.count(50001))

    def app(self) -> Starlette:
        async def token(request: Request) -> JSONResponse:
            if not await is_refresh_grant(request, CREDENTIALS):
                return JSONResponse({"error": "invalid_grant"}, 400)
            self.token_requests += 1
            issued = f"Atza|feeds-{self.token_requests}"
            self.tokens[issued] = 0
            return JSONResponse({"access_token": issued, "token_type": "bearer",
                                 "expires_in": 3600})  # fmt: skip

        def refused(request: Request) -> JSONResponse | None:
            issued = request.headers.get("x-amz-access-token", "")
            if issued not in self.tokens:
                return errors(403, "Unauthorized", "Access to requested resource is denied.")
            self.tokens[issued] += 1
            if self.token_calls is not None and self.tokens[issued] > self.token_calls:
                return JSONResponse({"errors": [{
                    "code": "Unauthorized", "message": "Access to requested resource is denied.",
                    "details": "The access token you provided has expired."}]}, 403)  # fmt: skip
            return None

        def presigned(request: Request) -> Response | None:
            if (request.query_params.get(SIGNED) != "fake"
                    or any(h == "authorization" or h.startswith("x-amz-") for h in request.headers)):  # fmt: skip
                return Response("<Error><Code>AccessDenied</Code></Error>", 403)
            return None

        async def create_document(request: Request) -> JSONResponse:
            if answer := refused(request):
                return answer
            body = await request.json()
            if set(body) != {"contentType"}:
                return errors(400, "InvalidInput", "contentType is required")
            document_id = f"amzn1.tortuga.4.eu.{next(self.ids)}"
            self.documents[document_id] = Document(body["contentType"])
            url = f"{request.base_url}uploads/{document_id}?{SIGNED}=fake"
            return JSONResponse({"feedDocumentId": document_id, "url": url}, 201)

        async def upload(request: Request) -> Response:
            document = self.documents.get(request.path_params["document"])
            if (answer := presigned(request)) or document is None:
                return answer or Response("NoSuchKey", 404)
            if request.headers.get("content-type") != document.content_type:
                return Response("<Error><Code>SignatureDoesNotMatch</Code></Error>", 403)
            document.content = await request.body()
            return Response(status_code=200)

        async def create_feed(request: Request) -> JSONResponse:
            if answer := refused(request):
                return answer
            body = await request.json()
            document = self.documents.get(body.get("inputFeedDocumentId", ""))
            if (set(body) - {"feedType", "marketplaceIds", "inputFeedDocumentId", "feedOptions"}
                    or body.get("feedType") != "JSON_LISTINGS_FEED"
                    or not isinstance(body.get("marketplaceIds"), list)
                    or document is None or document.content is None):  # fmt: skip
                return errors(400, "InvalidInput", "invalid feed specification")
            feed_id = str(next(self.ids))
            self.feeds[feed_id] = {
                "feedId": feed_id, "feedType": body["feedType"],
                "marketplaceIds": body["marketplaceIds"], "processingStatus": "IN_QUEUE",
                "createdTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "_document": body["inputFeedDocumentId"], "_polls": 0,
            }  # fmt: skip
            return JSONResponse({"feedId": feed_id}, 202, {"x-amzn-RateLimit-Limit": "0.0083"})

        def shown(feed: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in feed.items() if not k.startswith("_")}

        async def get_feeds(request: Request) -> JSONResponse:
            if answer := refused(request):
                return answer
            query = request.query_params
            if not query.get("feedTypes"):
                return errors(400, "InvalidInput", "feedTypes is required")
            since = query.get("createdSince", "")
            found = [shown(f) for f in self.feeds.values()
                     if f["feedType"] in query["feedTypes"].split(",") and f["createdTime"] >= since]  # fmt: skip
            return JSONResponse({"feeds": found})

        async def get_feed(request: Request) -> JSONResponse:
            if answer := refused(request):
                return answer
            feed = self.feeds.get(request.path_params["feed"])
            if feed is None:
                return errors(404, "NotFound", "feed not found")
            feed["_polls"] += 1
            if feed["processingStatus"] == "IN_QUEUE":
                feed["processingStatus"] = "IN_PROGRESS"
            if feed["processingStatus"] == "IN_PROGRESS" and feed["_polls"] >= self.polls:
                self.process(feed)
            return JSONResponse(shown(feed))

        async def get_document(request: Request) -> JSONResponse:
            if answer := refused(request):
                return answer
            document_id = request.path_params["document"]
            if document_id not in self.reports:
                return errors(404, "NotFound", "document not found")
            url = f"{request.base_url}downloads/{document_id}?{SIGNED}=fake"
            return JSONResponse({"feedDocumentId": document_id, "url": url,
                                 "compressionAlgorithm": "GZIP"})  # fmt: skip

        async def download(request: Request) -> Response:
            report = self.reports.get(request.path_params["document"])
            if (answer := presigned(request)) or report is None:
                return answer or Response("NoSuchKey", 404)
            return Response(report, media_type="application/octet-stream")

        return Starlette(routes=[
            Route("/auth/o2/token", token, methods=["POST"]),
            Route(FEEDS + "/documents", create_document, methods=["POST"]),
            Route(FEEDS + "/documents/{document}", get_document),
            Route(FEEDS + "/feeds", create_feed, methods=["POST"]),
            Route(FEEDS + "/feeds", get_feeds),
            Route(FEEDS + "/feeds/{feed}", get_feed),
            Route("/uploads/{document}", upload, methods=["PUT"]),
            Route("/downloads/{document}", download),
        ])  # fmt: skip

    def process(self, feed: dict[str, Any]) -> None:
        content = self.documents[feed["_document"]].content or b""
        try:
            document = json.loads(content)
            header, messages = document["header"], document["messages"]
            valid = header.get("sellerId") == SELLER and header.get("version") == "2.0"
        except (ValueError, KeyError, TypeError, AttributeError):
            valid, messages = False, []
        issues: list[dict[str, Any]] = []
        accepted = 0
        if not valid:
            issues.append({"code": "100001", "severity": "ERROR",
                           "message": "The feed header is invalid."})  # fmt: skip
        else:
            for message in messages:
                found = self.apply(message)
                issues += [{"messageId": message.get("messageId"), **i} for i in found]
                accepted += not found
        report = {"header": {"sellerId": SELLER, "version": "2.0", "feedId": feed["feedId"]},
                  "issues": issues,
                  "summary": {"errors": len(issues), "warnings": 0,
                              "messagesProcessed": len(messages), "messagesAccepted": accepted,
                              "messagesInvalid": len(messages) - accepted}}  # fmt: skip
        report_id = f"amzn1.tortuga.4.eu.{next(self.ids)}"
        self.reports[report_id] = gzip.compress(json.dumps(report).encode())
        feed.update(processingStatus="DONE" if valid else "FATAL",
                    resultFeedDocumentId=report_id)  # fmt: skip

    def apply(self, message: Any) -> list[dict[str, Any]]:
        """One message's issues; a message without any is applied."""
        if (not isinstance(message, dict) or set(message) - MESSAGE_FIELDS
                or not isinstance(message.get("messageId"), int)
                or not isinstance(message.get("sku"), str)):  # fmt: skip
            return [{"code": "4000001", "severity": "ERROR", "message": "invalid message"}]
        sku, operation = message["sku"], message.get("operationType")
        if operation == "DELETE":
            self.listings.records.pop(sku, None)
            return []
        if operation == "PATCH":
            if sku not in self.listings.records:
                return [{"code": "4000004", "severity": "ERROR",
                         "message": f"SKU {sku} not found"}]  # fmt: skip
            listing = self.listings.records[sku]
            attributes = dict(listing["attributes"])
            for patch in message.get("patches") or []:
                attributes[str(patch.get("path", "")).removeprefix("/attributes/")] = patch.get(
                    "value"
                )
            listing = {**listing, "attributes": attributes}
        elif operation == "UPDATE":
            if (not message.get("productType") or not isinstance(message.get("attributes"), dict)
                    or message.get("requirements", "LISTING") not in REQUIREMENTS):  # fmt: skip
                return [{"code": "4000001", "severity": "ERROR", "message": "invalid UPDATE"}]
            listing = {"productType": message["productType"],
                       "requirements": message.get("requirements", "LISTING"),
                       "attributes": message["attributes"]}  # fmt: skip
        else:
            return [{"code": "4000001", "severity": "ERROR",
                     "message": f"unknown operationType {operation}"}]  # fmt: skip
        if found := issues_of(listing["attributes"]):
            return found
        self.listings.upsert(sku, listing)
        return []
