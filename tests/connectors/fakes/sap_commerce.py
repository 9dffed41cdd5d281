"""A strict SAP Commerce Integration API for the exactly-once tests: an OAuth token
from the authorization server (client id and secret in the form), or an integration
user's Basic credentials, and the OData v2 `$batch` of an inbound integration object,
one changeset per entity. Posting an entity is an upsert on its integration key
(code + catalog version): a product is kept once per key, and the key of each entity
created is noted."""

import base64
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.connectors.fakes.sessions import Sessions
from tests.connectors.fakes.sfcc import mime_parts

TOKEN_PATH = "/authorizationserver/oauth/token"
BATCH = "/odata2webservices/InboundProduct/$batch"
INTEGRATION_USER = "Basic " + base64.b64encode(b"integrationuser:pw").decode()

Key = tuple[str, str, str]


def key_of(entity: dict[str, Any]) -> Key:
    version = entity["catalogVersion"]
    return entity["code"], version["catalog"]["id"], version["version"]


def http_answer(status: str, body: dict[str, Any]) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\r\n"
            f"{json.dumps(body)}").encode()  # fmt: skip


@dataclass
class SapCommerce:
    sessions: Sessions = field(default_factory=lambda: Sessions("sap-access-token"))
    products: dict[Key, dict[str, Any]] = field(default_factory=dict)

    def changeset(self, request: bytes) -> bytes:
        """Apply the one `application/http` request of a changeset; answer its response."""
        head, _, body = request.partition(b"\r\n\r\n")
        method, target, _version = head.split(b"\r\n")[0].decode().split(" ")
        if (method, target) != ("POST", "Products"):
            return http_answer("404 Not Found", {"error": {"code": "invalid_entity_set"}})
        entity = json.loads(body)
        try:
            key = key_of(entity)
        except (KeyError, TypeError):
            return http_answer("400 Bad Request", {"error": {"code": "missing_key",
                               "message": {"lang": "en", "value": "code and catalogVersion"}}})  # fmt: skip
        if key not in self.products:
            self.sessions.creates.append(key[0])
        self.products[key] = {**self.products.get(key, {}), **entity}
        return http_answer("201 Created", {"d": {"code": key[0], "integrationKey": "|".join(key)}})

    def app(self) -> Starlette:
        async def token(request: Request) -> Response:
            form = await request.form()
            client = (form.get("grant_type"), form.get("client_id"), form.get("client_secret"))
            if client != ("client_credentials", "client", "secret"):
                return JSONResponse({"error": "invalid_client"}, 401)
            token = self.sessions.login()
            return JSONResponse({"access_token": token, "token_type": "bearer",
                                 "expires_in": 43199, "scope": "basic openid"})  # fmt: skip

        async def batch(request: Request) -> Response:
            basic = request.headers.get("authorization") == INTEGRATION_USER
            if not basic and (refused := self.sessions.refused(request)):
                return refused
            boundary = f"batchresponse_{uuid.uuid4().hex}"
            out = bytearray()
            for changeset in mime_parts(await request.body(), request.headers["content-type"]):
                (inner,) = changeset.iter_parts()
                assert inner.get_content_type() == "application/http"
                answer = self.changeset(inner.get_payload(decode=True))
                inner_boundary = f"changesetresponse_{uuid.uuid4().hex}"
                out += (
                    f"--{boundary}\r\nContent-Type: multipart/mixed; boundary={inner_boundary}"
                    f"\r\n\r\n--{inner_boundary}\r\nContent-Type: application/http\r\n"
                    "Content-Transfer-Encoding: binary\r\n\r\n"
                ).encode() + answer
                out += f"\r\n--{inner_boundary}--\r\n\r\n".encode()  # fmt: skip
            out += f"--{boundary}--\r\n".encode()
            return Response(bytes(out), 202, media_type=f"multipart/mixed; boundary={boundary}")

        async def base_sites(_request: Request) -> Response:
            return JSONResponse({"baseSites": [{"uid": "electronics", "name": "Electronics"}]})

        return Starlette(routes=[
            Route(TOKEN_PATH, token, methods=["POST"]),
            Route(BATCH, batch, methods=["POST"]),
            Route("/occ/v2/basesites", base_sites, methods=["GET"]),
        ])  # fmt: skip
