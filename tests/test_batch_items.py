"""Batch items checked by a strict twin of their model (batches.validate_items `plain`)
get the results, values and messages the model alone gives them, whatever they hold."""

from collections.abc import Callable, Hashable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter

from resolvers import batches, prices, stock
from resolvers.errors import FieldError

# EANs the twin takes (text), among them what the model strips or reads as digits.
TEXT_EANS = st.one_of(
    st.sampled_from(["3760000000017", "12345670", "376000000001", "37600000000178"]),
    st.sampled_from(["12345670\n", " 3760000000017", "\x1c12345670", "٣٧٦٠٠٠٠٠٠٠٠١٧", "1" * 40]),
    st.text(alphabet="0123456789 \n\t\x1c\u00a0٣x\x00", max_size=16),
)
EANS = st.one_of(TEXT_EANS, st.integers(0, 10**15), st.floats(), st.none())
# Values the twin takes, then any.
GOOD_NUMBERS = st.one_of(
    st.integers(0, 300), st.floats(0, 999_999.99), st.sampled_from([1.005, 3.456, 999_999.99])
)
NUMBERS = st.one_of(
    GOOD_NUMBERS,
    st.integers(min_value=-2, max_value=2**32),
    st.floats(min_value=-1, max_value=1e7),
    st.sampled_from([2.0, 999_999.994, True, "3", None, float("nan"), float("inf"), 2**40]),
)
CODES = st.one_of(st.none(), st.sampled_from(["SUP001", " SUP001 ", "", "x" * 70]))


def items(
    good: dict[str, st.SearchStrategy[Any]], any_: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[list[Any]]:
    """Batches the twin mostly takes whole, and some holding an item it refuses."""
    taken = st.fixed_dictionaries({"ean": TEXT_EANS}, optional=good)
    other = st.one_of(st.fixed_dictionaries({"ean": EANS}, optional=any_), st.just("x"))
    return st.one_of(
        st.lists(taken, max_size=6),
        st.lists(st.one_of(taken, taken, taken, other), max_size=6),
    )


def decided(
    model: type[BaseModel],
    raw: list[Any],
    key: Callable[[batches.Item], Hashable],
    check: Callable[[batches.Item], FieldError | None],
    plain: TypeAdapter[list[Any]] | None,
) -> tuple[list[Any], list[Any]]:
    results, valid = batches.validate_items(model, raw, key=key, check=check, plain=plain)
    return (
        [(r.index, r.ean, r.status, [(str(e), e.code) for e in r.errors]) for r in results],
        # An optional field the twin was not sent is absent rather than None.
        [(v.result.index, {k: repr(x) for k, x in v.item.items() if x is not None}) for v in valid],
    )


SETTINGS = settings(max_examples=300, derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck))  # fmt: skip


@SETTINGS
@given(
    items(
        {"stock": st.integers(0, 300), "supplier_code": CODES},
        {"stock": NUMBERS, "supplier_code": CODES},
    )
)
def test_stock_items_get_the_same_results_with_the_strict_twin(raw: list[Any]) -> None:
    def key(i: batches.Item) -> Hashable:
        return (i["ean"], i.get("supplier_code") or "")

    def check(_i: batches.Item) -> None:
        return None

    twin = decided(stock.StockItem, raw, key, check, stock.PLAIN_ITEMS)
    assert twin == decided(stock.StockItem, raw, key, check, None)


@SETTINGS
@given(
    items(
        {"price": GOOD_NUMBERS, "cost_price": st.one_of(st.none(), GOOD_NUMBERS)},
        {"price": NUMBERS, "cost_price": NUMBERS},
    )
)
def test_price_items_get_the_same_results_with_the_strict_twin(raw: list[Any]) -> None:
    def key(i: batches.Item) -> Hashable:
        return i["ean"]

    check = prices._needs_a_price
    twin = decided(prices.PriceItem, raw, key, check, prices.PLAIN_ITEMS)
    assert twin == decided(prices.PriceItem, raw, key, check, None)
