"""Executing plain fields without the general machinery.

A page of 50 products with 8 fields resolves 400 fields. For each, graphql-core builds
a resolve info, calls Strawberry's resolver (an attribute read), checks for arguments
and awaitables and dispatches on the return type: most of what a GraphQL page costs
beyond its REST twin. A field that is a plain attribute of a Strawberry type (no
resolver, no arguments, no field extension or permission) and returns a scalar or an
enum is read and coerced directly. Anything else, and any value that does not come
out clean (missing, null where the type forbids it, refused by the coercion), goes
the general way, which raises the error it would have raised anyway.

An object whose selection holds only plain fields is read in one pass, by a plan made
once per selection and request: plain leaves, and plain attributes holding objects (or
lists of them) whose own selections are plain, such as a connection's edges and their
nodes. Field by field, even the direct way cost as much again as the values themselves
(measured: about 450 field executions on a page of 50 products). When one value of the
pass does not come out clean, the object is executed again the general way, field by
field, which is harmless: plain fields only read attributes.

A subscription event read that way depends on nothing but its payload, the operation
and its variables: the sockets of a process watching the same job with the same
selection share one execution of each event (shared_payload, and the executor's
execute_operation). With a thousand sockets on one import, executing the event once
per socket was about a third of the API's CPU per event, every one of them computing
the same answer.
"""

import functools
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLString,
    OperationType,
    Undefined,
)
from graphql.execution import ExecutionResult
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

_ABSENT = object()

Read = Callable[[Any, str], object]


# The built-in scalars give back a value of exactly their Python type as it is.
_AS_IS: dict[GraphQLLeafType, type] = {GraphQLString: str, GraphQLID: str, GraphQLBoolean: bool}


class _Plain:
    """How to read one plain leaf field: what Strawberry's resolver for it calls (its
    default resolver, on the field's attribute name), its type, whether null is allowed."""

    __slots__ = ("as_is", "leaf", "name", "nullable", "read")

    def __init__(self, read: Read, name: str, leaf: GraphQLLeafType, nullable: bool) -> None:
        self.read = read
        self.name = name
        self.leaf = leaf
        self.nullable = nullable
        self.as_is = _AS_IS.get(leaf)

    def value(self, source: Any) -> Any:
        """The coerced value, or _ABSENT when it does not come out clean."""
        try:
            value = self.read(source, self.name)
            if value is None:
                return None if self.nullable else _ABSENT
            if type(value) is self.as_is:
                return value
            coerced = self.leaf.coerce_output_value(value)
        except Exception:  # the general way raises it again, as a located field error
            return _ABSENT
        return _ABSENT if coerced is None or coerced is Undefined else coerced


# Response names and how to read each: every field a selection asks for.
_ObjectPlan = tuple[tuple[str, "_Plain | _PlainNested"], ...]


def _object_value(plan: _ObjectPlan, source: Any) -> Any:
    results: dict[str, Any] = {}
    for response_name, field in plan:
        value = field.value(source)
        if value is _ABSENT:
            return _ABSENT
        results[response_name] = value
    return results


class _PlainNested:
    """A plain attribute holding an object, or a list of objects, of one object type
    (not abstract, without is_type_of) whose selection is plain in turn."""

    __slots__ = ("items", "name", "nullable", "plan", "read")

    def __init__(
        self, read: Read, name: str, nullable: bool, items: bool | None, plan: _ObjectPlan
    ) -> None:
        self.read = read
        self.name = name
        self.nullable = nullable
        self.items = items  # None: an object; else a list, whether its items may be null
        self.plan = plan

    def value(self, source: Any) -> Any:
        try:
            value = self.read(source, self.name)
        except Exception:
            return _ABSENT
        if value is None:
            return None if self.nullable else _ABSENT
        if self.items is None:
            return _object_value(self.plan, value)
        if type(value) is not list:  # other iterables, and what is not one, the general way
            return _ABSENT
        results: list[Any] = []
        for item in value:
            if item is None:
                if not self.items:
                    return _ABSENT
                results.append(None)
                continue
            completed = _object_value(self.plan, item)
            if completed is _ABSENT:
                return _ABSENT
            results.append(completed)
        return results


def _attribute(field_def: GraphQLField) -> StrawberryField | None:
    """Strawberry's field, if it is read as a plain attribute: Strawberry marks the
    resolver it gives such fields (no resolver, extension, permission or exception
    handler)."""
    field = (field_def.extensions or {}).get("strawberry-definition")
    if not isinstance(field, StrawberryField) or not getattr(
        field_def.resolve, "_is_default", False
    ):
        return None
    return field


def _unwrapped(kind: GraphQLOutputType) -> tuple[Any, bool]:
    """The type without its non-null wrapper, and whether null is allowed."""
    if isinstance(kind, GraphQLNonNull):
        return kind.of_type, False
    return kind, True


def _plain(field_def: GraphQLField) -> _Plain | None:
    field = _attribute(field_def)
    leaf, nullable = _unwrapped(field_def.type)
    if field is None or not isinstance(leaf, GraphQLScalarType | GraphQLEnumType):
        return None
    return _Plain(field.default_resolver, field.python_name, leaf, nullable)


# Per object type (weakly: a schema built again leaves its old types to the collector),
# each leaf field's plan, or None for a field that takes the general way.
_PLANS: "weakref.WeakKeyDictionary[GraphQLObjectType, dict[str, _Plain | None]]" = (
    weakref.WeakKeyDictionary()
)


def _plain_leaf(parent_type: GraphQLObjectType, name: str) -> _Plain | None:
    plans = _PLANS.get(parent_type)
    if plans is None:
        plans = _PLANS[parent_type] = {}
    if name not in plans:
        field_def = parent_type.fields.get(name)
        plans[name] = None if field_def is None else _plain(field_def)
    return plans[name]


P = TypeVar("P")


class _Recent:
    """The last `size` values put, by key: entries hold the objects whose ids their
    keys are made of, so that no id is reused while its entry lives."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[Hashable, tuple[Any, ...]] = OrderedDict()

    def get(self, key: Hashable) -> tuple[Any, ...] | None:
        return self.entries.get(key)

    def put(self, key: Hashable, entry: tuple[Any, ...]) -> None:
        self.entries[key] = entry
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)


# Per process: the broker hands one message object to every subscriber of its topic,
# and a few hundred recent events cover every job being watched at once.
_PAYLOADS = _Recent(256)
_EVENT_RESULTS = _Recent(1024)


# Longer variables leave an event's result unshared: a key of their size would be kept
# with each of the recent events.
_VARIABLES_KEY_MAX = 1024


def shared_payload(build: Callable[..., P], message: dict[str, Any], *args: Hashable) -> P:
    """`build(message, *args)`, made once per message object for every subscriber of
    this process, so that their executions of the event can be shared."""
    key = (id(message), build, args)
    entry = _PAYLOADS.get(key)
    if entry is None:
        entry = (message, build(message, *args))
        _PAYLOADS.put(key, entry)
    return cast(P, entry[1])


class PlainLeafExecutor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Field sets are made once per selection and request (graphql-core memoizes
        # them): each one's plan by its id, kept alive with it so the id stays its own.
        self._object_plans: dict[tuple[int, GraphQLObjectType], tuple[Any, _ObjectPlan | None]]
        self._object_plans = {}
        # A subscription event's executor: whether what it read so far was only its
        # payload (its result can then serve every socket of the same operation).
        self._event_shareable: bool | None = None

    @functools.cached_property
    def _variables_key(self) -> str | None:
        """The variables' coerced values as text, made once per operation (each event's
        executor is a copy); None when too long to be kept in an event's key."""
        text = repr(sorted(self.variable_values.coerced.items()))
        return text if len(text) <= _VARIABLES_KEY_MAX else None

    def build_per_event_executor(self, payload: Any) -> "PlainLeafExecutor":
        shareable = self._plain_allowed() and self._variables_key is not None
        executor = cast("PlainLeafExecutor", super().build_per_event_executor(payload))  # a copy
        # Each event of a subscription collects its fields anew: their plans go with it.
        executor._object_plans = {}
        executor._event_shareable = shareable
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        if not self._event_shareable:
            return super().execute_operation(serially)
        # The operation's document is the parser cache's, the same object for every
        # socket that sent the same text.
        key = (id(self.root_value), id(self.operation), self._variables_key)
        entry = _EVENT_RESULTS.get(key)
        if entry is not None:
            return entry[2]
        result = super().execute_operation(serially)
        if self._event_shareable and isinstance(result, ExecutionResult) and not result.errors:
            _EVENT_RESULTS.put(key, (self.root_value, self.operation, result))
        return result

    def _plain_allowed(self) -> bool:
        # Strawberry passes a manager of the extensions that wrap resolvers (none of ours).
        manager = self.middleware_manager
        return manager is None or not manager.middlewares

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Any,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        plan = self._object_plan(parent_type, grouped_field_set)
        if plan is not None:
            results = _object_value(plan, source_value)
            if results is not _ABSENT:
                return results
        if self._event_shareable and not self._subscription_root(parent_type):
            self._event_shareable = False  # the general way may read more than the payload
        return super().execute_fields(
            parent_type, source_value, path, grouped_field_set, position_context
        )

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        name = field_details_list[0].node.name.value
        if self._plain_allowed():
            field = _plain_leaf(parent_type, name)
            value = _ABSENT if field is None else field.value(source)
            if value is not _ABSENT:
                return value
        if self._event_shareable and not self._event_root(parent_type, name):
            self._event_shareable = False
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def _subscription_root(self, parent_type: GraphQLObjectType) -> bool:
        return parent_type is self.schema.get_root_type(OperationType.SUBSCRIPTION)

    def _event_root(self, parent_type: GraphQLObjectType, name: str) -> bool:
        """A subscription's root field, which Strawberry resolves to the event's payload
        itself, of an object type whose selection the plans then read."""
        if not self._subscription_root(parent_type):
            return False
        field_def = parent_type.fields.get(name)
        return (
            field_def is not None
            and field_def.subscribe is not None
            and isinstance(_unwrapped(field_def.type)[0], GraphQLObjectType)
        )

    def _object_plan(
        self, parent_type: GraphQLObjectType, grouped_field_set: Any
    ) -> _ObjectPlan | None:
        key = (id(grouped_field_set), parent_type)
        entry = self._object_plans.get(key)
        if entry is None:
            plan = self._plan_of(parent_type, grouped_field_set)
            entry = self._object_plans[key] = (grouped_field_set, plan)
        return entry[1]

    def _plan_of(
        self, parent_type: GraphQLObjectType, grouped_field_set: Any
    ) -> _ObjectPlan | None:
        """The plan of a selection whose every field is plain, else None."""
        if not self._plain_allowed():
            return None
        plan: list[tuple[str, _Plain | _PlainNested]] = []
        for response_name, field_details_list in grouped_field_set.items():
            name = field_details_list[0].node.name.value
            field = _plain_leaf(parent_type, name) or self._plain_nested(
                parent_type.fields.get(name), field_details_list
            )
            if field is None:
                return None
            plan.append((response_name, field))
        return tuple(plan)

    def _plain_nested(
        self, field_def: GraphQLField | None, field_details_list: Any
    ) -> _PlainNested | None:
        field = None if field_def is None else _attribute(field_def)
        if field_def is None or field is None or field_def.args:
            return None
        if any(details.node.directives for details in field_details_list):
            return None  # @stream and company: what incremental delivery decides
        kind, nullable = _unwrapped(field_def.type)
        items: bool | None = None
        if isinstance(kind, GraphQLList):
            kind, items = _unwrapped(kind.of_type)
        if not isinstance(kind, GraphQLObjectType) or kind.is_type_of is not None:
            return None
        collected = self.collect_subfields(kind, field_details_list)
        if collected.new_defer_usages or collected.forbidden_directive_instances:
            return None
        plan = self._object_plan(kind, collected.grouped_field_set)
        if plan is None:
            return None
        return _PlainNested(field.default_resolver, field.python_name, nullable, items, plan)
