"""Load generation: wrk when installed (it costs the server little CPU), else a Python
fallback so the harness still runs anywhere (its figures are then lower bounds)."""

import asyncio
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass

import httpx

LUA = """
wrk.method = "{method}"
wrk.body = {body}
{headers}
done = function(summary, latency, requests)
  io.write(string.format("RESULT %f %f %f\\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
  io.write(string.format("ERRORS %d\\n", summary.errors.status + summary.errors.connect
    + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


@dataclass(frozen=True)
class LoadResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    tool: str


def _lua(method: str, body: str | None, headers: dict[str, str]) -> str:
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    encoded = "nil" if body is None else "[==[" + body + "]==]"
    return LUA.format(method=method, body=encoded, headers=lines)


def run_wrk(url: str, *, connections: int, seconds: float, method: str = "GET",
            body: str | None = None, headers: dict[str, str] | None = None) -> LoadResult:  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(method, body, headers or {}))
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", script.name, url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps, p50, p99 = (float(x) for x in re.search(r"RESULT (\S+) (\S+) (\S+)", out).groups())  # type: ignore[union-attr]
    errors = int(re.search(r"ERRORS (\d+)", out).group(1))  # type: ignore[union-attr]
    return LoadResult(rps, p50, p99, errors, "wrk")


async def _python_load(url: str, *, connections: int, seconds: float, method: str,
                       body: str | None, headers: dict[str, str]) -> LoadResult:  # fmt: skip
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                response = await http.request(method, url, content=body, headers=headers)
            except httpx.TransportError:
                # A keep-alive connection the server closed as the request left: wrk
                # counts it as a socket error and goes on, so does this.
                errors += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            errors += response.status_code >= 400

    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        began = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(connections)))
        elapsed = time.perf_counter() - began
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return LoadResult(len(latencies) / elapsed, cuts[49], cuts[98], errors, "python")


def run(url: str, *, connections: int, seconds: float, method: str = "GET",
        body: str | None = None, headers: dict[str, str] | None = None) -> LoadResult:  # fmt: skip
    if shutil.which("wrk"):
        return run_wrk(
            url, connections=connections, seconds=seconds, method=method, body=body, headers=headers
        )
    return asyncio.run(
        _python_load(
            url,
            connections=connections,
            seconds=seconds,
            method=method,
            body=body,
            headers=headers or {},
        )
    )
