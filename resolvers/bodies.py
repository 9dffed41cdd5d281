"""Request bodies as data: the one JSON decoding every surface uses."""

from typing import Any

import orjson

from resolvers.errors import FieldError, ValidationFailed


def decode_json(raw: str | bytes) -> Any:
    """The decoded body; malformed JSON, or JSON nested deeper than the decoder's limit
    (orjson stops at 1,024 levels, where the json module would exhaust the stack), is a
    validation error on the body."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed.of(
            [FieldError("body", f"JSON invalide ({exc})", "json_invalid")]
        ) from exc
