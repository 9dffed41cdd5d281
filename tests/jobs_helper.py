"""Running the jobs a test enqueued: a real arq worker in burst mode on the real stack,
the in-process queue's own tasks on the embedded default."""

from pim.jobs import DEFAULT_QUEUE, InProcessQueue
from pim.runtime import Runtime


async def run_jobs(runtime: Runtime, queue: str = DEFAULT_QUEUE) -> None:
    if isinstance(runtime.queue, InProcessQueue):
        await runtime.queue.drain()
        return
    from service.worker import worker_for

    worker = worker_for(runtime.settings, burst=True, queue=queue)
    try:
        await worker.main()
    finally:
        await worker.close()
