"""The product's fields are declared in four places, each with the types its layer needs:
the table (models.Product), the checks of what a client may write (ProductFields), and
GraphQL's Product and ProductInput, whose leaves stay plain attributes because a page of
products reads them by the thousand. These tests fail as soon as one drifts from the
others: a field added to one place only, a type or a text limit that disagrees."""

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from strawberry.types.base import get_object_definition

from models import Product as ProductTable
from resolvers.product_fields import FIELD_NAMES, NON_COLUMN_INPUTS, ProductFields
from schema.products import Product, ProductInput

COLUMNS = {column.key: column for column in ProductTable.__table__.columns}
# Written by the server only: keys, links resolved from other inputs, stamps.
SERVER_COLUMNS = {
    "id", "account_id", "brand_id", "supplier_id", "ean_checksum_valid", "created_at",
    "updated_at", "deleted_at",
}  # fmt: skip
# Columns GraphQL shows as an object (brand, category, supplier) rather than as a key.
LINK_COLUMNS = {"account_id", "brand_id", "category_id", "supplier_id"}
# Product fields that are no column: joined, derived or batched per request.
DERIVED_OUTPUTS = {
    "brand", "brand_name", "category", "supplier", "stock", "is_active", "supplier_stocks",
    "channel_prices",
}  # fmt: skip
# Text fields bounded otherwise than by a length: the EAN by its check (at most 14
# digits once normalized), the status by its values, the country by its pattern.
BOUNDED_OTHERWISE = {"ean", "status", "country_of_origin"}


def _python_name(annotation: Any) -> str:
    """The plain type under Optional, Annotated and Literal: `str`, `float`, `dict|list`…"""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _python_name(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return "|".join(sorted(_python_name(a) for a in args))
    if origin is Literal:
        return "str"
    return str((origin or annotation).__name__)


def _graphql_name(field_type: Any) -> str:
    inner = getattr(field_type, "of_type", field_type)
    for attribute in ("__name__", "name"):
        if isinstance(name := getattr(inner, attribute, None), str):
            return name
    return str(inner._scalar_definition.name)


def _max_length(annotation: Any) -> int | None:
    for part in get_args(annotation):
        for constraint in [part, *getattr(part, "metadata", ())]:
            if getattr(constraint, "max_length", None):
                return int(constraint.max_length)
        if found := _max_length(part):
            return found
    return None


def _column_python_type(name: str) -> str:
    column_type = COLUMNS[name].type
    python_type = column_type.python_type
    if python_type is object:  # a decorated type (UTC date-times): what it stores
        python_type = column_type.impl.python_type  # type: ignore[attr-defined]
    return python_type.__name__


def _fields(graphql_type: type) -> dict[str, Any]:
    definition = get_object_definition(graphql_type, strict=True)
    return {field.python_name: field.type for field in definition.fields}


def test_every_writable_field_is_a_column_or_a_declared_derived_input() -> None:
    assert set(COLUMNS) - FIELD_NAMES == SERVER_COLUMNS
    assert FIELD_NAMES - set(COLUMNS) == NON_COLUMN_INPUTS - set(COLUMNS)


def test_graphql_product_input_takes_exactly_the_writable_fields_in_their_types() -> None:
    inputs = _fields(ProductInput)
    assert set(inputs) == FIELD_NAMES
    special = {"category_id": "ID", "status": "ProductStatus"}
    json = {"technical_specs", "compatibility"}
    mismatched = {
        name: (_python_name(info.annotation), _graphql_name(inputs[name]))
        for name, info in ProductFields.model_fields.items()
        if _graphql_name(inputs[name])
        != special.get(name, "JSON" if name in json else _python_name(info.annotation))
    }
    assert mismatched == {}


def test_graphql_product_shows_every_column_but_the_links_in_its_type() -> None:
    outputs = _fields(Product)
    assert set(outputs) == (set(COLUMNS) - LINK_COLUMNS) | DERIVED_OUTPUTS
    special = {"id": "ID", "status": "ProductStatus"}
    mismatched = {}
    for name in set(COLUMNS) - LINK_COLUMNS:
        python = "JSON" if name in ("technical_specs", "compatibility") else None
        expected = special.get(name) or python or _column_python_type(name)
        if _graphql_name(outputs[name]) != expected:
            mismatched[name] = (expected, _graphql_name(outputs[name]))
    assert mismatched == {}


def test_text_limits_are_their_columns_lengths() -> None:
    mismatched = {}
    for name, info in ProductFields.model_fields.items():
        length = getattr(COLUMNS[name].type, "length", None) if name in COLUMNS else None
        bounded = length is not None and name not in BOUNDED_OTHERWISE
        if bounded and _max_length(info.annotation) != length:
            mismatched[name] = (_max_length(info.annotation), length)
    assert mismatched == {}
