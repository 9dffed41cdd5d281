"""Faults any loopback platform fake can be told to show, the way real platforms and
the proxies before them fail: a 5xx or a hang AFTER the request was processed (the
write is committed, the answer is lost), a connection dropped mid-answer, throttling
with Retry-After, an access token that expires after some calls, a redirect to
another host.

`Faults.wrap(app)` puts them in front of any fake's ASGI app. Rules match requests by
method and a part of the path, and fire on the n-th matching request (1-based) for
`times` requests.
"""

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class Rule:
    kind: str  # before | after | drop | hang | redirect
    path: str
    method: str | None
    at: int
    times: int
    status: int = 502
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    seen: int = 0
    fired: int = 0

    def fires(self, method: str, path: str) -> bool:
        if self.path not in path or (self.method and self.method != method):
            return False
        self.seen += 1
        if self.at <= self.seen < self.at + self.times:
            self.fired += 1
            return True
        return False


@dataclass
class Expiry:
    """Tokens (the `header`'s value) that stop working after `calls` requests, until a
    request to `login` (a new session) is seen."""

    header: str
    calls: int
    login: str
    used: dict[str, int] = field(default_factory=dict)
    expired: set[str] = field(default_factory=set)
    refusals: int = 0


async def _answer(send: Send, status: int, headers: dict[str, str], body: bytes = b"") -> None:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _swallow(_message: Message) -> None:
    return None


@dataclass
class Faults:
    rules: list[Rule] = field(default_factory=list)
    expiry: Expiry | None = None
    hang_seconds: float = 1.0

    def _add(self, kind: str, path: str, method: str | None, at: int, times: int,
             **values: Any) -> Rule:  # fmt: skip
        rule = Rule(kind, path, method, at, times, **values)
        self.rules.append(rule)
        return rule

    def fail_after_commit(
        self, path: str, *, status: int = 502, method: str | None = "POST", at: int = 1,
        times: int = 1,
    ) -> Rule:  # fmt: skip
        """The platform processes the request, then the gateway answers `status`."""
        return self._add("after", path, method, at, times, status=status)

    def drop_after_commit(
        self, path: str, *, method: str | None = "POST", at: int = 1, times: int = 1
    ) -> Rule:
        """The platform processes the request, then the connection breaks mid-answer."""
        return self._add("drop", path, method, at, times)

    def hang_after_commit(
        self, path: str, *, method: str | None = "POST", at: int = 1, times: int = 1
    ) -> Rule:
        """The platform processes the request and answers after `hang_seconds` (past the
        client's timeout)."""
        return self._add("hang", path, method, at, times)

    def throttle(
        self, path: str, *, status: int = 429, headers: dict[str, str] | None = None,
        body: bytes = b'{"message": "slow down"}', method: str | None = None, at: int = 1,
        times: int = 1,
    ) -> Rule:  # fmt: skip
        """Refuse without processing (a 429 and its wait header by default; Shopify says
        it with a 200 and a THROTTLED body)."""
        return self._add("before", path, method, at, times, status=status, body=body,
                         headers=headers if headers is not None else {"Retry-After": "1"})  # fmt: skip

    def redirect(self, path: str, location: str, *, status: int = 302, method: str | None = None,
                 at: int = 1, times: int = 1_000_000) -> Rule:  # fmt: skip
        """Answer `status` to `location` + the request's path (and query), without
        processing."""
        return self._add("redirect", path, method, at, times, status=status,
                         headers={"Location": location})  # fmt: skip

    def expire_tokens(self, header: str, *, calls: int, login: str) -> Expiry:
        self.expiry = Expiry(header.lower(), calls, login)
        return self.expiry

    def _expired(self, scope: Scope) -> bool:
        expiry = self.expiry
        if expiry is None:
            return False
        if expiry.login in scope["path"]:
            return False
        token = dict(scope["headers"]).get(expiry.header.encode(), b"").decode()
        if not token:
            return False
        if token in expiry.expired:
            expiry.refusals += 1
            return True
        expiry.used[token] = expiry.used.get(token, 0) + 1
        if expiry.used[token] > expiry.calls:
            expiry.expired.add(token)
            expiry.refusals += 1
            return True
        return False

    def _revive(self, scope: Scope) -> None:
        """A login makes every token usable again (the fakes hand out the same one)."""
        if self.expiry is not None and self.expiry.login in scope["path"]:
            self.expiry.expired.clear()
            self.expiry.used.clear()

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            self._revive(scope)
            if self._expired(scope):
                await _answer(send, 401, {"Content-Type": "application/json"},
                              b'{"message": "token expired"}')  # fmt: skip
                return
            rule = next((r for r in self.rules if r.fires(scope["method"], scope["path"])), None)
            if rule is None:
                await app(scope, receive, send)
                return
            if rule.kind == "before":
                await _answer(send, rule.status, rule.headers, rule.body)
                return
            if rule.kind == "redirect":
                query = scope.get("query_string", b"").decode()
                location = rule.headers["Location"].rstrip("/") + scope["path"]
                location += f"?{query}" if query else ""
                await _answer(send, rule.status, {"Location": location})
                return
            await app(scope, receive, _swallow)  # processed and committed
            if rule.kind == "after":
                await _answer(send, rule.status, {"Content-Type": "text/html"}, b"Bad Gateway")
            elif rule.kind == "hang":
                await asyncio.sleep(self.hang_seconds)
                await _answer(send, 504, {}, b"")
            else:  # drop: a body shorter than announced, then the connection closes
                start = [(b"content-length", b"1000"), (b"content-type", b"application/json")]
                await send({"type": "http.response.start", "status": 200, "headers": start})
                await send({"type": "http.response.body", "body": b'{"partial": '})

        return wrapped
