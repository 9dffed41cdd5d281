"""What a query selects below the field being resolved."""

from collections.abc import Iterable, Iterator

from strawberry.types.nodes import SelectedField, Selection

from schema.context import Info


def selected_below(info: Info, *path: str) -> set[str] | None:
    """The names of the fields the query selects at `path` below the resolving field
    (fragments flattened, aliases resolved); None if nothing is selected there."""
    # selected_fields holds the resolving field itself.
    level: list[Selection] = [
        s for field in _fields(info.selected_fields) for s in field.selections
    ]
    for name in path:
        level = [s for field in _fields(level) if field.name == name for s in field.selections]
    names = {field.name for field in _fields(level)}
    return names or None


def _fields(selections: Iterable[Selection]) -> Iterator[SelectedField]:
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        else:  # a fragment, inline or spread: its fields are selected here too
            yield from _fields(selection.selections)
