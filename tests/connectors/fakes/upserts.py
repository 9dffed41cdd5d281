"""What the fakes of platforms that write by upsert (Amazon listings by seller SKU,
Google product inputs by language, feed label and offer id, Shopware products by our
UUID) keep: one record per key of the platform's own, every write processed counted
by key, and which writes created a record. A write sent twice replaces the record it
made the first time; the counts show how often it was sent.

`moved` serves a fake at a second address of the same host (under MOVED), past the
faults in front of it: where a same-origin redirect of a write path leads.
"""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.connectors.fakes.faults import ASGIApp, Receive, Scope, Send

MOVED = "/moved"


@dataclass
class Upserts:
    records: dict[str, Any] = field(default_factory=dict)
    writes: Counter[str] = field(default_factory=Counter)
    created: list[str] = field(default_factory=list)

    def upsert(self, key: str, record: Any) -> None:
        if key not in self.records:
            self.created.append(key)
        self.records[key] = record
        self.writes[key] += 1


def moved(app: ASGIApp, faulty: ASGIApp) -> ASGIApp:
    """`faulty` (the fake behind its faults), and `app` itself under MOVED."""

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(MOVED + "/"):
            await app({**scope, "path": path.removeprefix(MOVED)}, receive, send)
        else:
            await faulty(scope, receive, send)

    return route
