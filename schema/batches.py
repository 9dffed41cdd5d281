"""GraphQL types for the per-EAN batch updates (stock, prices): typed per-item results."""

from enum import Enum
from typing import Any

import strawberry

from resolvers.batches import BatchUpdate, EanItemResult
from schema.context import Info
from schema.errors import UserError, run_mutation


@strawberry.enum(description="What happened to one item of a stock or price batch.")
class EanItemStatus(Enum):
    OK = "ok"
    NOT_FOUND = "not_found"
    ERROR = "error"


@strawberry.type(description="The result of one stock or price batch item, in input order.")
class EanBatchItem:
    index: int
    ean: str | None
    status: EanItemStatus
    updated: bool = strawberry.field(description="The value now is the one sent.")
    changed: bool = strawberry.field(
        description="The value differed before; unchanged items write and emit nothing."
    )
    errors: list[UserError]

    @classmethod
    def from_result(cls, result: EanItemResult) -> "EanBatchItem":
        return cls(
            index=result.index,
            ean=result.ean,
            status=EanItemStatus(result.status),
            updated=result.updated,
            changed=result.changed,
            errors=[UserError.from_field_error(e) for e in result.errors],
        )


@strawberry.type(description="Counts and per-item results of a stock or price batch.")
class EanBatchPayload:
    updated: int
    not_found: int
    failed: int
    changed: int
    results: list[EanBatchItem]
    errors: list[UserError] = strawberry.field(
        description="Why the whole batch was refused (e.g. too many items)."
    )


async def run_batch(
    info: Info, update: BatchUpdate, items: list[dict[str, Any]]
) -> EanBatchPayload:
    batch, errors = await run_mutation(info, lambda s, caller: update(s, caller, items=items))
    results = batch.results if batch else []
    return EanBatchPayload(
        updated=sum(r.status == "ok" for r in results),
        not_found=sum(r.status == "not_found" for r in results),
        failed=sum(r.status == "error" for r in results),
        changed=batch.changed if batch else 0,
        results=[EanBatchItem.from_result(r) for r in results],
        errors=errors,
    )
