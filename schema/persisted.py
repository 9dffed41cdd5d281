"""Persisted queries on /graphql, as Apollo clients send them (`extensions.persistedQuery`
with `version: 1` and `sha256Hash`), over POST and over GET.

A known hash runs its stored text; an unknown one answers `PersistedQueryNotFound`
(code PERSISTED_QUERY_NOT_FOUND, HTTP 200 as Apollo Server answers it), on which the
client sends the text with the hash: checked against the hash, stored, run. Texts go
through the same parse, validation, cost and telemetry as any request: an operation's
name and cost are logged and counted whether it came as a hash or as text.

With PIM_GRAPHQL_PERSISTED_ONLY, or for the keys of an account so restricted (`pim graphql
persisted-only ACCOUNT on`), only operations a build step allowlisted run (403
otherwise), and clients cannot register new ones.
"""

import weakref
from collections import OrderedDict
from dataclasses import dataclass, replace

from graphql import GraphQLError
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult

from pim import logs
from pim.runtime import Runtime
from resolvers import persisted_queries
from resolvers.errors import FieldError, Forbidden, Unauthenticated, ValidationFailed
from resolvers.persisted_queries import Operation, Stored
from schema.context import Context

NOT_FOUND = "PersistedQueryNotFound"
CACHE_ENTRIES = 1024
ONLY_PERSISTED = "Seules les opérations persistées sont acceptées (extensions.persistedQuery)."
NOT_ALLOWLISTED = "Opération inconnue : seules les opérations enregistrées au build sont acceptées."


class _Cache:
    """Texts by hash, in process: a text never changes for its hash, and `allowlisted`
    only goes from false to true (looked up again when it matters)."""

    def __init__(self) -> None:
        self.entries: OrderedDict[str, Stored] = OrderedDict()

    def get(self, sha256: str) -> Stored | None:
        stored = self.entries.get(sha256)
        if stored is not None:
            self.entries.move_to_end(sha256)
        return stored

    def put(self, sha256: str, stored: Stored) -> None:
        self.entries[sha256] = stored
        while len(self.entries) > CACHE_ENTRIES:
            self.entries.popitem(last=False)


# One cache per runtime (per database), dropped with it (a Runtime is not hashable).
_CACHES: dict[int, _Cache] = {}


def _cache(runtime: Runtime) -> _Cache:
    key = id(runtime)
    if key not in _CACHES:
        _CACHES[key] = _Cache()
        weakref.finalize(runtime, _CACHES.pop, key, None)
    return _CACHES[key]


def not_found() -> ExecutionResult:
    error = GraphQLError(NOT_FOUND, extensions={"code": "PERSISTED_QUERY_NOT_FOUND"})
    return ExecutionResult(data=None, errors=[error])


def _requested_hash(extensions: dict[str, object] | None) -> str | None:
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        return None
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        raise ValidationFailed.of(
            [FieldError("extensions.persistedQuery", "version 1 attendue", "unsupported")]
        )
    return persisted_queries.checked_hash(persisted.get("sha256Hash"))


async def _stored(runtime: Runtime, sha256: str, *, fresh: bool = False) -> Stored | None:
    cache = _cache(runtime)
    stored = None if fresh else cache.get(sha256)
    if stored is None:
        async with runtime.db.read() as session:
            stored = await persisted_queries.find(session, sha256)
        if stored is not None:
            cache.put(sha256, stored)
    return stored


@dataclass(frozen=True, slots=True)
class Resolved:
    """The request to run, and the operation to store once it has run without a parse
    or validation error (text that is not an operation of this schema is not kept)."""

    data: GraphQLRequestData
    to_store: Operation | None = None


async def resolve(context: Context, data: GraphQLRequestData) -> Resolved | ExecutionResult:
    """The request with its operation's text, or the answer that it has none."""
    runtime = context.runtime
    caller = context.presented
    only_persisted = runtime.settings.graphql_persisted_only or (
        caller is not None and caller.graphql_persisted_only
    )
    sha256 = _requested_hash(data.extensions)
    if sha256 is None:
        if only_persisted:
            raise Forbidden(message=ONLY_PERSISTED, code="persisted_query_required")
        return Resolved(data)
    logs.bind(graphql_persisted=sha256[:16])
    stored = await _stored(runtime, sha256)
    if only_persisted and (stored is None or not stored.allowlisted):
        stored = await _stored(runtime, sha256, fresh=True)  # allowlisted since cached?
        if stored is None or not stored.allowlisted:
            if data.query is None:
                return not_found()
            raise Forbidden(message=NOT_ALLOWLISTED, code="persisted_query_not_allowed")
    if stored is not None:
        return Resolved(replace(data, query=stored.query))
    if data.query is None:
        return not_found()
    # Storing takes a key (bounded by its rate limit); running stays open to the hash alone.
    if context.presented is None:
        raise Unauthenticated()
    return Resolved(data, persisted_queries.checked_operation(data.query, sha256))


async def store(context: Context, operation: Operation) -> None:
    if await persisted_queries.register(context.runtime.db, operation):
        _cache(context.runtime).put(operation.sha256, Stored(operation.query, allowlisted=False))
