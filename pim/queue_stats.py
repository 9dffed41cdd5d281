"""How many jobs each queue holds and how long the oldest has waited, read at scrape time.

arq keeps a queue as a sorted set of job ids scored by the time (ms) each may start, and
removes an id only when its job ends: the set is the queued and the running jobs. A job
deferred to a later time (a retry's backoff) counts in the depth, not in the age.
"""

import time

import redis.asyncio as aioredis

from pim import job_telemetry
from pim.metrics import QueueState

IN_PROCESS = "in-process"


async def arq_queues(redis_url: str, queues: dict[str, str]) -> list[QueueState]:
    """The state of each arq queue, named by label ({label: arq queue name})."""
    client = aioredis.from_url(redis_url, socket_connect_timeout=1)
    now_ms = time.time() * 1000
    try:
        async with client.pipeline(transaction=False) as pipe:
            for name in queues.values():
                pipe.zcard(name)
                pipe.zrangebyscore(name, "-inf", now_ms, start=0, num=1, withscores=True)
            replies = await pipe.execute()
    finally:
        await client.aclose()
    states = []
    for index, label in enumerate(queues):
        depth, oldest = replies[2 * index], replies[2 * index + 1]
        age = (now_ms - oldest[0][1]) / 1000 if oldest else 0.0
        states.append(QueueState(label, int(depth), max(0.0, age)))
    return states


def in_process_queue() -> list[QueueState]:
    """The embedded default runs every job at once: its queue is the jobs running."""
    now = time.time()
    started = [since for _, since in job_telemetry.running.values()]
    age = now - min(started) if started else 0.0
    return [QueueState(IN_PROCESS, len(started), age)]
