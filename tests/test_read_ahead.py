"""Producing in another process (jobs.read_ahead): items in order, the producer's errors
raised in the consumer as they were, and a producer that dies is noticed."""

import asyncio
import functools
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.read_ahead import produced_elsewhere
from resolvers.import_files import ImportFileError


def numbers(count: int, fail_after: int | None = None) -> Iterator[int]:
    for n in range(count):
        if n == fail_after:
            raise ImportFileError("CSV illisible ligne 3", "malformed")
        yield n


def dies() -> Iterator[int]:
    yield 1
    os.kill(os.getpid(), signal.SIGKILL)
    yield 2


async def test_items_arrive_in_order() -> None:
    async with produced_elsewhere(functools.partial(numbers, 50)) as items:
        assert [n async for n in items] == list(range(50))


async def test_the_producers_error_is_raised_here_as_it_was() -> None:
    received = []
    with pytest.raises(ImportFileError) as raised:
        async with produced_elsewhere(functools.partial(numbers, 50, 5)) as items:
            async for n in items:
                received.append(n)
    assert received == [0, 1, 2, 3, 4]
    assert (raised.value.message, raised.value.code) == ("CSV illisible ligne 3", "malformed")


async def test_a_producer_that_dies_is_an_error_not_a_hang() -> None:
    with pytest.raises(RuntimeError, match="died"):
        async with produced_elsewhere(dies) as items:
            async for _ in items:
                pass


async def test_leaving_early_stops_the_producer() -> None:
    async with produced_elsewhere(functools.partial(numbers, 10**9)) as items:
        assert len(multiprocessing.active_children()) == 1
        async for n in items:
            if n == 3:
                break
    assert multiprocessing.active_children() == []


async def test_a_producer_whose_consumer_was_killed_stops() -> None:
    async with produced_elsewhere(functools.partial(numbers, 10**9)) as items:
        [producer] = multiprocessing.active_children()
        assert await anext(items) == 0
        # A killed consumer takes its fork server along, the producer's parent.
        server = multiprocessing.forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
        os.kill(server, signal.SIGKILL)
        assert await asyncio.to_thread(_ends_within, producer.pid, 10)
    multiprocessing.forkserver.ensure_running()  # for the tests after this one


def _ends_within(pid: int | None, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):  # ended, waiting (a zombie) to be reaped
            return True
        time.sleep(0.1)
    return False
