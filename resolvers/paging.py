"""Offset pages of short administrative lists (webhook endpoints, API keys), with totals."""

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.bounds import check_window

MAX_PAGE_SIZE = 500
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int


async def page(session: AsyncSession, stmt: Select[Any], limit: int, offset: int) -> Page[Any]:
    """`limit` rows of the ordered `stmt` from `offset`, and the exact total."""
    check_window(limit, offset, MAX_PAGE_SIZE)
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    items = list(await session.scalars(stmt.limit(limit).offset(offset)))
    return Page(items=items, total=int(total or 0))
