"""Producing a job's CPU-bound input in another process while the job writes it.

An import spends as long reading, mapping and checking rows (pure Python) as it
does writing them. A thread does not help (measured: slower, both halves want the
GIL); a second process does: it produces on the other core and hands the items
over through a bounded queue, a few ahead of the writer.
"""

import asyncio
import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import queue
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from pim import gc_tuning

T = TypeVar("T")
# Items produced ahead of the consumer: enough to hide the hand-over, little memory.
DEPTH = 2
# The fork server is one clean, single-threaded process that forks the producers:
# forking the worker itself would copy its event loop, connections and thread locks.
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["jobs.imports"])


def start_fork_server() -> None:
    """Start the fork server now (a second or so: it imports the project) rather than
    during the first big import."""
    multiprocessing.forkserver.ensure_running()


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


def _produce(make: Callable[[], Iterator[Any]], out: Any) -> None:
    # Our parent is the fork server, which exits with the consumer's process: when the
    # consumer is killed, we are handed to another parent and stop instead of waiting
    # forever for room in the queue.
    parent = os.getppid()
    gc_tuning.settle()
    try:
        for item in make():
            if not _handed_over(out, item, parent):
                return
    except Exception as exc:  # handed over to be raised in the consumer
        _handed_over(out, _Failed(exc), parent)
    else:
        _handed_over(out, None, parent)  # the end
    out.close()
    out.join_thread()


def _handed_over(out: Any, item: Any, parent: int) -> bool:
    """Put the item in the queue; False if the consumer is gone."""
    while True:
        try:
            out.put(item, timeout=1)
            return True
        except queue.Full:
            if os.getppid() != parent:
                out.cancel_join_thread()  # nobody will read what is buffered
                return False


def _next(out: Any, process: Any) -> Any:
    while True:
        try:
            return out.get(timeout=1)
        except queue.Empty:
            if not process.is_alive():
                raise RuntimeError(
                    f"the producing process died (exit code {process.exitcode})"
                ) from None


@contextlib.asynccontextmanager
async def produced_elsewhere(make: Callable[[], Iterator[T]]) -> AsyncIterator[AsyncIterator[T]]:
    """The items `make()` yields (it must pickle: a module-level function or a partial of
    one), produced in another process; that process ends with the block, whatever happens.
    Its exceptions are raised here, so they must pickle too."""
    out = _CONTEXT.Queue(maxsize=DEPTH)
    process = _CONTEXT.Process(target=_produce, args=(make, out), daemon=True)
    process.start()

    async def items() -> AsyncIterator[T]:
        while (item := await asyncio.to_thread(_next, out, process)) is not None:
            if isinstance(item, _Failed):
                raise item.error
            yield item

    try:
        yield items()
    finally:
        if process.is_alive():
            process.terminate()
        await asyncio.to_thread(process.join)
        out.close()
