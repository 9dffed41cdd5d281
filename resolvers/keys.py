"""Accounts and API keys: creation (the plain key is returned once), listing, revocation,
rotation, and authentication of a presented key.

The same functions serve the API (with the acting `caller`: its account only, never a
scope it does not hold) and the `pim keys` command run on the server (no caller: any
account). Every change is written to the audit trail in the same transaction.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Account, ApiKey
from pim import logs
from pim.auth import SCOPES, Caller, CallerCache, display_prefix, generate_key, hash_key
from pim.db import Database, on_postgres
from pim.timeutil import as_utc, utcnow
from resolvers import audit, paging
from resolvers.errors import FieldError, Forbidden, NotFound, Unauthenticated, ValidationFailed
from resolvers.permissions import Operation, require

# Writing last_used_at on every request would turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# How long this process trusts a key it has authenticated without looking it up again:
# a key revoked elsewhere (the CLI, another worker) stops working within this bound.
CALLER_TTL_SECONDS = 5.0
# Process-wide, so that revoke_key can forget a key at once in this process.
recent_callers = CallerCache(ttl=CALLER_TTL_SECONDS)
CACHE_BOUND = timedelta(seconds=CALLER_TTL_SECONDS)
MAX_NAME_LENGTH = 255
# The rate_limit_per_minute column is a 32-bit integer.
MAX_RATE_LIMIT = 2**31 - 1
# Like Stripe's rolled keys: at most a week during which both keys work.
MAX_ROTATION_GRACE = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: ApiKey
    account: Account
    plain: str


def validate_scopes(scopes: list[str]) -> list[str]:
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValidationFailed.of(
            [FieldError("scopes", f"portée inconnue : {', '.join(unknown)}", "unknown_scope")]
        )
    return list(dict.fromkeys(scopes))


def _check_key_fields(name: str, rate_limit: int | None, expires_at: datetime | None) -> None:
    errors = []
    if not name.strip() or len(name) > MAX_NAME_LENGTH:
        errors.append(FieldError("name", f"de 1 à {MAX_NAME_LENGTH} caractères"))
    if rate_limit is not None and not 1 <= rate_limit <= MAX_RATE_LIMIT:
        errors.append(
            FieldError("rate_limit_per_minute", f"doit être compris entre 1 et {MAX_RATE_LIMIT}")
        )
    if expires_at is not None and as_utc(expires_at) <= utcnow():
        errors.append(FieldError("expires_at", "doit être dans le futur"))
    if errors:
        raise ValidationFailed.of(errors)


def is_active(key: ApiKey, now: datetime) -> bool:
    return key.revoked_at is None and (key.expires_at is None or as_utc(key.expires_at) > now)


async def get_or_create_account(session: AsyncSession, name: str) -> Account:
    account = await session.scalar(select(Account).where(Account.name == name))
    if account is None:
        account = Account(name=name)
        session.add(account)
        await session.flush()
    return account


async def create_key(
    session: AsyncSession,
    *,
    account: Account,
    name: str,
    scopes: list[str],
    rate_limit_per_minute: int | None = None,
    expires_at: datetime | None = None,
    creator: Caller | None = None,
) -> CreatedKey:
    """A new key; its plain text is in the result and nowhere else, ever."""
    _check_key_fields(name, rate_limit_per_minute, expires_at)
    plain = generate_key()
    key = ApiKey(
        account_id=account.id,
        name=name,
        prefix=display_prefix(plain),
        key_hash=hash_key(plain),
        scopes=validate_scopes(scopes),
        rate_limit_per_minute=rate_limit_per_minute,
        expires_at=expires_at,
    )
    session.add(key)
    await session.flush()
    audit.record(session, creator, "key.created", key, _set_fields(key))
    return CreatedKey(key=key, account=account, plain=plain)


def _set_fields(key: ApiKey) -> list[str]:
    return ["name", "scopes", *audit.given(
        rate_limit_per_minute=key.rate_limit_per_minute, expires_at=key.expires_at
    )]  # fmt: skip


def _within_own_scopes(caller: Caller, scopes: list[str]) -> None:
    beyond = set(scopes) - caller.scopes
    if beyond:
        raise Forbidden(message=f"Portées non détenues par la clé : {', '.join(sorted(beyond))}.")


async def create_key_for(
    session: AsyncSession,
    caller: Caller,
    *,
    name: str,
    scopes: list[str],
    rate_limit_per_minute: int | None = None,
    expires_at: datetime | None = None,
) -> CreatedKey:
    """A key created through the API: same account, never more scopes than the creator."""
    require(caller, Operation.SETTINGS_MANAGE)
    _within_own_scopes(caller, validate_scopes(scopes))
    account = await session.get_one(Account, caller.account_id)
    return await create_key(
        session, account=account, name=name, scopes=scopes,
        rate_limit_per_minute=rate_limit_per_minute, expires_at=expires_at, creator=caller,
    )  # fmt: skip


async def list_keys(
    session: AsyncSession, *, account_name: str | None = None
) -> list[tuple[ApiKey, str]]:
    """Every account's keys, for the `pim keys` command run on the server."""
    stmt = select(ApiKey, Account.name).join(Account, Account.id == ApiKey.account_id)
    if account_name is not None:
        stmt = stmt.where(Account.name == account_name)
    rows = await session.execute(stmt.order_by(Account.name, ApiKey.created_at))
    return [(key, name) for key, name in rows]


async def list_keys_for(
    session: AsyncSession, caller: Caller, *, limit: int = 100, offset: int = 0
) -> paging.Page[ApiKey]:
    """The caller's account's keys, revoked and expired ones included, newest first."""
    require(caller, Operation.SETTINGS_MANAGE)
    scoped = select(ApiKey).where(ApiKey.account_id == caller.account_id)
    ordered = scoped.order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
    return await paging.page(session, ordered, limit, offset)


async def _active_key(
    session: AsyncSession, *, account_id: uuid.UUID | None, key_id: uuid.UUID | None,
    prefix: str | None = None,
) -> ApiKey:  # fmt: skip
    stmt = select(ApiKey).where(ApiKey.revoked_at.is_(None))
    if account_id is not None:
        stmt = stmt.where(ApiKey.account_id == account_id)
    if key_id is not None:
        stmt = stmt.where(ApiKey.id == key_id)
    elif prefix is not None:
        stmt = stmt.where(ApiKey.prefix == prefix)
    else:
        raise ValidationFailed.of([FieldError("id", "un identifiant de clé est requis")])
    keys = [k for k in await session.scalars(stmt.with_for_update()) if is_active(k, utcnow())]
    if len(keys) != 1:
        raise NotFound(message="Clé API introuvable, expirée ou déjà révoquée.", field="id")
    return keys[0]


def _end(key: ApiKey, at: datetime) -> None:
    """Stop `key` at `at`: at once is a revocation, later an expiry (a rotation's grace)."""
    if at <= utcnow():
        key.revoked_at = at
    elif key.expires_at is None or as_utc(key.expires_at) > at:
        key.expires_at = at
    # This process stops trusting it at once; others within CALLER_TTL_SECONDS.
    recent_callers.forget(key.key_hash)


async def revoke_key(
    session: AsyncSession,
    *,
    key_id: uuid.UUID | None = None,
    prefix: str | None = None,
    caller: Caller | None = None,
) -> ApiKey:
    """Revoke one active key: of the caller's account, or of any (`pim keys` on the server)."""
    if caller is not None:
        require(caller, Operation.SETTINGS_MANAGE)
    key = await _active_key(
        session, account_id=caller.account_id if caller else None, key_id=key_id, prefix=prefix
    )
    _end(key, utcnow())
    await session.flush()
    audit.record(session, caller, "key.revoked", key, ["revoked_at"])
    return key


async def rotate_key(
    session: AsyncSession,
    *,
    key_id: uuid.UUID | None = None,
    prefix: str | None = None,
    grace: timedelta,
    caller: Caller | None = None,
) -> CreatedKey:
    """A new key with the old one's name, scopes, limit and expiry; the old one keeps
    working for `grace` (0: refused at once), so clients can switch without downtime."""
    if caller is not None:
        require(caller, Operation.SETTINGS_MANAGE)
    if not timedelta(0) <= grace <= MAX_ROTATION_GRACE:
        raise ValidationFailed.of([FieldError("grace", "entre 0 et 7 jours (168 heures)")])
    old = await _active_key(
        session, account_id=caller.account_id if caller else None, key_id=key_id, prefix=prefix
    )
    if caller is not None:
        _within_own_scopes(caller, old.scopes)
    account = await session.get_one(Account, old.account_id)
    created = await create_key(
        session, account=account, name=old.name, scopes=old.scopes,
        rate_limit_per_minute=old.rate_limit_per_minute, expires_at=old.expires_at,
        creator=caller,
    )  # fmt: skip
    _end(old, utcnow() + grace)
    await session.flush()
    audit.record(session, caller, "key.rotated", old, ["expires_at" if grace else "revoked_at"])
    return created


async def any_key_exists(session: AsyncSession) -> bool:
    return await session.scalar(select(ApiKey.id).limit(1)) is not None


async def hold_account(session: AsyncSession, caller: Caller) -> None:
    """Before a write: the caller's account exists, and cannot be deleted until this
    transaction ends. The hot tables (products, stock, events, change stamps) hold
    account_id without a foreign key; this one check per write transaction does what
    the key's check did on every row (docs/data-integrity.md). A caller whose account
    is gone (a key cached in this process for a few seconds) is no valid caller."""
    statement = select(Account.id).where(Account.id == caller.account_id)
    if on_postgres(session):
        statement = statement.with_for_update(read=True, key_share=True)
    if await session.scalar(statement) is None:
        raise Unauthenticated()


async def caller_for(db: Database, plain: str | None) -> Caller:
    """The caller of a presented key: one this process authenticated less than
    CALLER_TTL_SECONDS ago needs no transaction of its own."""
    if not plain:
        raise Unauthenticated()
    key_hash = hash_key(plain)
    caller = recent_callers.get(key_hash)
    if caller is None:

        async def lookup() -> Caller:
            async with db.transaction() as session:
                return await authenticate(session, plain)

        caller = await recent_callers.looked_up(key_hash, lookup)
    logs.bind(account_id=str(caller.account_id), key_id=str(caller.key_id))
    return caller


async def authenticate(session: AsyncSession, plain: str | None) -> Caller:
    """The caller for a presented key; Unauthenticated for a missing, unknown or revoked one."""
    if not plain:
        raise Unauthenticated()
    key_hash = hash_key(plain)
    row = (
        await session.execute(
            select(ApiKey, Account)
            .join(Account, Account.id == ApiKey.account_id)
            .where(ApiKey.key_hash == key_hash)
        )
    ).first()
    now = utcnow()
    # Expired keys are refused exactly like revoked ones: the caller cannot tell them apart.
    if row is None or not is_active(row[0], now):
        raise Unauthenticated()
    key, account = row
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        await session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
    caller = Caller(
        account_id=account.id,
        account_name=account.name,
        key_id=key.id,
        key_name=key.name,
        scopes=frozenset(key.scopes),
        rate_limit_per_minute=key.rate_limit_per_minute,
        strict_ean=account.strict_ean,
        graphql_persisted_only=account.graphql_persisted_only,
    )
    # A key expiring within the cache's bound is looked up on each use, so that it is
    # refused from its expiry on, not up to CALLER_TTL_SECONDS later.
    if key.expires_at is None or as_utc(key.expires_at) - now > CACHE_BOUND:
        recent_callers.put(key_hash, caller)
    return caller
