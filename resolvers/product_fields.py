"""The writable product fields, their types and limits: one definition for every surface.

Surfaces rename their own wire fields onto these names (WinDev's `brand` and
`price_ttc`, the External API's `brand_name`…) and hand raw dicts over; the
validation itself happens here, per item, so one bad batch item fails alone.
"""

import functools
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    create_model,
)

from resolvers.bounds import (
    DESCRIPTION_MAX,
    SHORT_TEXT_MAX,
    AtLeastOne,
    Count,
    JsonBounded,
)
from resolvers.ean import normalize_ean
from resolvers.errors import FieldError
from resolvers.validation import parse

Text255 = Annotated[str, Field(max_length=255)]
Short = Annotated[str, Field(max_length=64)]
Code32 = Annotated[str, Field(max_length=32)]
Dimension = Annotated[float, Field(ge=0, le=99_999.99, allow_inf_nan=False)]
# Prices are kept to the cent.
PriceValue = Annotated[
    float, Field(ge=0, le=999_999.99, allow_inf_nan=False), AfterValidator(lambda v: round(v, 2))
]
# EANs arrive as strings or, from spreadsheets and ERPs, as numbers.
EanText = Annotated[str, BeforeValidator(normalize_ean), Field(max_length=32)]
# Strict twins for batches' one-call checks (batches.validate_items): what they accept,
# they turn into what the types above would. An EAN is text; one that is not all digits
# once pydantic has stripped it goes through EanText.
PlainEan = Annotated[str, Strict(), Field(max_length=32)]
PlainPrice = Annotated[PriceValue, Strict()]
Description = Annotated[str, Field(max_length=DESCRIPTION_MAX)]
ShortText = Annotated[str, Field(max_length=SHORT_TEXT_MAX)]

STATUSES = ("active", "inactive", "archived")
Status = Literal["active", "inactive", "archived"]


class ProductFields(BaseModel):
    """Every writable product field. Absent means 'not given': see check_fields."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    ean: EanText | None = None
    name: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    reference: Text255 | None = None
    barcode: Short | None = None
    asin: Code32 | None = None
    upc: Code32 | None = None
    gtin: Code32 | None = None
    external_id: Text255 | None = None
    url_slug: Text255 | None = None

    brand_name: Text255 | None = None
    category_id: Annotated[str, Field(max_length=64)] | None = None
    category_name: Text255 | None = None
    supplier_code: Short | None = None
    description: Description | None = None
    short_description: ShortText | None = None
    promotional_text: ShortText | None = None

    status: Status | None = None
    is_active: bool | None = None
    lifecycle_status: Short | None = None
    discontinued: bool | None = None
    end_of_life_date: date | None = None

    price: PriceValue | None = None
    cost_price: PriceValue | None = None
    tax_rate: Annotated[float, Field(ge=0, le=100)] | None = None
    stock: Count | None = None

    weight: Dimension | None = None
    width: Dimension | None = None
    height: Dimension | None = None
    depth: Dimension | None = None
    unit_of_measure: Code32 | None = None

    package_length: Dimension | None = None
    package_width: Dimension | None = None
    package_height: Dimension | None = None
    package_weight: Count | None = None
    package_quantity: AtLeastOne | None = None

    min_order_quantity: AtLeastOne | None = None
    max_order_quantity: AtLeastOne | None = None
    order_increment: AtLeastOne | None = None
    lead_time_days: Count | None = None
    backorder_allowed: bool | None = None
    preorder_available: bool | None = None
    requires_quote: bool | None = None
    is_b2b_only: bool | None = None

    hs_code: Code32 | None = None
    country_of_origin: (
        Annotated[str, Field(pattern=r"^[A-Za-z]{2}$"), AfterValidator(str.upper)] | None
    ) = None
    dangerous_goods: bool | None = None
    dangerous_goods_class: Code32 | None = None
    reach_compliant: bool | None = None
    rohs_compliant: bool | None = None
    ce_marked: bool | None = None
    weee_category: Code32 | None = None

    energy_class: Annotated[str, Field(max_length=16)] | None = None
    recyclable: bool | None = None
    eco_friendly: bool | None = None
    carbon_footprint_kg: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None

    warranty_duration: Count | None = None
    warranty_type: Short | None = None
    return_policy_days: Count | None = None
    return_allowed: bool | None = None

    color: Short | None = None
    color_secondary: Short | None = None
    size: Short | None = None
    material: Short | None = None
    finish: Short | None = None
    style: Short | None = None
    pattern: Short | None = None

    technical_specs: Annotated[dict[str, Any], JsonBounded] | None = None
    compatibility: Annotated[list[Any] | dict[str, Any], JsonBounded] | None = None


FIELD_NAMES = frozenset(ProductFields.model_fields)


def check_fields(
    raw: dict[str, Any], *, drop_nulls: bool
) -> tuple[dict[str, Any] | None, list[FieldError]]:
    """The product fields `raw` gives, validated; or the errors. PATCH-like writes
    leave a field alone when it is null (`drop_nulls`).

    Validated by a model of just the fields `raw` has: pydantic visits every field of
    a model, so the full one spends most of its time on the 60 fields a 15-column
    import row does not have. Rows of one file or batch share their model.
    """
    model = _model_for_keys(tuple(raw))
    fields, errors = parse(model, raw)
    if fields is None:
        return None, errors
    values = fields.__dict__
    if drop_nulls:
        return {k: v for k, v in values.items() if v is not None}, []
    return dict(values), []


@functools.lru_cache(maxsize=512)
def _model_for_keys(keys: tuple[Any, ...]) -> type[BaseModel]:
    # Rows of one file give their keys in the same order: the tuple is the cheap key
    # (the set of known names cost 2 µs a row to build).
    return _model_for(frozenset(keys) & FIELD_NAMES)


@functools.lru_cache(maxsize=512)
def _model_for(names: frozenset[str]) -> type[BaseModel]:
    fields: Any = {
        name: (info.annotation, info)
        for name, info in ProductFields.model_fields.items()
        if name in names
    }
    return create_model("GivenProductFields", __config__=ProductFields.model_config, **fields)


# Inputs that are not product columns: resolved to other rows or derived.
NON_COLUMN_INPUTS = frozenset({"brand_name", "is_active", "stock", "category_id"})

# What PUT replaces: the fields the External API documents. A PUT from an ERP must
# not wipe prices or stock that other channels (WinDev, imports) maintain.
REPLACEABLE_FIELDS = frozenset(
    {
        "name", "brand_name", "description", "short_description", "reference",
        "supplier_code", "category_id", "asin", "upc", "gtin", "status", "weight",
        "width", "height", "depth", "unit_of_measure", "external_id", "url_slug",
    }
)  # fmt: skip
