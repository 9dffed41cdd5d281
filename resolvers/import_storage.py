"""Where an import's file is kept: in the database, in parts, so that any worker can read
it and no process ever holds the whole of it.

The API stores an upload part by part as it reads it; a run (or a preview) writes the
parts back into a temporary file, which the file readers stream from.
"""

import asyncio
import uuid
from typing import IO, Protocol

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import ImportFilePart

# Big enough that a file is a few dozen rows, small enough to be nothing in memory.
PART_BYTES = 4 * 1024 * 1024


class Readable(Protocol):
    """What a file is read through: an upload (starlette's UploadFile) or `InMemory`."""

    async def read(self, size: int = -1) -> bytes: ...


class InMemory:
    """A file already held as bytes (a download, a test), read like an upload."""

    def __init__(self, content: bytes) -> None:
        self._content = memoryview(content)
        self._position = 0

    async def read(self, size: int = -1) -> bytes:
        end = len(self._content) if size < 0 else self._position + size
        piece = self._content[self._position : end]
        self._position += len(piece)
        return bytes(piece)


async def store(session: AsyncSession, job_id: uuid.UUID, file: Readable) -> int:
    """Store the file's bytes for the job, part by part; its size in bytes."""
    size = seq = 0
    # An empty file has no parts: its run reads an empty file and says so.
    while data := await file.read(PART_BYTES):
        await session.execute(insert(ImportFilePart).values(job_id=job_id, seq=seq, data=data))
        size += len(data)
        seq += 1
    return size


async def load_into(session: AsyncSession, job_id: uuid.UUID, out: IO[bytes]) -> int:
    """Write the job's file into `out` (a temporary file: the readers stream from it);
    its size in bytes."""
    seqs = await session.scalars(
        select(ImportFilePart.seq)
        .where(ImportFilePart.job_id == job_id)
        .order_by(ImportFilePart.seq)
    )
    size = 0
    # One part at a time: a server-side cursor would prefetch dozens of them.
    for seq in list(seqs):
        data = await session.scalar(
            select(ImportFilePart.data).where(
                ImportFilePart.job_id == job_id, ImportFilePart.seq == seq
            )
        )
        size += await asyncio.to_thread(out.write, data or b"")
    out.flush()
    out.seek(0)
    return size
