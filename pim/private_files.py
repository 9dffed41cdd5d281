"""The data directory of the embedded default holds the encryption secret and the whole
database: it and everything in it are private to the service's user (0700 / 0600),
whatever the process's umask. Files are created with their mode (never written first and
restricted afterwards, which leaves a window where others can read them)."""

import os
from pathlib import Path

from sqlalchemy.engine import make_url

from pim.settings import Settings

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """`path` (and missing parents) as a directory only its owner can enter."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != DIR_MODE:
        path.chmod(DIR_MODE)
    return path


def private_file(path: Path, content: bytes = b"") -> bool:
    """Create `path` readable by its owner only, with `content`; an existing file is made
    private and left as it is. Whether the file was created."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        if path.stat().st_mode & 0o777 != FILE_MODE:
            path.chmod(FILE_MODE)
        return False
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
    return True


def private_sqlite_file(settings: Settings) -> None:
    """The data directory, and the SQLite file created private before SQLite opens it
    (SQLite gives its -wal and -shm files the mode of the database file)."""
    private_dir(settings.data_dir)
    database = make_url(settings.resolved_database_url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database)
        path.parent.mkdir(parents=True, exist_ok=True)
        private_file(path)
