"""UTC datetimes in, ISO 8601 with Z out."""

import re
from datetime import UTC, datetime

# An unencoded "+01:00" in a query string arrives as " 01:00".
_SPACE_OFFSET = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC (what SQLite gives back and many clients send)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def isoformat_z(value: datetime | None) -> str | None:
    if value is None:
        return None
    return as_utc(value).isoformat().replace("+00:00", "Z")


def parse_iso8601(text: str) -> datetime:
    """Parse an ISO 8601 datetime; Z, a space for T, and a decoded '+' are accepted."""
    cleaned = text.strip()
    if len(cleaned) > 10 and cleaned[10] == " ":
        cleaned = cleaned[:10] + "T" + cleaned[11:]
    cleaned = _SPACE_OFFSET.sub(r"\1+\2", cleaned)
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        return as_utc(datetime.fromisoformat(cleaned))
    except OverflowError as exc:  # 0001-01-01T00:00:00+01:00 has no UTC equivalent
        raise ValueError(f"date out of range: {text}") from exc
