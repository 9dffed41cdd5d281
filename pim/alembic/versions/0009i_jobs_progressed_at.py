"""jobs: when a import_job last progressed (the watchdog's clock)

Revision ID: 0009i_jobs
Revises: 0008i
Create Date: 2026-12-06 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009i_jobs"
down_revision: str | None = "0008i"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column: a plain ADD COLUMN on both databases, no table copy.
    op.add_column(
        "import_jobs", sa.Column("progressed_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("import_jobs", "progressed_at")  # SQLite 3.35+: no table copy either
