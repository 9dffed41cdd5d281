"""`pim serve --workers N`: each worker on a socket of its own, supervised by the parent."""

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from tests.loopback import eventually, free_port


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # ended while we looked
                continue
            # The parent's pid is the second field after the command, which is in brackets.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return children


def _running(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _sockets_on(port: int, state: str) -> set[str]:
    """Inodes of the IPv4 TCP sockets on local `port` in `state` (01 established, 0A listen)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    fields = [line.split() for line in lines]
    return {f[9] for f in fields if int(f[1].split(":")[1], 16) == port and f[3] == state}


def _held(pid: int, inodes: set[str]) -> int:
    """How many of the sockets `inodes` process `pid` holds open."""
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
        except OSError:
            continue
        held += bool(found and found.group(1) in inodes)
    return held


@asynccontextmanager
async def served(tmp_path: Path, workers: int) -> AsyncIterator[tuple[int, int]]:
    """`pim serve` on the embedded default: its port and the supervising process's pid."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIM_")}
    env |= {"PIM_DATA_DIR": str(tmp_path), "PIM_REQUEST_LOG": "false"}
    server = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "pim"), "serve", "--port", str(port),
        "--workers", str(workers), "--no-access-log",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield port, server.pid
    finally:
        if server.returncode is None:
            server.terminate()
            await server.wait()


async def _answers(port: int) -> bool:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.get(f"http://127.0.0.1:{port}/health/live")).status_code == 200
    except httpx.TransportError:
        return False


async def _workers_listening(port: int, supervisor: int, count: int) -> list[int]:
    """The supervisor's workers, once `count` of them each listen on the port."""

    async def listening() -> bool:
        # One listening socket a worker: uvicorn's own workers share their parent's one.
        listeners = _sockets_on(port, "0A")
        held = [_held(pid, listeners) for pid in _children(supervisor)]
        return len(listeners) == count and held.count(1) == count

    await eventually(listening, f"{count} workers never listened on their own sockets")
    await eventually(lambda: _answers(port), "the server did not answer")
    return [pid for pid in _children(supervisor) if _held(pid, _sockets_on(port, "0A"))]


async def test_connections_opened_together_are_spread_over_the_workers(tmp_path: Path) -> None:
    async with served(tmp_path, workers=2) as (port, supervisor):
        workers = await _workers_listening(port, supervisor, 2)
        # 32 clients connecting at once, as a load balancer's pool does, all kept alive:
        # on one shared socket, the worker woken first accepted every one of them.
        pool = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with httpx.AsyncClient(limits=pool, timeout=10) as client:
            url = f"http://127.0.0.1:{port}/health/live"
            answers = await asyncio.gather(*(client.get(url) for _ in range(32)))
            assert all(a.status_code == 200 for a in answers)
            open_connections = _sockets_on(port, "01")
            held = [_held(pid, open_connections) for pid in workers]
    assert sum(held) == 32
    assert min(held) > 0, held


async def test_a_killed_worker_is_replaced_on_its_socket_and_the_port_keeps_answering(
    tmp_path: Path,
) -> None:
    async with served(tmp_path, workers=2) as (port, supervisor):
        first, second = await _workers_listening(port, supervisor, 2)
        os.kill(first, signal.SIGKILL)
        replaced = await _workers_listening(port, supervisor, 2)
        assert second in replaced and first not in replaced
        assert all([await _answers(port) for _ in range(10)])


async def test_stopping_the_server_stops_every_worker(tmp_path: Path) -> None:
    async with served(tmp_path, workers=2) as (port, supervisor):
        workers = await _workers_listening(port, supervisor, 2)
        os.kill(supervisor, signal.SIGTERM)

        async def all_ended() -> bool:
            return not any(map(_running, workers))

        await eventually(all_ended, "a worker outlived its supervisor")
        assert not await _answers(port)
