"""Starting the real stack for a benchmark: a fresh database, the API on uvicorn with two
workers, the bare reference app, and arq workers, as separate processes."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS_LOGS = ROOT / "bench" / "results" / "logs"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def process(
    args: list[str], env: dict[str, str], ready_url: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    # Logs go to a file: a full pipe nobody reads would block the server.
    log = RESULTS_LOGS / f"{Path(args[2] if len(args) > 2 else args[0]).name}-{os.getpid()}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        proc = subprocess.Popen(args, env={**os.environ, **env}, cwd=ROOT, stdout=sink, stderr=sink)
    try:
        if ready_url:
            wait_http(ready_url)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def api(env: dict[str, str], workers: int = 2) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "service.cli",
        "serve",
        "--no-migrate",
        "--no-access-log",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with process(args, env, f"http://127.0.0.1:{port}/") as proc:
        yield f"http://127.0.0.1:{port}", proc


@contextmanager
def bare(env: dict[str, str], workers: int = 2) -> Iterator[str]:
    port = free_port()
    args = [sys.executable, "-m", "bench.bare", str(port), str(workers)]
    with process(args, env, f"http://127.0.0.1:{port}/products?page_size=1"):
        yield f"http://127.0.0.1:{port}"


def _family(pid: int) -> list[int]:
    pids = [pid]
    for member in pids:  # grows as children are found
        with contextlib.suppress(FileNotFoundError):  # a child may end while we look
            pids += [
                int(p) for p in Path(f"/proc/{member}/task/{member}/children").read_text().split()
            ]
    return pids


def peak_process_rss_mb(pid: int) -> float:
    """The largest peak resident memory among a process and its descendants (uvicorn
    workers, an import's reader process under the fork server), MB.

    The kernel's own high-water mark (VmHWM), so that sampling twice a second misses no
    peak of a process still running; a child is seen at its last sample before it ends.
    """
    largest = 0
    for p in _family(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except FileNotFoundError:  # it ended between listing and reading
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                largest = max(largest, int(line.split()[1]))
    return largest / 1024


@contextmanager
def worker(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """One arq worker (`pim worker`) on the default queue."""
    with process([sys.executable, "-m", "service.cli", "worker"], env) as proc:
        yield proc
