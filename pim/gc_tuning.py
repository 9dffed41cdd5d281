"""How the cyclic garbage collector runs in our long-lived processes.

A request, a batch or an import chunk allocates thousands of short-lived objects
that form no cycles. With Python's default threshold (a young collection every 700
allocations, and full ones that walk every object the process holds) the collector
took a tenth of an import writer's CPU (measured: 126 against 110 µs a row) and paused
requests in flight for up to 150 ms.
"""

import gc

# Allocations between young collections: enough for one chunk's rows to die young.
YOUNG_THRESHOLD = 50_000


def settle() -> None:
    """Call once the process has loaded what it keeps (modules, schema, mappers)."""
    # What is loaded by now lives as long as the process: out of the collector's
    # reach, a full collection scans only what work leaves behind.
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 20, 20)
