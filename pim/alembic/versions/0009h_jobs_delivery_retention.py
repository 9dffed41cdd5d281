"""webhooks: deliveries by age, for retention

Revision ID: 0009h_jobs
Revises: 0005h
Create Date: 2026-12-06 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009h_jobs"
down_revision: str | None = "0005h"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_webhook_deliveries_created_at"), "webhook_deliveries", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_deliveries_created_at"), table_name="webhook_deliveries")
