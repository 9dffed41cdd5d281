"""Plain leaf fields read directly give what the general execution gives, errors included."""

from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.extensions import ParserCache
from strawberry.scalars import JSON

from schema.execution import PlainLeafExecutor


@strawberry.enum
class Colour(Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Thing:
    id: strawberry.ID
    name: str
    colour: Colour
    seen_at: datetime
    size: float | None
    specs: JSON | None
    count: int

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()


def _things() -> list[Thing | None]:
    when = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    return [
        Thing(id=strawberry.ID("1"), name="écran", colour=Colour.RED, seen_at=when, size=1.5,
              specs={"hdmi": 3}, count=2),
        # A null where the schema forbids it; a value no Int can hold.
        Thing(id=strawberry.ID("2"), name=None, colour=Colour.BLUE, seen_at=when, size=None,  # type: ignore[arg-type]
              specs=None, count=2),
        Thing(id=strawberry.ID("3"), name="b", colour=Colour.BLUE, seen_at=when, size=None,
              specs=None, count=2**40),
    ]  # fmt: skip


@strawberry.type
class Query:
    @strawberry.field
    def things(self) -> list[Thing | None]:
        return _things()


QUERY = """{ things { __typename id name colour seenAt size specs count shout
  ... on Thing { alias: name } } }"""


def _run(executor: Any) -> Any:
    schema = strawberry.Schema(query=Query, execution_context_class=executor)
    result = schema.execute_sync(QUERY)
    errors = sorted((e.message, tuple(e.path or ())) for e in result.errors or [])
    return result.data, errors


def test_plain_fields_read_directly_answer_as_the_general_execution() -> None:
    fast = _run(PlainLeafExecutor)
    assert fast == _run(None)
    data, errors = fast
    assert data["things"][0] == {
        "__typename": "Thing", "id": "1", "name": "écran", "colour": "RED",
        "seenAt": "2026-12-02T15:00:00+00:00", "size": 1.5, "specs": {"hdmi": 3}, "count": 2,
        "shout": "ÉCRAN", "alias": "écran",
    }  # fmt: skip
    assert data["things"][1:] == [None, None]  # an error nulls its item, as the spec says
    assert [path for _, path in errors] == [("things", 1, "name"), ("things", 2, "count")]


def test_plain_fields_skip_the_resolve_info() -> None:
    built: list[str] = []

    class Counting(PlainLeafExecutor):
        def build_resolve_info(self, field_def: Any, field_nodes: Any, *args: Any) -> Any:
            built.append(field_nodes[0].name.value)
            return super().build_resolve_info(field_def, field_nodes, *args)

    schema = strawberry.Schema(query=Query, execution_context_class=Counting)
    assert schema.execute_sync("{ things { id name colour size } }").data is not None
    # The list itself, and the null name of the second thing, which errs the general way.
    assert built == ["things", "name"]


@strawberry.type
class Edge:
    node: Thing


@strawberry.type
class Page:
    edges: list[Edge]
    total: int


@strawberry.type
class PagedQuery:
    @strawberry.field
    def page(self) -> Page:
        return Page(edges=[Edge(node=t) for t in _things() if t is not None], total=3)


PAGE_QUERY = "{ page { total edges { node { id name colour size } } } }"


def test_a_plain_selection_is_read_in_one_pass_and_errs_the_general_way() -> None:
    executed: list[str] = []

    class Counting(PlainLeafExecutor):
        def execute_field(self, parent_type: Any, source: Any, details: Any, *args: Any) -> Any:
            executed.append(details[0].node.name.value)
            return super().execute_field(parent_type, source, details, *args)

    fast = strawberry.Schema(query=PagedQuery, execution_context_class=Counting)
    general = strawberry.Schema(query=PagedQuery)
    result = fast.execute_sync(PAGE_QUERY)
    assert result.data == general.execute_sync(PAGE_QUERY).data
    assert [(e.message, e.path) for e in result.errors or []] == [
        (e.message, e.path) for e in general.execute_sync(PAGE_QUERY).errors or []
    ]
    # The second thing's null name makes the page go the general way, which finds it;
    # `page` itself has a resolver: the only field executed on a clean page.
    assert result.errors and result.errors[0].path == ["page", "edges", 1, "node", "name"]
    executed.clear()
    clean = fast.execute_sync("{ page { total edges { node { id colour size } } } }")
    assert clean.errors is None and len(clean.data["page"]["edges"]) == 3
    assert executed == ["page"]


@strawberry.type
class Tick:
    n: int


@strawberry.type
class TickSubscription:
    @strawberry.subscription
    async def ticks(self) -> AsyncGenerator[Tick, None]:
        for n in range(5):
            yield Tick(n=n)


async def test_a_subscription_keeps_one_plan_per_selection_whatever_its_events() -> None:
    executors: list[PlainLeafExecutor] = []

    class Keeping(PlainLeafExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            executors.append(self)

    schema = strawberry.Schema(
        query=Query, subscription=TickSubscription, execution_context_class=Keeping
    )
    stream = await schema.subscribe("subscription { ticks { n } }")
    assert not isinstance(stream, strawberry.types.ExecutionResult)
    assert [result.data async for result in stream] == [{"ticks": {"n": n}} for n in range(5)]
    # Each event collects its fields anew: their plans are not kept past the event.
    assert [len(e._object_plans) for e in executors] == [0]


# The same payload objects for every subscriber, as the broker hands one message to all.
EVENTS = [Thing(id=strawberry.ID(str(n)), name=f"t{n}", colour=Colour.RED,
                seen_at=datetime(2026, 12, 7, tzinfo=UTC), size=None, specs=None, count=n)
          for n in range(3)]  # fmt: skip
BROKEN = Thing(id=strawberry.ID("9"), name=None, colour=Colour.RED,  # type: ignore[arg-type]
               seen_at=datetime(2026, 12, 7, tzinfo=UTC), size=None, specs=None, count=9)  # fmt: skip


@strawberry.type
class ThingSubscription:
    @strawberry.subscription
    async def things(self, job: str) -> AsyncGenerator[Thing, None]:
        for thing in [*EVENTS, BROKEN]:
            yield thing


def _counting_schema(executed: list[str]) -> strawberry.Schema:
    class Counting(PlainLeafExecutor):
        def execute_field(self, parent_type: Any, source: Any, details: Any, *args: Any) -> Any:
            executed.append(details[0].node.name.value)
            return super().execute_field(parent_type, source, details, *args)

    # As the API's schema: one parsed document per distinct text.
    return strawberry.Schema(
        query=Query, subscription=ThingSubscription, execution_context_class=Counting,
        extensions=[lambda: ParserCache(maxsize=8)],
    )  # fmt: skip


async def _events(schema: strawberry.Schema, query: str, **variables: Any) -> list[Any]:
    stream = await schema.subscribe(query, variable_values=variables)
    assert not isinstance(stream, strawberry.types.ExecutionResult)
    return [(result.data, [e.message for e in result.errors or []]) async for result in stream]


async def test_subscribers_with_one_selection_share_each_event_s_execution() -> None:
    executed: list[str] = []
    schema = _counting_schema(executed)
    query = "subscription ($job: String!) { things(job: $job) { id name count } }"
    first = await _events(schema, query, job="a")
    assert [data for data, _ in first[:3]] == [
        {"things": {"id": str(n), "name": f"t{n}", "count": n}} for n in range(3)
    ]
    assert first[3][1] == ["Cannot return null for non-nullable field Thing.name."]
    executed.clear()
    # Same text and variables, same payloads: only the event that erred runs again.
    assert await _events(schema, query, job="a") == first
    assert executed == ["things", "id", "name"]
    executed.clear()
    # Other variables, another selection, or a field with a resolver: executed anew.
    assert await _events(schema, query, job="b") == first
    assert executed.count("things") == 4
    general = strawberry.Schema(query=Query, subscription=ThingSubscription)
    for other in (
        'subscription { things(job: "a") { name count } }',
        'subscription { things(job: "a") { id shout } }',
        'subscription { things(job: "a") { __typename id } }',
    ):
        assert await _events(schema, other) == await _events(general, other)
    executed.clear()
    await _events(schema, 'subscription { things(job: "a") { id shout } }')
    assert executed.count("shout") == 4  # every event: a resolver may read the context


async def test_a_directive_s_variable_keeps_events_apart() -> None:
    schema = _counting_schema([])
    query = 'subscription ($on: Boolean!) { things(job: "a") { id name @include(if: $on) } }'
    shown = await _events(schema, query, on=True)
    hidden = await _events(schema, query, on=False)
    assert shown[0][0] == {"things": {"id": "0", "name": "t0"}}
    assert hidden[0][0] == {"things": {"id": "0"}}


async def test_long_variables_leave_events_unshared() -> None:
    executed: list[str] = []
    schema = _counting_schema(executed)
    query = "subscription ($job: String!) { things(job: $job) { id } }"
    first = await _events(schema, query, job="j" * 2000)
    executed.clear()
    # A key of their size would be kept with each recent event: executed per subscriber.
    assert await _events(schema, query, job="j" * 2000) == first
    assert executed.count("things") == 4
