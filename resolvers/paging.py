"""Offset pages of short administrative lists (webhook endpoints, API keys), with totals,
and the opaque cursors of keyset pages."""

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.bounds import check_window
from resolvers.errors import FieldError, ValidationFailed

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


# Keyset cursors: the sort value and the id of the last row seen, opaque to clients.
def encode_cursor(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values), default=str)).decode()


def decode_cursor(cursor: str, size: int = 2) -> list[Any]:
    """The `size` values `encode_cursor` wrote; anything else is the client's bad cursor."""
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as exc:
        raise ValidationFailed.of([FieldError("after", "curseur invalide")]) from exc
    if not isinstance(values, list) or len(values) != size:
        raise ValidationFailed.of([FieldError("after", "curseur invalide")])
    return values
