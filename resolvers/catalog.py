"""Brands, categories and suppliers: lookups, get-or-create by name or code, listings."""

import re
import unicodedata
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from models import Brand, Category, Supplier
from pim.auth import Caller
from pim.ids import uuid7
from pim.sql import among, unique, upsert
from resolvers.bounds import text_errors
from resolvers.errors import Conflict, FieldError, NotFound, ValidationFailed
from resolvers.permissions import Operation, require


def brand_key(name: str) -> str:
    return name.strip().casefold()


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "categorie"


async def brand_ids_for(
    session: AsyncSession, account_id: uuid.UUID, names: Iterable[str], *, create: bool = True
) -> dict[str, uuid.UUID]:
    """Brand id per case-folded name, creating the missing brands unless told not to."""
    wanted = {brand_key(n): n.strip() for n in names if n and n.strip()}
    return await _ids_for(
        session, account_id, Brand.name_key, wanted,
        lambda key: {"name": wanted[key], "name_key": key}, create=create,
    )  # fmt: skip


async def supplier_ids_for(
    session: AsyncSession, account_id: uuid.UUID, codes: Iterable[str], *, create: bool = True
) -> dict[str, uuid.UUID]:
    """Supplier id per code; an unknown code becomes a supplier named after it."""
    return await _ids_for(
        session, account_id, Supplier.code, unique(c for c in codes if c),
        lambda code: {"code": code, "name": code}, create=create,
    )  # fmt: skip


async def _ids_for(
    session: AsyncSession,
    account_id: uuid.UUID,
    key: InstrumentedAttribute[str],
    wanted: Collection[str],
    fields: Callable[[str], dict[str, str]],
    *,
    create: bool,
) -> dict[str, uuid.UUID]:
    """Id per key of the account's rows of `key`'s table; the missing ones are created
    (and a row another writer creates meanwhile is taken as it is) unless told not to.

    Batches nearly always name rows that exist: those cost one read and no write.
    """
    model = key.class_
    found = await _ids_by(session, account_id, key, list(wanted))
    missing = [k for k in wanted if k not in found]
    if create and missing:
        rows = [{"id": uuid7(), "account_id": account_id, **fields(k)} for k in missing]
        await session.execute(
            upsert(session, model)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["account_id", key.key])
        )
        found |= await _ids_by(session, account_id, key, missing)
    return found


async def _ids_by(
    session: AsyncSession, account_id: uuid.UUID, key: InstrumentedAttribute[str], keys: list[str]
) -> dict[str, uuid.UUID]:
    if not keys:
        return {}
    model = key.class_
    rows = await session.execute(
        select(key, model.id).where(model.account_id == account_id, among(session, key, keys))
    )
    return {k: v for k, v in rows}


async def existing_category_ids(
    session: AsyncSession, account_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    wanted = unique(ids)
    if not wanted:
        return set()
    found = await session.scalars(
        select(Category.id).where(Category.account_id == account_id, Category.id.in_(wanted))
    )
    return set(found)


async def list_brands(session: AsyncSession, caller: Caller) -> list[Brand]:
    require(caller, Operation.PRODUCTS_READ)
    rows = await session.scalars(
        select(Brand).where(Brand.account_id == caller.account_id).order_by(Brand.name_key)
    )
    return list(rows)


async def list_categories(session: AsyncSession, caller: Caller) -> list[Category]:
    """The whole tree, flat: by depth, then display order, then name."""
    require(caller, Operation.PRODUCTS_READ)
    rows = await session.scalars(
        select(Category)
        .where(Category.account_id == caller.account_id)
        .order_by(Category.level, Category.sort_order, Category.name)
    )
    return list(rows)


async def list_suppliers(
    session: AsyncSession, caller: Caller, *, active_only: bool = True
) -> list[Supplier]:
    require(caller, Operation.PRODUCTS_READ)
    stmt = select(Supplier).where(Supplier.account_id == caller.account_id)
    if active_only:
        stmt = stmt.where(Supplier.is_active.is_(True))
    rows = await session.scalars(stmt.order_by(func.lower(Supplier.name), Supplier.code))
    return list(rows)


@dataclass(frozen=True, slots=True)
class CategoryInput:
    name: str
    parent_id: uuid.UUID | None = None
    slug: str | None = None
    sort_order: int = 0


async def create_category(
    session: AsyncSession, caller: Caller, *, data: CategoryInput
) -> Category:
    require(caller, Operation.CATALOG_WRITE)
    name = data.name.strip()
    errors = text_errors("name", name, 255) + text_errors("slug", data.slug, 255)
    if not name:
        errors.append(FieldError("name", "ne peut pas être vide"))
    if errors:
        raise ValidationFailed.of(errors)
    level = 0
    if data.parent_id is not None:
        parent = await session.scalar(
            select(Category).where(
                Category.account_id == caller.account_id, Category.id == data.parent_id
            )
        )
        if parent is None:
            raise NotFound(message="Catégorie parente introuvable.", field="parent_id")
        level = parent.level + 1
    category = Category(
        account_id=caller.account_id,
        parent_id=data.parent_id,
        name=name,
        slug=data.slug or slugify(name),
        level=level,
        sort_order=data.sort_order,
    )
    session.add(category)
    await session.flush()
    return category


@dataclass(frozen=True, slots=True)
class SupplierInput:
    code: str
    name: str
    country: str | None = None
    is_active: bool = True


async def create_supplier(
    session: AsyncSession, caller: Caller, *, data: SupplierInput
) -> Supplier:
    require(caller, Operation.CATALOG_WRITE)
    code = data.code.strip()
    errors = (
        text_errors("code", code, 64)
        + text_errors("name", data.name, 255)
        + text_errors("country", data.country, 2)
    )
    if not code or not data.name.strip():
        errors.append(FieldError("code", "le code et le nom sont obligatoires"))
    if errors:
        raise ValidationFailed.of(errors)
    exists = await session.scalar(
        select(Supplier.id).where(Supplier.account_id == caller.account_id, Supplier.code == code)
    )
    if exists is not None:
        raise Conflict(message=f"Le fournisseur '{code}' existe déjà.", field="code")
    supplier = Supplier(
        account_id=caller.account_id,
        code=code,
        name=data.name.strip(),
        country=data.country.upper() if data.country else None,
        is_active=data.is_active,
    )
    session.add(supplier)
    await session.flush()
    return supplier
