"""products: index for the default list order; live product counts per account

Revision ID: 0006p
Revises: 0001
Create Date: 2026-11-22 07:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006p"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_products_account_id_created_at_id", "products", ["account_id", "created_at", "id"]
    )
    op.create_table(
        "product_count_deltas",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"],
            name=op.f("fk_product_count_deltas_account_id_accounts"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_count_deltas")),
    )  # fmt: skip
    op.create_index(
        "ix_product_count_deltas_account_id_id", "product_count_deltas", ["account_id", "id"]
    )
    op.execute(
        "INSERT INTO product_count_deltas (account_id, delta) "
        "SELECT account_id, count(*) FROM products WHERE deleted_at IS NULL GROUP BY account_id"
    )


def downgrade() -> None:
    op.drop_index("ix_product_count_deltas_account_id_id", table_name="product_count_deltas")
    op.drop_table("product_count_deltas")
    op.drop_index("ix_products_account_id_created_at_id", table_name="products")
