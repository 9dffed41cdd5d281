"""Stock: one generic quantity per product, and one per supplier offering it."""

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Money, account_column, id_column
from pim.timeutil import utcnow


class ProductStock(Base):
    __tablename__ = "product_stocks"
    __table_args__ = (UniqueConstraint("account_id", "product_id"),)

    id: Mapped[uuid.UUID] = id_column()
    account_id: Mapped[uuid.UUID] = account_column(foreign_key=False)
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    quantity: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SupplierProduct(Base):
    __tablename__ = "supplier_products"
    __table_args__ = (UniqueConstraint("account_id", "product_id", "supplier_id"),)

    id: Mapped[uuid.UUID] = id_column()
    account_id: Mapped[uuid.UUID] = account_column()
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    supplier_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("suppliers.id", ondelete="CASCADE"))
    supplier_reference: Mapped[str | None] = mapped_column(String(255), default=None)
    stock: Mapped[int] = mapped_column(default=0)
    cost_price: Mapped[float | None] = mapped_column(Money, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
