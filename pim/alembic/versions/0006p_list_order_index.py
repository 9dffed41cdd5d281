"""products: index for the default list order (creation), used by deep offset pages

Revision ID: 0006p
Revises: 0001
Create Date: 2026-11-22 07:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006p"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_products_account_id_created_at_id", "products", ["account_id", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_products_account_id_created_at_id", table_name="products")
