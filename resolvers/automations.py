"""Scheduled imports ("automations"): a remote file fetched on a cron schedule and imported.

The CRUD operations serve both surfaces. The scheduler and the run job use the
system functions at the bottom (`enqueue_due_runs`, `start_run`, `finish_run`),
which act for the automation's own account. A fire time is claimed by one
conditional UPDATE, so a run starts once however many schedulers saw it due.
"""

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any, Literal, cast
from urllib.parse import urlsplit

from croniter import CroniterBadDateError, croniter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Account, Automation
from pim import outbound
from pim.auth import Caller
from pim.crypto import Cipher, DecryptionFailed, cipher_for
from pim.ids import uuid7
from pim.jobs import defer
from pim.outbound import OutboundBlocked, OutboundPolicy
from pim.remote_files import RemoteSource, check_private_key, check_public_key
from pim.settings import Settings
from pim.timeutil import isoformat_z, utcnow
from resolvers import audit
from resolvers.bounds import JsonBounded, check_window
from resolvers.errors import FieldError, NotFound, ValidationFailed
from resolvers.import_files import validate_mapping
from resolvers.permissions import ALLOWED, Operation, require
from resolvers.validation import parse

MAX_PAGE_SIZE = 200
RUN_JOB = "run_automation"
SOURCE_TYPES = ("sftp", "ftp", "http", "https")
Text255 = Annotated[str, Field(min_length=1, max_length=255)]
Stripped255 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


class FileSourceIn(BaseModel):
    # Not stripped as a whole: a password or a key is taken exactly as given.
    model_config = ConfigDict(extra="ignore")

    type: Literal["sftp", "ftp", "http", "https"]
    host: Stripped255 | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    username: Stripped255 | None = None
    path: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
        | None
    ) = None
    url: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
        | None
    ) = None
    password: Annotated[str, Field(max_length=1000)] | None = None
    private_key: Annotated[str, Field(max_length=20000)] | None = None
    host_key: Annotated[str, Field(max_length=20000)] | None = None


class AutomationIn(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    name: Text255
    supplier_code: Annotated[str, Field(max_length=64)] | None = None
    schedule: Annotated[str, Field(min_length=1, max_length=120)]
    file_source: FileSourceIn
    mapping: Annotated[dict[str, str], JsonBounded] = Field(default_factory=dict)
    is_active: bool = True


class AutomationPatch(BaseModel):
    """PATCH: only the fields given change. `file_source` keys given replace the stored
    ones; credentials not given are kept (clients cannot read them back), null clears."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    name: Text255 | None = None
    supplier_code: Annotated[str, Field(max_length=64)] | None = None
    schedule: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    file_source: dict[str, Any] | None = None
    mapping: Annotated[dict[str, str], JsonBounded] | None = None
    is_active: bool | None = None


@dataclass(frozen=True, slots=True)
class AutomationPage:
    items: list[Automation]
    total: int


# ---- rules -------------------------------------------------------------------------


def next_fire(schedule: str, after: datetime) -> datetime:
    """The first time strictly after `after` that the cron expression matches (UTC)."""
    fire: datetime = croniter(schedule, after).get_next(datetime)
    return fire


def _schedule_errors(schedule: str) -> list[FieldError]:
    fields = schedule.split()
    # Five fields (minute precision) or an @alias: a seconds field would fire every second.
    if not (len(fields) == 5 or (len(fields) == 1 and schedule.startswith("@"))):
        return [FieldError("schedule", "expression cron à 5 champs attendue (ex. 0 2 * * *)")]
    if not croniter.is_valid(schedule) or schedule == "@reboot":
        return [FieldError("schedule", f"expression cron invalide : {schedule}")]
    try:
        next_fire(schedule, utcnow())
    except CroniterBadDateError:  # parses, but names a day no month has (0 0 30 2 *)
        return [FieldError("schedule", f"expression cron qui ne se déclenche jamais : {schedule}")]
    return []


def _source_errors(source: FileSourceIn, policy: OutboundPolicy) -> list[FieldError]:
    errors: list[FieldError] = []
    host = source.host
    if source.type in ("sftp", "ftp"):
        if not source.host:
            errors.append(FieldError("file_source.host", "champ obligatoire", "missing"))
        if not source.path:
            errors.append(FieldError("file_source.path", "champ obligatoire", "missing"))
    else:
        parts = urlsplit(source.url or "")
        host = parts.hostname
        allowed = ("https",) if source.type == "https" else ("http", "https")
        if not source.url:
            errors.append(FieldError("file_source.url", "champ obligatoire", "missing"))
        elif parts.scheme not in allowed or not host:
            wanted = " ou ".join(f"{s}://" for s in allowed)
            errors.append(FieldError("file_source.url", f"URL absolue {wanted} attendue"))
    if source.private_key is not None and source.type != "sftp":
        errors.append(FieldError("file_source.private_key", "réservé aux sources sftp"))
    elif source.private_key and not check_private_key(source.private_key):
        errors.append(FieldError("file_source.private_key", "clé privée illisible"))
    if source.host_key and not check_public_key(source.host_key):
        errors.append(FieldError("file_source.host_key", "clé publique OpenSSH illisible"))
    if host:
        # Names are checked at fetch time, against what they resolve to then.
        try:
            outbound.check_literal(host, policy)
        except OutboundBlocked as exc:
            field = "file_source.host" if source.type in ("sftp", "ftp") else "file_source.url"
            errors.append(FieldError(field, str(exc), "forbidden"))
    return errors


def _canonical(source: FileSourceIn) -> FileSourceIn:
    """The source with its host in the form it is connected to (2130706433 → 127.0.0.1)."""
    if source.host:
        return source.model_copy(update={"host": outbound.canonical_host(source.host)})
    if source.url:
        return source.model_copy(update={"url": outbound.canonical_url(source.url)})
    return source


def _apply_source(automation: Automation, source: FileSourceIn, cipher: Cipher) -> None:
    remote = source.type in ("sftp", "ftp")
    automation.source_type = source.type
    automation.source_host = source.host if remote else None
    automation.source_port = source.port if remote else None
    automation.source_path = source.path if remote else None
    automation.source_url = None if remote else source.url
    automation.source_username = source.username
    automation.host_key = source.host_key if source.type == "sftp" else None
    automation.password_encrypted = cipher.encrypt(source.password) if source.password else None
    automation.private_key_encrypted = (
        cipher.encrypt(source.private_key) if source.private_key else None
    )


def _reschedule(automation: Automation) -> None:
    automation.next_run_at = (
        next_fire(automation.schedule, utcnow()) if automation.is_active else None
    )


def source_view(automation: Automation) -> dict[str, Any]:
    """The file source as clients see it: which credentials are set, never their values."""
    view: dict[str, Any] = {"type": automation.source_type}
    if automation.source_type in ("sftp", "ftp"):
        view |= {
            "host": automation.source_host,
            "port": automation.source_port,
            "path": automation.source_path,
        }
    else:
        view["url"] = automation.source_url
    view |= {
        "username": automation.source_username,
        "has_password": automation.password_encrypted is not None,
        "has_private_key": automation.private_key_encrypted is not None,
        "host_key": automation.host_key,
    }
    return view


def _stored_source(automation: Automation, cipher: Cipher | None) -> dict[str, Any]:
    """The stored source as input, credentials decrypted (left out without a cipher)."""
    view = source_view(automation)
    for flag in ("has_password", "has_private_key"):
        view.pop(flag)
    if cipher is not None:
        if automation.password_encrypted:
            view["password"] = cipher.decrypt(automation.password_encrypted)
        if automation.private_key_encrypted:
            view["private_key"] = cipher.decrypt(automation.private_key_encrypted)
    return {k: v for k, v in view.items() if v is not None}


# ---- operations --------------------------------------------------------------------


async def create_automation(
    session: AsyncSession,
    caller: Caller,
    *,
    data: dict[str, Any],
    settings: Settings,
) -> Automation:
    require(caller, Operation.IMPORTS_WRITE)
    parsed, errors = parse(AutomationIn, data)
    if parsed is None:
        raise ValidationFailed.of(errors)
    errors = (
        _schedule_errors(parsed.schedule)
        + _source_errors(parsed.file_source, OutboundPolicy.from_settings(settings))
        + validate_mapping(parsed.mapping)
    )
    if errors:
        raise ValidationFailed.of(errors)
    automation = Automation(
        id=uuid7(),
        account_id=caller.account_id,
        name=parsed.name,
        supplier_code=parsed.supplier_code or None,
        schedule=parsed.schedule,
        mapping=parsed.mapping,
        is_active=parsed.is_active,
    )
    _apply_source(automation, _canonical(parsed.file_source), cipher_for(settings))
    _reschedule(automation)
    session.add(automation)
    await session.flush()
    audit.record(session, caller, "automation.created", automation, parsed.model_fields_set)
    return automation


async def list_automations(
    session: AsyncSession, caller: Caller, *, skip: int = 0, limit: int = 50
) -> AutomationPage:
    require(caller, Operation.IMPORTS_READ)
    check_window(limit, skip, MAX_PAGE_SIZE)
    scoped = select(Automation).where(Automation.account_id == caller.account_id)
    total = await session.scalar(select(func.count()).select_from(scoped.subquery())) or 0
    rows = await session.scalars(
        scoped.order_by(Automation.created_at, Automation.id).offset(skip).limit(limit)
    )
    return AutomationPage(items=list(rows), total=total)


async def _owned(session: AsyncSession, caller: Caller, automation_id: uuid.UUID) -> Automation:
    automation = await session.scalar(
        select(Automation).where(
            Automation.account_id == caller.account_id, Automation.id == automation_id
        )
    )
    if automation is None:
        raise NotFound(message="Automatisation introuvable.", field="id")
    return automation


async def get_automation(
    session: AsyncSession, caller: Caller, *, automation_id: uuid.UUID
) -> Automation:
    require(caller, Operation.IMPORTS_READ)
    return await _owned(session, caller, automation_id)


async def update_automation(
    session: AsyncSession,
    caller: Caller,
    *,
    automation_id: uuid.UUID,
    changes: dict[str, Any],
    settings: Settings,
) -> Automation:
    require(caller, Operation.IMPORTS_WRITE)
    cipher = cipher_for(settings)
    patch, errors = parse(AutomationPatch, changes)
    if patch is None:
        raise ValidationFailed.of(errors)
    given = patch.model_fields_set
    for name in ("name", "schedule", "is_active", "mapping", "file_source"):
        if name in given and getattr(patch, name) is None:
            errors.append(FieldError(name, "ne peut pas être null"))
    if errors:
        raise ValidationFailed.of(errors)
    automation = await _owned(session, caller, automation_id)
    source: FileSourceIn | None = None
    if patch.file_source is not None:
        try:
            stored = _stored_source(automation, cipher)
        except DecryptionFailed:  # a retired key: the client must give the credentials again
            stored = _stored_source(automation, None)
        # Another type of source starts afresh: an SFTP key means nothing to an HTTP URL.
        if patch.file_source.get("type", automation.source_type) != automation.source_type:
            stored = {}
        # Another server has another host key: the one held (or trusted on first use)
        # goes, unless the patch gives one.
        if any(k in patch.file_source and patch.file_source[k] != stored.get(k)
               for k in ("host", "port")):  # fmt: skip
            stored.pop("host_key", None)
        source, errors = parse(FileSourceIn, stored | patch.file_source)
        errors = [FieldError(f"file_source.{e.field}", e.message, e.code) for e in errors]
    if patch.schedule is not None:
        errors += _schedule_errors(patch.schedule)
    if patch.mapping is not None:
        errors += validate_mapping(patch.mapping)
    if source is not None:
        errors += _source_errors(source, OutboundPolicy.from_settings(settings))
    if errors:
        raise ValidationFailed.of(errors)
    if source is not None:
        _apply_source(automation, _canonical(source), cipher)
    if patch.name is not None:
        automation.name = patch.name
    if "supplier_code" in given:
        automation.supplier_code = patch.supplier_code or None
    if patch.mapping is not None:
        automation.mapping = patch.mapping
    if patch.schedule is not None or patch.is_active is not None:
        automation.schedule = patch.schedule or automation.schedule
        automation.is_active = automation.is_active if patch.is_active is None else patch.is_active
        _reschedule(automation)
    automation.updated_at = utcnow()
    await session.flush()
    audit.record(session, caller, "automation.updated", automation, given)
    return automation


async def delete_automation(
    session: AsyncSession, caller: Caller, *, automation_id: uuid.UUID
) -> uuid.UUID:
    require(caller, Operation.IMPORTS_WRITE)
    automation = await _owned(session, caller, automation_id)
    audit.record(session, caller, "automation.deleted", automation)
    await session.delete(automation)
    await session.flush()
    return automation_id


async def run_automation_now(
    session: AsyncSession, caller: Caller, *, automation_id: uuid.UUID
) -> Automation:
    """Queue a run outside the schedule (an inactive automation can be run this way too)."""
    require(caller, Operation.IMPORTS_WRITE)
    automation = await _owned(session, caller, automation_id)
    job_id = f"automation:{automation.id}:now:{uuid7().hex}"
    defer(session, RUN_JOB, str(automation.id), None, job_id=job_id)
    return automation


# ---- scheduler and run job (system: act for the automation's own account) -----------


def run_job_id(automation_id: uuid.UUID, fire_at: datetime) -> str:
    """One id per automation and fire time: every scheduler that sees it due agrees."""
    return f"automation:{automation_id}:{fire_at:%Y%m%dT%H%MZ}"


async def enqueue_due_runs(session: AsyncSession, *, now: datetime) -> int:
    """Queue a run for every automation whose next fire time has come."""
    due = await session.execute(
        select(Automation.id, Automation.next_run_at)
        .where(Automation.is_active.is_(True), Automation.next_run_at <= now)
        .order_by(Automation.next_run_at)
        .limit(1000)
    )
    count = 0
    for automation_id, next_run_at in due:
        fire_at = cast(datetime, next_run_at)  # never null: the WHERE clause compared it
        defer(
            session, RUN_JOB, str(automation_id), isoformat_z(fire_at),
            job_id=run_job_id(automation_id, fire_at),
        )  # fmt: skip
        count += 1
    return count


@dataclass(frozen=True, slots=True)
class RunPlan:
    automation_id: uuid.UUID
    fire_at: datetime | None
    caller: Caller
    source: RemoteSource | None
    supplier_code: str | None
    mapping: dict[str, str]
    error: str | None = None


async def start_run(
    session: AsyncSession,
    *,
    automation_id: uuid.UUID,
    fire_at: datetime | None,
    settings: Settings,
    retry: bool = False,
) -> RunPlan | None:
    """Claim the run and return what it needs, or None when it is not (or no longer) due.

    A scheduled run claims its fire time by moving `next_run_at` on in one conditional
    UPDATE: of two runners of the same fire time only one matches. A `retry` of the run
    (the queue re-running a job whose worker died) may take over its own unfinished claim.
    """
    row = (
        await session.execute(
            select(Automation, Account)
            .join(Account, Account.id == Automation.account_id)
            .where(Automation.id == automation_id)
        )
    ).first()
    if row is None:
        return None
    automation, account = row
    now = utcnow()
    claim = update(Automation).where(Automation.id == automation_id)
    if fire_at is not None:
        mine = Automation.next_run_at == fire_at
        if retry:
            unfinished = and_(
                Automation.last_fire_at == fire_at, Automation.last_status == "running"
            )
            mine = or_(mine, unfinished)
        claim = claim.where(Automation.is_active.is_(True), mine).values(
            next_run_at=next_fire(automation.schedule, max(now, fire_at))
        )
    result = await session.execute(
        claim.values(last_run_at=now, last_fire_at=fire_at, last_status="running", last_error=None)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    caller = Caller(
        account_id=account.id,
        account_name=account.name,
        key_id=automation.id,
        key_name=f"automation:{automation.name}",
        scopes=ALLOWED[Operation.IMPORTS_WRITE],
        strict_ean=account.strict_ean,
    )
    plan = RunPlan(
        automation_id=automation.id,
        fire_at=fire_at,
        caller=caller,
        source=None,
        supplier_code=automation.supplier_code,
        mapping=dict(automation.mapping or {}),
    )
    try:
        source = RemoteSource(**_stored_source(automation, cipher_for(settings)))
    except DecryptionFailed:
        return replace(plan, error="identifiants illisibles : ressaisissez le mot de passe")
    return replace(plan, source=source)


async def finish_run(
    session: AsyncSession,
    plan: RunPlan,
    *,
    error: str | None = None,
    import_job_id: uuid.UUID | None = None,
    first_host_key: str | None = None,
) -> None:
    """Record the run's outcome, and the SFTP host key it trusted on first use: from then
    on the server must present that key (only the first run to record one wins)."""
    await session.execute(
        update(Automation)
        .where(Automation.id == plan.automation_id)
        .values(
            last_status="failed" if error else "started",
            last_error=error,
            last_import_job_id=import_job_id,
            host_key=func.coalesce(Automation.host_key, first_host_key),
        )
        .execution_options(synchronize_session=False)
    )
