"""A real HTTP webhook receiver on loopback: records what arrives, answers as told."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.loopback import serve


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    # Answers for the next requests, in order ("timeout" hangs); then 200.
    answers: list[int | str] = field(default_factory=list)
    # Answer every request with this status until reset to None.
    always: int | None = None

    @property
    def bodies(self) -> list[Any]:
        return [r.json for r in self.received]

    async def handle(self, request: Request) -> Response:
        self.received.append(Received(dict(request.headers), await request.body()))
        answer: int | str = self.answers.pop(0) if self.answers else self.always or 200
        if answer == "timeout":
            await asyncio.sleep(1)  # longer than the sender's timeout set by the test
            answer = 200
        return JSONResponse({"ok": answer == 200}, status_code=int(answer))


@asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/hooks", receiver.handle, methods=["POST"])])
    async with serve(app) as base:
        receiver.url = f"{base}/hooks"
        yield receiver
