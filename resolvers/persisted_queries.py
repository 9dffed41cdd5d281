"""Persisted GraphQL operations: stored once by their SHA-256, then sent as the hash alone.

Two ways in: automatic persisted queries (a client sends the hash; on "not found" it
sends the text with the hash, which is checked and stored), and a build step that
registers its operations in bulk (`pim graphql persist FILE`), which also puts them on
the allowlist that persisted-only execution (PIM_GRAPHQL_PERSISTED_ONLY) admits.
"""

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Account, PersistedQuery
from pim.db import Database
from pim.sql import chunks, upsert
from resolvers.errors import FieldError, NotFound, ValidationFailed

# A front end's largest operations are a few KB; the token limit refuses far less anyway.
MAX_QUERY_LENGTH = 64 * 1024
MAX_OPERATIONS = 10_000
# Texts clients may store by themselves (automatic persisted queries), all keys together:
# a front end has a few hundred operations.
MAX_AUTOMATIC = 20_000
MAX_NAME_LENGTH = 255
# Rows per statement: SQLite takes at most 32,766 bound values in one.
CHUNK_ROWS = 1000
HASH_FIELD = "extensions.persistedQuery.sha256Hash"
APOLLO_MANIFEST = "apollo-persisted-query-manifest"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class Stored:
    query: str
    allowlisted: bool


@dataclass(frozen=True, slots=True)
class Operation:
    sha256: str
    query: str
    name: str | None = None


def sha256_of(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def checked_hash(value: Any, field: str = HASH_FIELD) -> str:
    """A hash as clients send it: 64 hexadecimal digits (lower case, as Apollo sends them)."""
    if not isinstance(value, str) or not _SHA256.match(value.lower()):
        raise ValidationFailed.of([FieldError(field, "SHA-256 hexadécimal attendu", "invalid")])
    return value.lower()


def checked_operation(query: Any, sha256: str, name: Any = None) -> Operation:
    """The operation whose text hashes to `sha256`, within bounds; else a 400/422."""
    if not isinstance(query, str) or not query.strip():
        raise ValidationFailed.of([FieldError("query", "texte de l'opération attendu", "missing")])
    if len(query) > MAX_QUERY_LENGTH:
        raise ValidationFailed.of(
            [FieldError("query", f"au plus {MAX_QUERY_LENGTH} caractères", "too_long")]
        )
    if "\x00" in query:
        raise ValidationFailed.of([FieldError("query", "caractère NUL refusé", "nul")])
    if sha256_of(query) != sha256:
        # Apollo Server answers "provided sha does not match query"; clients do not parse it.
        raise ValidationFailed.of(
            [FieldError(HASH_FIELD, "le SHA-256 ne correspond pas au texte de l'opération",
                        "hash_mismatch")]
        )  # fmt: skip
    if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME_LENGTH):
        raise ValidationFailed.of([FieldError("name", "nom d'opération invalide", "invalid")])
    return Operation(sha256, query, name)


def operations_in(manifest: Any) -> list[Operation]:
    """The operations of a build step's manifest: Apollo's persisted query manifest
    (`{"format": "apollo-persisted-query-manifest", "operations": [{id, name, body}]}`),
    or a map of hash to text (Relay's and persistgraphql's output). Ids must be the
    SHA-256 of their text: that is what clients send."""
    if isinstance(manifest, dict) and manifest.get("format") == APOLLO_MANIFEST:
        items = manifest.get("operations")
        if not isinstance(items, list):
            raise ValidationFailed.of([FieldError("operations", "tableau attendu", "type_error")])
        pairs = [
            (item.get("id"), item.get("body"), item.get("name"))
            if isinstance(item, dict)
            else (None, None, None)
            for item in items
        ]
    elif isinstance(manifest, dict):
        pairs = [(sha, query, None) for sha, query in manifest.items()]
    else:
        raise ValidationFailed.of([FieldError("manifest", "objet JSON attendu", "type_error")])
    if len(pairs) > MAX_OPERATIONS:
        raise ValidationFailed.of(
            [FieldError("operations", f"au plus {MAX_OPERATIONS} opérations", "too_long")]
        )
    return [
        checked_operation(query, checked_hash(sha, f"operations[{i}].id"), name)
        for i, (sha, query, name) in enumerate(pairs)
    ]


async def restrict_account(session: AsyncSession, account_name: str, *, enabled: bool) -> None:
    """Its keys run only allowlisted operations (within keys.CALLER_TTL_SECONDS in other
    processes, as for any change to an account)."""
    done = await session.execute(
        update(Account).where(Account.name == account_name).values(graphql_persisted_only=enabled)
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        raise NotFound(message=f"Compte '{account_name}' introuvable.")


async def find(session: AsyncSession, sha256: str) -> Stored | None:
    row = (
        await session.execute(
            select(PersistedQuery.query, PersistedQuery.allowlisted).where(
                PersistedQuery.sha256 == sha256
            )
        )
    ).one_or_none()
    return None if row is None else Stored(row.query, row.allowlisted)


async def register(db: Database, operation: Operation) -> bool:
    """What a client's automatic registration stores, in a transaction of its own (it
    happens before the operation runs, whatever the operation does): kept as it is if already there
    (the text is the hash's; two clients registering it at once both succeed). Past
    MAX_AUTOMATIC texts nothing more is stored (the client goes on sending its text,
    which still runs): keys could otherwise fill the table with made-up operations."""
    async with db.transaction() as session:
        automatic = select(func.count()).where(PersistedQuery.allowlisted.is_(False))
        if (await session.execute(automatic)).scalar_one() >= MAX_AUTOMATIC:
            return False
        statement = upsert(session, PersistedQuery).values(
            sha256=operation.sha256, query=operation.query, allowlisted=False
        )
        await session.execute(statement.on_conflict_do_nothing(index_elements=["sha256"]))
    return True


async def allowlist(session: AsyncSession, operations: list[Operation]) -> int:
    """A build step's operations, stored and allowlisted in one statement; returns how many."""
    if not operations:
        return 0
    unique = {op.sha256: op for op in operations}
    rows = [
        {"sha256": op.sha256, "query": op.query, "operation_name": op.name, "allowlisted": True}
        for op in unique.values()
    ]
    for chunk in chunks(rows, CHUNK_ROWS):
        statement = upsert(session, PersistedQuery).values(list(chunk))
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["sha256"],
                set_={"allowlisted": True, "operation_name": statement.excluded.operation_name},
            )
        )
    return len(unique)
