"""The product: one row per EAN per account, soft-deleted, every spec field as a column."""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, JsonType, Money, account_column, id_column
from pim.timeutil import utcnow

Str64 = String(64)
Str255 = String(255)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        # Soft-deleted rows keep their EAN: writing it again restores the product.
        UniqueConstraint("account_id", "ean"),
        # Delta sync and updated_since walk this index in (updated_at, id) order.
        Index(None, "account_id", "updated_at", "id"),
        # Default list order (creation) of live products. Partial, so that a deep OFFSET
        # page skips its rows on the index alone, without visiting each row for
        # deleted_at (page 2,000 of 500 on a million products: 0.8 s that way).
        Index(
            None,
            "account_id",
            "created_at",
            "id",
            postgresql_where=text("deleted_at IS NULL"),
            sqlite_where=text("deleted_at IS NULL"),
        ),
        Index(None, "account_id", "reference"),
        Index(None, "account_id", "supplier_code"),
    )

    id: Mapped[uuid.UUID] = id_column()
    account_id: Mapped[uuid.UUID] = account_column(foreign_key=False)

    # Identifiers
    # WinDev may create a product by reference alone, so the EAN can be absent.
    ean: Mapped[str | None] = mapped_column(String(14), default=None)
    ean_checksum_valid: Mapped[bool] = mapped_column(default=True)
    name: Mapped[str | None] = mapped_column(Str255, default=None)
    reference: Mapped[str | None] = mapped_column(Str255, default=None)
    barcode: Mapped[str | None] = mapped_column(Str64, default=None)
    asin: Mapped[str | None] = mapped_column(String(32), default=None)
    upc: Mapped[str | None] = mapped_column(String(32), default=None)
    gtin: Mapped[str | None] = mapped_column(String(32), default=None)
    external_id: Mapped[str | None] = mapped_column(Str255, default=None)
    url_slug: Mapped[str | None] = mapped_column(Str255, default=None)

    # Content and classification
    brand_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("brands.id", ondelete="SET NULL"), default=None
    )
    category_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL"), default=None
    )
    # WinDev sends a free-text category name, kept for information only.
    category_name: Mapped[str | None] = mapped_column(Str255, default=None)
    supplier_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("suppliers.id", ondelete="SET NULL"), default=None
    )
    supplier_code: Mapped[str | None] = mapped_column(Str64, default=None)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    short_description: Mapped[str | None] = mapped_column(Text, default=None)
    promotional_text: Mapped[str | None] = mapped_column(Text, default=None)

    # Status
    status: Mapped[str] = mapped_column(String(16), default="active")
    lifecycle_status: Mapped[str | None] = mapped_column(Str64, default=None)
    discontinued: Mapped[bool | None] = mapped_column(default=None)
    end_of_life_date: Mapped[date | None] = mapped_column(default=None)

    # Prices: price is the selling price (TTC), cost_price the purchase price (HT).
    price: Mapped[float | None] = mapped_column(Money, default=None)
    cost_price: Mapped[float | None] = mapped_column(Money, default=None)
    tax_rate: Mapped[float | None] = mapped_column(Float, default=None)

    # Dimensions (kg, cm)
    weight: Mapped[float | None] = mapped_column(Float, default=None)
    width: Mapped[float | None] = mapped_column(Float, default=None)
    height: Mapped[float | None] = mapped_column(Float, default=None)
    depth: Mapped[float | None] = mapped_column(Float, default=None)
    unit_of_measure: Mapped[str | None] = mapped_column(String(32), default=None)

    # Packaging (cm, grams)
    package_length: Mapped[float | None] = mapped_column(Float, default=None)
    package_width: Mapped[float | None] = mapped_column(Float, default=None)
    package_height: Mapped[float | None] = mapped_column(Float, default=None)
    package_weight: Mapped[int | None] = mapped_column(default=None)
    package_quantity: Mapped[int | None] = mapped_column(default=None)

    # B2B
    min_order_quantity: Mapped[int | None] = mapped_column(default=None)
    max_order_quantity: Mapped[int | None] = mapped_column(default=None)
    order_increment: Mapped[int | None] = mapped_column(default=None)
    lead_time_days: Mapped[int | None] = mapped_column(default=None)
    backorder_allowed: Mapped[bool | None] = mapped_column(default=None)
    preorder_available: Mapped[bool | None] = mapped_column(default=None)
    requires_quote: Mapped[bool | None] = mapped_column(default=None)
    is_b2b_only: Mapped[bool | None] = mapped_column(default=None)

    # Compliance
    hs_code: Mapped[str | None] = mapped_column(String(32), default=None)
    country_of_origin: Mapped[str | None] = mapped_column(String(2), default=None)
    dangerous_goods: Mapped[bool | None] = mapped_column(default=None)
    dangerous_goods_class: Mapped[str | None] = mapped_column(String(32), default=None)
    reach_compliant: Mapped[bool | None] = mapped_column(default=None)
    rohs_compliant: Mapped[bool | None] = mapped_column(default=None)
    ce_marked: Mapped[bool | None] = mapped_column(default=None)
    weee_category: Mapped[str | None] = mapped_column(String(32), default=None)

    # Energy
    energy_class: Mapped[str | None] = mapped_column(String(16), default=None)
    recyclable: Mapped[bool | None] = mapped_column(default=None)
    eco_friendly: Mapped[bool | None] = mapped_column(default=None)
    carbon_footprint_kg: Mapped[float | None] = mapped_column(Float, default=None)

    # Warranty
    warranty_duration: Mapped[int | None] = mapped_column(default=None)
    warranty_type: Mapped[str | None] = mapped_column(Str64, default=None)
    return_policy_days: Mapped[int | None] = mapped_column(default=None)
    return_allowed: Mapped[bool | None] = mapped_column(default=None)

    # Physical attributes
    color: Mapped[str | None] = mapped_column(Str64, default=None)
    color_secondary: Mapped[str | None] = mapped_column(Str64, default=None)
    size: Mapped[str | None] = mapped_column(Str64, default=None)
    material: Mapped[str | None] = mapped_column(Str64, default=None)
    finish: Mapped[str | None] = mapped_column(Str64, default=None)
    style: Mapped[str | None] = mapped_column(Str64, default=None)
    pattern: Mapped[str | None] = mapped_column(Str64, default=None)

    # Free-form JSON
    technical_specs: Mapped[dict[str, Any] | None] = mapped_column(JsonType, default=None)
    compatibility: Mapped[list[Any] | dict[str, Any] | None] = mapped_column(JsonType, default=None)

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)

    @property
    def is_active(self) -> bool:
        return self.status == "active"


class ProductChange(Base):
    """When a product's stock or price last changed, kept apart from its wide row.

    A stock or price batch stamps these narrow rows instead of rewriting thousands of
    products; a product's latest change (the `updated_at` every surface shows, and the
    order of delta sync) is the later of its row's `updated_at` and this stamp.
    """

    __tablename__ = "product_changes"
    __table_args__ = (Index(None, "account_id", "changed_at", "product_id"),)

    account_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    changed_at: Mapped[datetime] = mapped_column()
