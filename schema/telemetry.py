"""Each GraphQL operation's name in its request's log line, and its count by outcome (and
its cost, when the cost analysis put one in the request's log scope)."""

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from pim import logs, metrics

COST_FIELD = "graphql_cost"


def note_cost(cost: float) -> None:
    """The cost analysis calls this with the cost it computed for the current operation."""
    logs.bind(**{COST_FIELD: cost})


class OperationTelemetry(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context
        name = context.operation_name
        logs.bind(graphql_operation=name or "anonymous")
        result = context.result
        errors = getattr(result, "errors", None) if result is not None else None
        outcome = "error" if result is None or errors else "ok"
        cost = logs.current().get(COST_FIELD)
        metrics.observe_graphql(name, outcome, cost if isinstance(cost, int | float) else None)
