"""Time-ordered UUIDs (RFC 9562 version 7).

Rows keyed by them are inserted in index order and lists ordered by id follow
creation order, which keeps keyset pagination cheap.
"""

import os
import time
import uuid


def uuid7() -> uuid.UUID:
    # 48 bits of milliseconds, then version 7 and 12 random bits, then variant 0b10
    # and 62 random bits; built from bytes, as imports make a million at a time.
    ms = (time.time_ns() // 1_000_000).to_bytes(8, "big")[2:]
    rand = os.urandom(10)
    return uuid.UUID(
        bytes=ms + bytes((0x70 | rand[0] & 0x0F, rand[1], 0x80 | rand[2] & 0x3F)) + rand[3:]
    )
