"""Producing in another process (jobs.ahead): items in order, the producer's errors
raised in the consumer as they were, and a producer that dies is noticed."""

import functools
import multiprocessing
import os
import signal
from collections.abc import Iterator

import pytest

from jobs.ahead import produced_elsewhere
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
