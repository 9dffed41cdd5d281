"""Structured logs: one JSON object a line on the real stack, readable text on the embedded
default (`PIM_LOG_FORMAT` switches).

The fields of the request or job being served (request id, account, key id, job id…) sit
in a context variable; every record logged within it carries them, whichever library logs
it, because they are copied onto the record when it is made.
"""

import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

import orjson

LogFormat = Literal["json", "text"]

_fields: ContextVar[dict[str, Any] | None] = ContextVar("pim_log_fields", default=None)

# A caller's request id is accepted when it is short and plain, so that it cannot forge
# log lines or carry a payload into them; any other value is replaced by our own.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

_SCOPE_ATTR = "pim_scope"
# What a LogRecord holds by itself; anything else on it came from `extra=` or the context.
# uvicorn adds `color_message`, the message again with terminal colours.
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


def request_id_from(presented: str | None) -> str:
    """The caller's X-Request-ID when it is a plain token, else a new one."""
    if presented is not None and _REQUEST_ID.fullmatch(presented):
        return presented
    return uuid.uuid4().hex


@contextmanager
def scope(**fields: Any) -> Iterator[dict[str, Any]]:
    """Fields for everything logged inside the block (a request, a job run).

    The dict is yielded and shared: code deeper in the same request adds to it with `bind`
    even from a task or context copied from this one (FastAPI dependencies, job tasks).
    """
    current = {key: value for key, value in fields.items() if value is not None}
    token = _fields.set(current)
    try:
        yield current
    finally:
        _fields.reset(token)


def bind(**fields: Any) -> None:
    """Add fields to the current request's or job's log scope (no-op outside one)."""
    current = _fields.get()
    if current is not None:
        current.update({key: value for key, value in fields.items() if value is not None})


def current() -> dict[str, Any]:
    """The fields of the current scope, e.g. `current().get("request_id")`."""
    return dict(_fields.get() or {})


def current_request_id() -> str | None:
    """The id of the request being served (or that enqueued the running job): masked errors
    show it to the client as their error id, so one grep finds the full log line."""
    fields = _fields.get()
    return None if fields is None else fields.get("request_id")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_extra(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{key}={value}" for key, value in _extra(record).items())
        line = f"{_iso(record.created)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if extra:
            line = f"{line}  {extra}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def _iso(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    """The scope's fields, then the record's own `extra=` fields (which win)."""
    fields = dict(getattr(record, _SCOPE_ATTR, None) or {})
    fields.update(
        (k, v) for k, v in record.__dict__.items() if k not in _RECORD_ATTRS and k != _SCOPE_ATTR
    )
    return fields


def _with_context(factory: Any) -> Any:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = factory(*args, **kwargs)
        # A copy, under one attribute: `extra=` may name the same fields without a clash.
        fields = _fields.get()
        if fields:
            setattr(record, _SCOPE_ATTR, dict(fields))
        return record

    make.pim_context = True  # type: ignore[attr-defined]  # marks it, so it wraps once
    return make


def configure(log_format: LogFormat, level: str = "INFO") -> None:
    """Send every log record (uvicorn's and arq's too) to stderr in one format."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "pim_context", False):
        logging.setLogRecordFactory(_with_context(factory))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.pim = True  # type: ignore[attr-defined]  # ours: replaced, never duplicated
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "pim", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn and arq bring their own handlers and formats; ours replace them.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
