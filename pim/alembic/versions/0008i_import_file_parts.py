"""imports: files stored in parts

Revision ID: 0008i
Revises: 0002i
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008i"
down_revision: str | None = "0002i"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # One row per file held the whole file: the API and the workers each loaded it whole.
    op.create_table(
        "import_file_parts",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["import_jobs.id"],
            name=op.f("fk_import_file_parts_job_id_import_jobs"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "seq", name=op.f("pk_import_file_parts")),
    )  # fmt: skip
    op.execute(
        "INSERT INTO import_file_parts (job_id, seq, data) SELECT job_id, 0, content FROM import_files"
    )
    op.drop_table("import_files")


def downgrade() -> None:
    op.create_table(
        "import_files",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["import_jobs.id"],
            name=op.f("fk_import_files_job_id_import_jobs"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_import_files")),
    )  # fmt: skip
    # Joined here, not in SQL: SQLite would concatenate the blobs as text.
    bind = op.get_bind()
    files: dict[object, bytearray] = {}
    for job_id, data in bind.execute(
        sa.text("SELECT job_id, data FROM import_file_parts ORDER BY job_id, seq")
    ):
        files.setdefault(job_id, bytearray()).extend(data)
    for job_id, content in files.items():
        bind.execute(
            sa.text("INSERT INTO import_files (job_id, content) VALUES (:job_id, :content)"),
            {"job_id": job_id, "content": bytes(content)},
        )
    op.drop_table("import_file_parts")
