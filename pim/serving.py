"""Serving an ASGI app from several worker processes, each on a listening socket of its own.

uvicorn's workers share the one socket their parent bound: the worker that wakes first
accepts every connection pending, so clients that connect together and keep their
connections alive (a load balancer, an ERP's pool, a benchmark) all land on one process
while the others idle. Measured with 32 clients on two workers: all 32 connections on
one worker, a request's p99 the time of 32 queued behind each other. Here each worker
binds the port with SO_REUSEPORT and the kernel spreads new connections over the
workers' sockets. The parent only supervises: it starts a worker again when one dies,
on the same socket (the parent keeps it open, so the connections the kernel queued on it
wait for the new worker instead of being reset), and stops them all on SIGTERM or SIGINT.
"""

import logging
import multiprocessing
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn

logger = logging.getLogger("pim.serving")

# A worker that dies this soon after its start is started again only after this pause,
# so a worker that cannot start (a broken setting) does not spin the parent.
RESTART_PAUSE = 1.0
# How long stopping workers get to finish the requests in flight.
STOP_GRACE = 30.0


def serve(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    """Serve `app` ("module:attribute", as uvicorn takes it) on `workers` processes;
    `options` are uvicorn.Config's."""
    if workers <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return
    sockets = [listening_socket(host, port) for _ in range(workers)]
    Supervisor(app, sockets, options).run()


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(app: str, sock: socket.socket, options: dict[str, Any]) -> None:
    uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])


class Supervisor:
    def __init__(self, app: str, sockets: list[socket.socket], options: dict[str, Any]) -> None:
        self.app = app
        self.sockets = sockets
        self.options = options
        self.context = multiprocessing.get_context("spawn")
        self.stopping = threading.Event()

    def run(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)
        workers = [self._start(sock) for sock in self.sockets]
        started = [time.monotonic()] * len(workers)
        while not self.stopping.wait(0.2):
            for i, worker in enumerate(workers):
                if worker.is_alive() or time.monotonic() - started[i] < RESTART_PAUSE:
                    continue
                logger.warning(
                    "worker %s ended (exit code %s): starting another", worker.pid, worker.exitcode
                )
                workers[i], started[i] = self._start(self.sockets[i]), time.monotonic()
        self._stop_all(workers)

    def _start(self, sock: socket.socket) -> BaseProcess:
        worker = self.context.Process(target=_worker, args=(self.app, sock, self.options))
        worker.start()
        return worker

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping.set()

    def _stop_all(self, workers: list[BaseProcess]) -> None:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + STOP_GRACE
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                worker.kill()
                worker.join()
        for sock in self.sockets:
            sock.close()
