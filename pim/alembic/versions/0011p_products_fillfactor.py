"""products: 15 % of each page left free, so a price batch updates its rows in place

Revision ID: 0011p_products
Revises: 0010p_stock
Create Date: 2026-12-07 01:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011p_products"
down_revision: str | None = "0010p_stock"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A price batch rewrites the prices of thousands of product rows. No indexed column
# changes, so PostgreSQL can keep each new version in its page (a HOT update: no new
# entry in any of the 6 indexes) if the page has room for it; full pages have none.
# Measured on 600,000 products, 5,000 prices updated per batch, the table vacuumed
# between batches. At 100 %: 81–288 ms in PostgreSQL; the benchmark's rows 0–3 % in
# place (about 8 WAL records a row: the heap and 6 indexes), scattered rows in place
# only every other batch (a batch moves them to full pages). At 85 %: scattered rows
# (about one a page) 100 % in place from the first batch, 50–72 ms; rows that fill
# whole pages (the benchmark's consecutive products) from 17 % to 86 % in place over
# ten batches, 42–63 ms once settled. The table takes 18 % more space; COPYing
# 10,000-row chunks costs the same. Rows stored before this keep their pages until
# they are updated (or the table is rewritten).
FILLFACTOR = 85


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE products SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE products RESET (fillfactor)")
