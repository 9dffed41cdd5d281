"""The bounds every input is held to, declared once and read by every surface.

Integers are held to the range of the column that stores them (`integer` is 32-bit on
PostgreSQL: 2³¹ made the driver raise, a 500), text to its column's length or, for the
unbounded `text` columns, to a maximum chosen here (see docs/limits.md), and no string
may hold a NUL: PostgreSQL refuses it in text and JSON (another 500) while SQLite stores
it, so the two backends disagreed. A value out of bounds is a validation error naming
its field, before any SQL runs.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from resolvers.errors import FieldError, ValidationFailed

MAX_INT32 = 2**31 - 1
MAX_INT64 = 2**63 - 1
# Paging offsets: the deepest page a list walks by offset (deeper walks use the cursor).
MAX_OFFSET = MAX_INT32
NUL = "\x00"
NUL_MESSAGE = "caractère NUL (\\u0000) interdit"

# Unbounded `text` columns, and free-form JSON, get these maxima (characters; bytes of
# the JSON text): a description of a few pages fits, a 10 MB one does not.
DESCRIPTION_MAX = 50_000
SHORT_TEXT_MAX = 5_000
JSON_MAX_BYTES = 64 * 1024
SECRET_MAX = 10_000

# Counts (stock, quantities, days): the column is a 32-bit integer.
Count = Annotated[int, Field(ge=0, le=MAX_INT32)]
AtLeastOne = Annotated[int, Field(ge=1, le=MAX_INT32)]
Int32 = Annotated[int, Field(ge=-MAX_INT32 - 1, le=MAX_INT32)]


def _json_within(value: Any) -> Any:
    if not _numbers_within(value):
        raise PydanticCustomError(
            "json_number_out_of_range",
            "nombre hors limites (entre {min} et {max})",
            {"min": -MAX_INT64 - 1, "max": MAX_INT64},
        )
    try:
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError as exc:  # nested past orjson's 255 levels
        raise PydanticCustomError("json_too_deep", "JSON trop imbriqué") from exc
    if len(encoded) > JSON_MAX_BYTES:
        raise PydanticCustomError(
            "json_too_large", "JSON trop volumineux (au plus {max_bytes} octets)",
            {"max_bytes": JSON_MAX_BYTES},
        )  # fmt: skip
    return value


def _numbers_within(value: Any) -> bool:
    """Whether every number in `value` is finite and within 64-bit integers. PostgreSQL
    writes a JSONB number without exponent (1e21 comes back as 22 digits), so a larger
    one would be read back as an integer that JSON encoders refuse: every later read of
    the document failed."""
    stack = [value]  # a loop, not recursion: a document may be nested deep
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, int | float) and not -MAX_INT64 - 1 <= node <= MAX_INT64:
            return False  # NaN compares false, so it is refused with the infinities
    return True


# Free-form JSON (technical specs, connector options): bounded by its encoded size.
JsonBounded = AfterValidator(_json_within)


def _nul_paths(value: Any, path: str) -> Iterator[str]:
    # A loop, not recursion: a JSON value nested a thousand deep must not raise.
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            if NUL in node:
                yield where
        elif isinstance(node, dict):
            for key, item in reversed(node.items()):
                if isinstance(key, str) and NUL in key:
                    stack.append((key, where or "body"))
                else:
                    stack.append((item, f"{where}.{key}" if where else str(key)))
        elif isinstance(node, list):
            for index in reversed(range(len(node))):
                stack.append((node[index], f"{where}.{index}" if where else str(index)))


def nul_errors(value: Any, path: str = "") -> list[FieldError]:
    """A field error for every string (key or value) in `value` that holds a NUL."""
    if not _may_hold_nul(value):
        return []
    return [FieldError(where, NUL_MESSAGE, "nul_character") for where in _nul_paths(value, path)]


def _may_hold_nul(value: Any) -> bool:
    # Every import row and batch item comes through here: encoding it in one call and
    # looking for the escape costs a sixth of walking it in Python (1.9 against 13 µs
    # for a 15-field row, whose validation costs 21). A false alarm (a literal
    # "\\u0000") or a value orjson cannot encode (a non-text key) only takes the walk.
    try:
        encoded = orjson.dumps(value)
    except TypeError:
        return True
    return b"\\u0000" in encoded


def text_errors(field: str, value: str | None, max_length: int | None) -> list[FieldError]:
    """A text's errors; without `max_length` (a lookup key: too long just finds nothing)
    only its NUL is refused."""
    if value is None:
        return []
    if NUL in value:
        return [FieldError(field, NUL_MESSAGE, "nul_character")]
    if max_length is not None and len(value) > max_length:
        return [
            FieldError(field, f"trop long (au plus {max_length} caractères)", "string_too_long")
        ]
    return []


def check_text(field: str, value: str | None, max_length: int | None = None) -> None:
    """A lookup key or filter given as a plain argument (path or query parameter)."""
    if errors := text_errors(field, value, max_length):
        raise ValidationFailed.of(errors)


def window_errors(
    limit: int, offset: int, max_limit: int, *, offset_field: str = "skip"
) -> list[FieldError]:
    """The errors of a page asked as (limit, offset): limit within 1..max_limit, offset
    within 0..MAX_OFFSET."""
    errors = []
    if not 1 <= limit <= max_limit:
        errors.append(FieldError("limit", f"doit être compris entre 1 et {max_limit}"))
    if not 0 <= offset <= MAX_OFFSET:
        errors.append(FieldError(offset_field, f"doit être compris entre 0 et {MAX_OFFSET}"))
    return errors


def check_window(limit: int, offset: int, max_limit: int, *, offset_field: str = "skip") -> None:
    if errors := window_errors(limit, offset, max_limit, offset_field=offset_field):
        raise ValidationFailed.of(errors)


def page_window(page: int, size: int, max_size: int, *, size_field: str = "limit") -> int:
    """The offset of a 1-based page of `size` items; refused when the size is out of
    1..max_size or the page would start past MAX_OFFSET."""
    last_page = MAX_OFFSET // size + 1 if size > 0 else 1
    errors = []
    if not 1 <= page <= last_page:
        errors.append(FieldError("page", f"doit être compris entre 1 et {last_page}"))
    if not 1 <= size <= max_size:
        errors.append(FieldError(size_field, f"doit être compris entre 1 et {max_size}"))
    if errors:
        raise ValidationFailed.of(errors)
    return (page - 1) * size


def utc_moment(field: str, value: datetime) -> datetime:
    """`value` in UTC (naive is taken as UTC); refused when it has no UTC equivalent
    (0001-01-01T00:00:00+01:00 is before the first representable instant)."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:
        raise ValidationFailed.of(
            [FieldError(field, "date hors des limites représentables")]
        ) from exc
