"""Counting the SQL statements a block of code sends: how the DataLoader and batching
tests show that a page costs a fixed number of queries, whatever its size."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from pim.runtime import Runtime


@contextmanager
def count_queries(runtime: Runtime) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        # Transaction control is not a query (SQLite's BEGIN goes through here too).
        if (
            not statement.lstrip()
            .upper()
            .startswith(("BEGIN", "SAVEPOINT", "RELEASE", "COMMIT", "ROLLBACK"))
        ):
            statements.append(statement)

    engine = runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
