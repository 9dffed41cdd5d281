"""Migrations that move data keep it: import files, once one row each, now in parts."""

import sqlite3
import uuid
from pathlib import Path

from alembic import command

from pim.migrate import alembic_config, upgrade
from pim.settings import Settings

BEFORE_PARTS = "0002i"


def test_import_files_move_into_parts_and_back(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    config = alembic_config(settings)
    upgrade(settings, BEFORE_PARTS)
    job = uuid.uuid4().hex
    content = bytes(range(256)) * 3  # every byte value, NUL included
    with sqlite3.connect(tmp_path / "pim.sqlite3") as db:
        db.execute(
            "INSERT INTO import_jobs (id, account_id, status, file_name, file_type, file_size, "
            "dry_run, mode, total_rows, successful_rows, failed_rows, products_created, "
            "products_updated, checkpoint, created_at) VALUES (?, ?, 'pending', 'a.csv', 'csv', "
            "?, 0, 'upsert', 0, 0, 0, 0, 0, 0, '2026-12-02 10:00:00')",
            (job, uuid.uuid4().hex, len(content)),
        )
        db.execute("INSERT INTO import_files (job_id, content) VALUES (?, ?)", (job, content))

    upgrade(settings)
    with sqlite3.connect(tmp_path / "pim.sqlite3") as db:
        parts = db.execute("SELECT seq, data FROM import_file_parts WHERE job_id = ?", (job,))
        assert parts.fetchall() == [(0, content)]
        db.execute(
            "INSERT INTO import_file_parts (job_id, seq, data) VALUES (?, 1, ?)", (job, b"\0")
        )

    command.downgrade(config, BEFORE_PARTS)
    with sqlite3.connect(tmp_path / "pim.sqlite3") as db:
        joined = db.execute("SELECT content FROM import_files WHERE job_id = ?", (job,)).fetchone()
    assert joined == (content + b"\0",)


def _account_keys(db: sqlite3.Connection, table: str) -> list[str]:
    return [
        row[2] for row in db.execute(f"PRAGMA foreign_key_list({table})") if row[3] == "account_id"
    ]


def test_the_hot_tables_lose_their_account_keys_and_get_them_back_on_downgrade(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path)
    upgrade(settings)
    hot = ("products", "product_stocks", "events")
    with sqlite3.connect(tmp_path / "pim.sqlite3") as db:
        assert [_account_keys(db, t) for t in hot] == [[], [], []]
        assert _account_keys(db, "supplier_products") == ["accounts"]
        assert db.execute("SELECT count(*) FROM product_changes").fetchone() == (0,)

    command.downgrade(alembic_config(settings), "0007p")
    with sqlite3.connect(tmp_path / "pim.sqlite3") as db:
        assert [_account_keys(db, t) for t in hot] == [["accounts"]] * 3
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "product_changes" not in tables
