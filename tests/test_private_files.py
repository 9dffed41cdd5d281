"""The data directory and every file in it are private to the service's user, whatever
the umask: the encryption secret and the SQLite database must not be readable by others."""

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pim.crypto import secrets_of
from pim.migrate import upgrade
from pim.private_files import private_file
from pim.settings import Settings
from tests.conftest import Key


@pytest.fixture
def loose_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def modes(root: Path) -> dict[str, int]:
    return {
        str(path.relative_to(root.parent)): stat.S_IMODE(path.stat().st_mode)
        for path in [root, *root.rglob("*")]
    }


def assert_private(root: Path) -> None:
    for name, mode in modes(root).items():
        wanted = 0o700 if Path(root.parent, name).is_dir() else 0o600
        assert mode == wanted, (name, oct(mode))


async def test_the_data_directory_in_use_is_private_on_both_backends(
    client: httpx.AsyncClient, key: Key, settings: Settings
) -> None:
    created = await client.post(
        "/api/v1/products", json={"ean": "3760000000001", "name": "x"}, headers=key.headers
    )
    assert created.status_code == 201
    secrets_of(settings)
    names = set(modes(settings.data_dir))
    assert any(n.endswith("secret.key") for n in names)
    if settings.is_sqlite:
        assert any(n.endswith("pim.sqlite3") for n in names)
    assert_private(settings.data_dir)


@pytest.mark.usefixtures("loose_umask")
def test_a_new_data_directory_is_created_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "deep" / "data")
    upgrade(settings)
    secrets_of(settings)
    assert {n.rsplit("/", 1)[-1] for n in modes(settings.data_dir)} >= {
        "data", "pim.sqlite3", "secret.key",
    }  # fmt: skip
    assert_private(settings.data_dir)


@pytest.mark.usefixtures("loose_umask")
def test_existing_files_left_readable_by_others_are_made_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "secret.key").write_text("kept")
    (data / "secret.key").chmod(0o644)
    settings = Settings(data_dir=data)
    assert secrets_of(settings) == ["kept"]
    upgrade(settings)
    assert_private(data)
    assert private_file(data / "secret.key", b"other") is False
    assert (data / "secret.key").read_text() == "kept"
