"""products: the list-order index covers live products only

Revision ID: 0007p
Revises: 0006p
Create Date: 2026-12-02 07:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007p"
down_revision: str | None = "0006p"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_products_account_id_created_at_id"
LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    # Lists filter on deleted_at, which the full index does not hold: every row skipped by
    # a deep OFFSET was visited in the table. Partial, the index alone answers.
    op.drop_index(NAME, table_name="products")
    op.create_index(
        NAME, "products", ["account_id", "created_at", "id"],
        postgresql_where=LIVE, sqlite_where=LIVE,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index(NAME, table_name="products")
    op.create_index(NAME, "products", ["account_id", "created_at", "id"])
