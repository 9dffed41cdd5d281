"""JSON encoding by orjson, with the integers it refuses written exactly.

orjson refuses integers beyond 64 bits, which JSON documents stored before their numbers
were bounded (resolvers.bounds) may still hold: a response, a webhook delivery or a
content hash that met one failed. Such integers go in as they are written in JSON, and
only the encodings that meet one pay for the walk.
"""

from collections.abc import Callable
from typing import Any

import orjson

_INT64 = range(-(2**63), 2**63)


def dumps(value: Any, *, default: Callable[[Any], Any] | None = None, option: int = 0) -> bytes:
    try:
        return orjson.dumps(value, default=default, option=option)
    except orjson.JSONEncodeError:
        return orjson.dumps(_exact(value), default=default, option=option)


def _exact(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value not in _INT64:
        return orjson.Fragment(str(value).encode())
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_exact(v) for v in value]
    return value
