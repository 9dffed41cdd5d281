"""A strict Salesforce B2C Commerce (OCAPI Data API) for the exactly-once tests: an
Account Manager token (HTTP Basic client credentials), the batch resource with its
multipart/mixed subrequests, and products kept one per id. `PUT products/{id}`
creates the product or replaces the one with that id; `PATCH` needs it to exist."""

import base64
import json
import uuid
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.connectors.fakes.sessions import Sessions

TOKEN_PATH = "/dwsso/oauth2/access_token"
BATCH = "/s/-/dw/batch"
DATA = "/s/-/dw/data/v23_2/"
CLIENT = "Basic " + base64.b64encode(b"client:secret").decode()


def mime_parts(body: bytes, content_type: str) -> list[EmailMessage]:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    assert isinstance(message, EmailMessage) and message.is_multipart(), content_type
    return [part for part in message.iter_parts() if isinstance(part, EmailMessage)]


def fault(status: int, kind: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"_v": "23.2", "fault": {"type": kind, "message": message}}


@dataclass
class Sfcc:
    sessions: Sessions = field(default_factory=lambda: Sessions("sfcc-access-token"))
    products: dict[str, dict[str, Any]] = field(default_factory=dict)

    def subrequest(self, method: str, resource: str, body: dict[str, Any]) -> tuple[int, Any]:
        kind, _, product_id = resource.partition("/")
        if kind != "products" or not product_id or "/" in product_id:
            return fault(404, "ResourcePathNotFoundException", f"{resource} unknown")
        if method == "PUT":
            if body.get("id", product_id) != product_id:
                return fault(400, "IdConflictException", "id differs from the path")
            if product_id not in self.products:
                self.sessions.creates.append(product_id)
            self.products[product_id] = {**body, "id": product_id}
        elif method == "PATCH":
            if product_id not in self.products:
                return fault(404, "ProductNotFoundException", f"{product_id} not found")
            self.products[product_id].update(body)
        else:
            return fault(405, "MethodNotAllowedException", method)
        return 200, {"_v": "23.2", "_type": "product", **self.products[product_id]}

    def app(self) -> Starlette:
        async def token(request: Request) -> Response:
            form = await request.form()
            if request.headers.get("authorization") != CLIENT:
                return JSONResponse({"error": "invalid_client"}, 401)
            if form.get("grant_type") != "client_credentials":
                return JSONResponse({"error": "unsupported_grant_type"}, 400)
            token = self.sessions.login()
            return JSONResponse({"access_token": token, "token_type": "BEARER", "expires_in": 1799})

        async def batch(request: Request) -> Response:
            if refused := self.sessions.refused(request):
                return refused
            if (request.headers.get("x-dw-http-method"), request.headers.get("x-dw-resource-path")) != ("POST", DATA):  # fmt: skip
                return JSONResponse({"fault": {"type": "InvalidBatchRequest"}}, 400)
            boundary = f"resp_{uuid.uuid4().hex}"
            out = bytearray()
            for part in mime_parts(await request.body(), request.headers["content-type"]):
                status, answer = self.subrequest(
                    part["x-dw-http-method"], part["x-dw-resource-path-extension"],
                    json.loads(part.get_payload(decode=True) or b"{}"),
                )  # fmt: skip
                out += (f"--{boundary}\r\nx-dw-content-id: {part['x-dw-content-id']}\r\n"
                        f"x-dw-status-code: {status}\r\nContent-Type: application/json\r\n\r\n"
                        f"{json.dumps(answer)}\r\n").encode()  # fmt: skip
            out += f"--{boundary}--\r\n".encode()
            return Response(bytes(out), media_type=f"multipart/mixed; boundary={boundary}")

        return Starlette(routes=[
            Route(TOKEN_PATH, token, methods=["POST"]),
            Route(BATCH, batch, methods=["POST"]),
        ])  # fmt: skip
