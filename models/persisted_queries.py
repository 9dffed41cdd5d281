"""GraphQL operations stored by their SHA-256, for clients that send the hash alone."""

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base
from pim.timeutil import utcnow


class PersistedQuery(Base):
    """Deployment-wide, not per account: a front end is one build used by every account,
    and its build step registers its operations once. A stored text is addressed by its
    own hash, so sharing it across accounts shows nobody anything (running it still takes
    the caller's key and scopes), and no account can change what another one runs."""

    __tablename__ = "graphql_persisted_queries"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    query: Mapped[str] = mapped_column(Text)
    operation_name: Mapped[str | None] = mapped_column(String(255), default=None)
    # Registered by the operator's build step (`pim graphql persist`), not merely sent by
    # a client (automatic persisted queries): only these run when persisted-only is on.
    allowlisted: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
