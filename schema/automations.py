"""GraphQL types and fields for scheduled imports (automations)."""

from datetime import datetime
from enum import Enum
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from models import Automation as AutomationModel
from pim.auth import Caller
from pim.db import DbSession
from resolvers import automations
from schema.context import Info, parse_id
from schema.errors import UserError, run_mutation, run_query


@strawberry.enum(description="Where an automation downloads its file from.")
class FileSourceType(Enum):
    SFTP = "sftp"
    FTP = "ftp"
    HTTP = "http"
    HTTPS = "https"


@strawberry.type(description="A remote file source. Credentials are never returned, only "
                 "whether they are set.")  # fmt: skip
class FileSource:
    type: FileSourceType
    host: str | None
    port: int | None
    path: str | None
    url: str | None
    username: str | None
    has_password: bool
    has_private_key: bool
    host_key: str | None = strawberry.field(
        description="SFTP: the only server public key accepted (OpenSSH format)."
    )


@strawberry.type(description="A recurring import pulling a file from a remote source on a "
                 "cron schedule (UTC).")  # fmt: skip
class Automation:
    id: strawberry.ID
    name: str
    supplier_code: str | None
    schedule: str = strawberry.field(description="Cron expression, e.g. `0 2 * * *`.")
    file_source: FileSource
    mapping: JSON = strawberry.field(description="File column → product field.")
    is_active: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_status: str | None = strawberry.field(description="running, started or failed.")
    last_error: str | None
    last_import_job_id: strawberry.ID | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, a: AutomationModel) -> "Automation":
        source = automations.source_view(a)
        return cls(
            id=strawberry.ID(str(a.id)),
            name=a.name,
            supplier_code=a.supplier_code,
            schedule=a.schedule,
            file_source=FileSource(
                type=FileSourceType(source["type"]),
                host=source.get("host"),
                port=source.get("port"),
                path=source.get("path"),
                url=source.get("url"),
                username=source["username"],
                has_password=source["has_password"],
                has_private_key=source["has_private_key"],
                host_key=source["host_key"],
            ),
            mapping=cast(JSON, a.mapping),
            is_active=a.is_active,
            next_run_at=a.next_run_at,
            last_run_at=a.last_run_at,
            last_status=a.last_status,
            last_error=a.last_error,
            last_import_job_id=(
                strawberry.ID(str(a.last_import_job_id)) if a.last_import_job_id else None
            ),
            created_at=a.created_at,
            updated_at=a.updated_at,
        )


@strawberry.type
class AutomationList:
    nodes: list[Automation]
    total_count: int


@strawberry.input(description="A remote file source; credentials are write-only.")
class FileSourceInput:
    type: FileSourceType
    host: str | None = strawberry.UNSET
    port: int | None = strawberry.UNSET
    path: str | None = strawberry.UNSET
    url: str | None = strawberry.UNSET
    username: str | None = strawberry.UNSET
    password: str | None = strawberry.UNSET
    private_key: str | None = strawberry.UNSET
    host_key: str | None = strawberry.UNSET


@strawberry.input
class AutomationInput:
    name: str
    schedule: str
    file_source: FileSourceInput
    supplier_code: str | None = None
    mapping: JSON | None = None
    is_active: bool = True


@strawberry.input(description="Only the fields given change; file source credentials that "
                  "are not given are kept, null clears them.")  # fmt: skip
class AutomationPatchInput:
    name: str | None = strawberry.UNSET
    schedule: str | None = strawberry.UNSET
    file_source: FileSourceInput | None = strawberry.UNSET
    supplier_code: str | None = strawberry.UNSET
    mapping: JSON | None = strawberry.UNSET
    is_active: bool | None = strawberry.UNSET


def _given(value: Any) -> dict[str, Any]:
    """An input object as the dict the resolver validates, without the fields left unset."""
    out: dict[str, Any] = {}
    for name, item in vars(value).items():
        if item is strawberry.UNSET:
            continue
        if isinstance(item, Enum):
            item = item.value
        elif isinstance(item, FileSourceInput):
            item = _given(item)
        out[name] = item
    return out


@strawberry.type
class AutomationPayload:
    automation: Automation | None
    errors: list[UserError]


@strawberry.type
class DeleteAutomationPayload:
    deleted_id: strawberry.ID | None
    errors: list[UserError]


@strawberry.type
class AutomationQuery:
    @strawberry.field(description="The account's automations, oldest first.")
    async def automations(self, info: Info, skip: int = 0, limit: int = 50) -> AutomationList:
        page = await run_query(info, automations.list_automations, skip=skip, limit=limit)
        return AutomationList(
            nodes=[Automation.from_model(a) for a in page.items], total_count=page.total
        )

    @strawberry.field(description="One automation by id.")
    async def automation(self, info: Info, id: strawberry.ID) -> Automation:
        model = await run_query(info, automations.get_automation, automation_id=parse_id(id))
        return Automation.from_model(model)


async def _mutate(
    info: Info,
    operation: Any,
    *,
    id: strawberry.ID | None = None,
    **kwargs: Any,
) -> AutomationPayload:
    async def body(session: DbSession, caller: Caller) -> AutomationModel:
        if id is not None:
            kwargs["automation_id"] = parse_id(id)
        return cast(AutomationModel, await operation(session, caller, **kwargs))

    model, errors = await run_mutation(info, body)
    automation = Automation.from_model(model) if model else None
    return AutomationPayload(automation=automation, errors=errors)


@strawberry.type
class AutomationMutation:
    @strawberry.mutation(description="Create a scheduled import.")
    async def create_automation(self, info: Info, input: AutomationInput) -> AutomationPayload:
        data = _given(input)
        data["mapping"] = data.get("mapping") or {}
        return await _mutate(
            info, automations.create_automation, data=data, settings=info.context.runtime.settings
        )

    @strawberry.mutation(description="Change an automation; a new schedule takes effect now.")
    async def update_automation(
        self, info: Info, id: strawberry.ID, input: AutomationPatchInput
    ) -> AutomationPayload:
        return await _mutate(
            info,
            automations.update_automation,
            id=id,
            changes=_given(input),
            settings=info.context.runtime.settings,
        )

    @strawberry.mutation(description="Queue a run now, outside the schedule.")
    async def run_automation(self, info: Info, id: strawberry.ID) -> AutomationPayload:
        return await _mutate(info, automations.run_automation_now, id=id)

    @strawberry.mutation(description="Delete an automation; its past import jobs stay.")
    async def delete_automation(self, info: Info, id: strawberry.ID) -> DeleteAutomationPayload:
        deleted, errors = await run_mutation(
            info,
            lambda s, caller: automations.delete_automation(s, caller, automation_id=parse_id(id)),
        )
        return DeleteAutomationPayload(
            deleted_id=strawberry.ID(str(deleted)) if deleted else None, errors=errors
        )
