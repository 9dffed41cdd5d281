"""Schema migrations (Alembic), run by `pim migrate`, `make run` and the tests."""

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from pim.private_files import private_sqlite_file
from pim.settings import Settings

SCRIPTS = Path(__file__).resolve().parent / "alembic"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.set_main_option("sqlalchemy.url", settings.resolved_database_url)
    return config


def upgrade(settings: Settings, revision: str = "heads") -> None:
    if settings.is_sqlite:
        private_sqlite_file(settings)
    command.upgrade(alembic_config(settings), revision)


async def upgrade_async(settings: Settings) -> None:
    """From async code (tests): Alembic's env runs its own event loop, so use a thread."""
    await asyncio.to_thread(upgrade, settings)
