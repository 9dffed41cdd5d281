"""Executing plain leaf fields without the general machinery.

A page of 50 products with 8 fields resolves 400 fields. For each, graphql-core builds
a resolve info, calls Strawberry's resolver (an attribute read), checks for arguments
and awaitables and dispatches on the return type: most of what a GraphQL page costs
beyond its REST twin. A field that is a plain attribute of a Strawberry type (no
resolver, no arguments, no field extension or permission) and returns a scalar or an
enum is read and coerced directly. Anything else, and any value that does not come
out clean (missing, null where the type forbids it, refused by the coercion), goes
the general way, which raises the error it would have raised anyway.
"""

import weakref
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    Undefined,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

_ABSENT = object()


class _Plain:
    """How to read one plain leaf field: Strawberry's field, its type, whether null is allowed."""

    __slots__ = ("field", "leaf", "nullable")

    def __init__(self, field: StrawberryField, leaf: GraphQLLeafType, nullable: bool) -> None:
        self.field = field
        self.leaf = leaf
        self.nullable = nullable


def _plain(field_def: GraphQLField) -> _Plain | None:
    # Strawberry marks the resolver it gives fields it reads as plain attributes (no
    # resolver, extension, permission or exception handler): the same fields here.
    field = (field_def.extensions or {}).get("strawberry-definition")
    if not isinstance(field, StrawberryField) or not getattr(
        field_def.resolve, "_is_default", False
    ):
        return None
    kind = field_def.type
    nullable = not isinstance(kind, GraphQLNonNull)
    leaf = kind.of_type if isinstance(kind, GraphQLNonNull) else kind
    if not isinstance(leaf, GraphQLScalarType | GraphQLEnumType):
        return None
    return _Plain(field, leaf, nullable)


# Per object type (weakly: a schema built again leaves its old types to the collector),
# each field's plan, or None for a field that takes the general way.
_PLANS: "weakref.WeakKeyDictionary[GraphQLObjectType, dict[str, _Plain | None]]" = (
    weakref.WeakKeyDictionary()
)


class PlainLeafExecutor(StrawberryGraphQLCoreExecutionContext):
    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        # Strawberry passes a manager of the extensions that wrap resolvers (none of ours).
        manager = self.middleware_manager
        if manager is None or not manager.middlewares:
            value = self._plain_value(parent_type, source, field_details_list[0].node)
            if value is not _ABSENT:
                return value
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def _plain_value(self, parent_type: GraphQLObjectType, source: Any, node: Any) -> Any:
        plans = _PLANS.get(parent_type)
        if plans is None:
            plans = _PLANS[parent_type] = {}
        name = node.name.value
        if name not in plans:
            field_def = parent_type.fields.get(name)
            plans[name] = None if field_def is None else _plain(field_def)
        plan = plans[name]
        if plan is None:
            return _ABSENT
        try:
            # What Strawberry's resolver for such a field calls.
            value = plan.field.get_result(source, None, [], {})
            if value is None:
                return None if plan.nullable else _ABSENT
            coerced = plan.leaf.coerce_output_value(value)
        except Exception:  # the general way raises it again, as a located field error
            return _ABSENT
        return _ABSENT if coerced is None or coerced is Undefined else coerced
