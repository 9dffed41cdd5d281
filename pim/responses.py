"""JSON responses encoded by orjson, returned directly so FastAPI skips its own encoder."""

import uuid
from typing import Any

import orjson
from starlette.responses import JSONResponse

from pim import json_encoding


def _fallback(value: Any) -> str:
    # asyncpg hands back its own UUID subclass, which orjson does not take as a UUID.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class OrjsonResponse(JSONResponse):
    """UUIDs become strings and UTC datetimes ISO 8601 with Z, the wire convention."""

    def render(self, content: Any) -> bytes:
        return json_encoding.dumps(
            content, default=_fallback, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z
        )
