"""Change timestamps and the delta-sync horizon.

A row's `updated_at` is taken inside its writing transaction, but the row only
becomes visible at commit. A poller that advanced past a timestamp before that
commit would never see the row. So readers of changes stop at a *stable
horizon*: the start of the oldest transaction that is still writing. Rows
stamped before it are all committed (or never will be); rows of transactions
still open are stamped at or after it.

On PostgreSQL the writers are found in pg_stat_activity (any API replica or
worker); on SQLite, the only writers are this process's sessions, tracked here.
"""

from datetime import datetime, timedelta

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from pim.db import on_postgres
from pim.timeutil import as_utc, utcnow

_open_writers: dict[int, datetime] = {}
_INFO_KEY = "pim_write_started"
MICROSECOND = timedelta(microseconds=1)


async def write_timestamp(session: AsyncSession) -> datetime:
    """The time to stamp this transaction's writes with; marks it as an open writer."""
    if on_postgres(session):
        # pg_current_xact_id() gives the transaction an xid now, so readers see it
        # as a writer from this instant, before any row carries the timestamp.
        row = (await session.execute(text("SELECT pg_current_xact_id(), clock_timestamp()"))).one()
        return as_utc(row[1])
    sync_session = session.sync_session
    started = sync_session.info.get(_INFO_KEY)
    if started is None:
        started = utcnow()
        sync_session.info[_INFO_KEY] = started
        _open_writers[id(sync_session)] = started
    return max(utcnow(), started)


async def stable_horizon(session: AsyncSession) -> datetime:
    """Every row stamped before the returned time is committed or will never be."""
    if on_postgres(session):
        value = await session.scalar(
            text(
                "SELECT least(clock_timestamp(), min(xact_start)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND backend_xid IS NOT NULL "
                "AND pid <> pg_backend_pid()"
            )
        )
        return as_utc(value)
    now = utcnow()
    return min([now, *_open_writers.values()])


def _forget(session: Session, transaction: SessionTransaction) -> None:
    # Savepoints end too (and report a "commit"): only the outermost end counts.
    if transaction.parent is not None:
        return
    if session.info.pop(_INFO_KEY, None) is not None:
        _open_writers.pop(id(session), None)


event.listen(Session, "after_transaction_end", _forget)
