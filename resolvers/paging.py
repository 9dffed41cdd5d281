"""Offset pages of short administrative lists (webhook endpoints, API keys), with totals."""

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.errors import FieldError, ValidationFailed

MAX_PAGE_SIZE = 500
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int


def check_page(limit: int, offset: int) -> None:
    errors = []
    if not 1 <= limit <= MAX_PAGE_SIZE:
        errors.append(FieldError("limit", f"doit être compris entre 1 et {MAX_PAGE_SIZE}"))
    if offset < 0:
        errors.append(FieldError("skip", "doit être positif ou nul"))
    if errors:
        raise ValidationFailed.of(errors)


async def page(session: AsyncSession, stmt: Select[Any], limit: int, offset: int) -> Page[Any]:
    """`limit` rows of the ordered `stmt` from `offset`, and the exact total."""
    check_page(limit, offset)
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    items = list(await session.scalars(stmt.limit(limit).offset(offset)))
    return Page(items=items, total=int(total or 0))
