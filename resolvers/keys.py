"""Accounts and API keys: creation (the plain key is returned once), listing, revocation,
and authentication of a presented key."""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Account, ApiKey
from pim.auth import SCOPES, Caller, CallerCache, display_prefix, generate_key, hash_key
from pim.db import Database, on_postgres
from pim.timeutil import utcnow
from resolvers.errors import FieldError, NotFound, Unauthenticated, ValidationFailed
from resolvers.permissions import SETTINGS_MANAGE, require

# Writing last_used_at on every request would turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# How long this process trusts a key it has authenticated without looking it up again:
# a key revoked elsewhere (the CLI, another worker) stops working within this bound.
CALLER_TTL_SECONDS = 5.0
# Process-wide, so that revoke_key can forget a key at once in this process.
recent_callers = CallerCache(ttl=CALLER_TTL_SECONDS)


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
) -> CreatedKey:
    plain = generate_key()
    key = ApiKey(
        account_id=account.id,
        name=name,
        prefix=display_prefix(plain),
        key_hash=hash_key(plain),
        scopes=validate_scopes(scopes),
        rate_limit_per_minute=rate_limit_per_minute,
    )
    session.add(key)
    await session.flush()
    return CreatedKey(key=key, account=account, plain=plain)


async def create_key_for(
    session: AsyncSession, caller: Caller, *, name: str, scopes: list[str]
) -> CreatedKey:
    """A key created through the API: same account, never more scopes than the creator."""
    require(caller, SETTINGS_MANAGE)
    beyond = set(scopes) - caller.scopes
    if beyond:
        raise ValidationFailed.of(
            [FieldError("scopes", f"portées non détenues : {', '.join(sorted(beyond))}")]
        )
    account = await session.get_one(Account, caller.account_id)
    return await create_key(session, account=account, name=name, scopes=scopes)


async def list_keys(
    session: AsyncSession, *, account_name: str | None = None
) -> list[tuple[ApiKey, str]]:
    stmt = select(ApiKey, Account.name).join(Account, Account.id == ApiKey.account_id)
    if account_name is not None:
        stmt = stmt.where(Account.name == account_name)
    rows = await session.execute(stmt.order_by(Account.name, ApiKey.created_at))
    return [(key, name) for key, name in rows]


async def revoke_key(
    session: AsyncSession, *, key_id: uuid.UUID | None = None, prefix: str | None = None
) -> ApiKey:
    stmt = select(ApiKey).where(ApiKey.revoked_at.is_(None))
    if key_id is not None:
        stmt = stmt.where(ApiKey.id == key_id)
    elif prefix is not None:
        stmt = stmt.where(ApiKey.prefix == prefix)
    else:
        raise ValidationFailed.of([FieldError("id", "un identifiant de clé est requis")])
    keys = list(await session.scalars(stmt))
    if len(keys) != 1:
        raise NotFound(message="Clé API introuvable ou déjà révoquée.")
    keys[0].revoked_at = utcnow()
    await session.flush()
    recent_callers.forget(keys[0].key_hash)
    return keys[0]


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
    caller = recent_callers.get(hash_key(plain)) if plain else None
    if caller is None:
        async with db.transaction() as session:
            caller = await authenticate(session, plain)
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
            .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
        )
    ).first()
    if row is None:
        raise Unauthenticated()
    key, account = row
    now = utcnow()
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
    )
    recent_callers.put(key_hash, caller)
    return caller
