"""The `pim` command: serve, worker, migrate, keys, graphql, demo, retention."""

import argparse
import asyncio
import os
import sys
import tempfile
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import orjson

from pim import health, logs, metrics, tracing
from pim.auth import SCOPES
from pim.migrate import upgrade
from pim.runtime import Runtime
from pim.settings import Settings, get_settings
from pim.timeutil import utcnow
from resolvers import keys, persisted_queries
from resolvers.errors import DomainError, ValidationFailed
from service.runtime import build_runtime

ADMIN_SCOPES = list(SCOPES)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="pim", description="Pixee PIM API")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the API (GraphQL and REST)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--no-migrate", action="store_true", help="skip migrations at start")
    serve.add_argument("--no-access-log", action="store_true", help="do not log every request")

    worker = commands.add_parser("worker", help="run the background job worker (arq on Redis)")
    worker.add_argument(
        "--queue",
        default="default",
        help="queue to serve: 'default' (imports, demo…) or 'connectors' (platform syncs)",
    )
    worker.add_argument(
        "--check",
        action="store_true",
        help="exit 0 if a worker of this queue runs and its database and Redis are ready "
        "(a container HEALTHCHECK), else 1; prints each check",
    )
    commands.add_parser("migrate", help="apply database migrations")

    key_cmd = commands.add_parser("keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True
    )
    create = key_cmd.add_parser("create", help="create a key (its account too if needed)")
    create.add_argument("--account", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", default=",".join(ADMIN_SCOPES), help="comma-separated")
    create.add_argument("--rate-limit", type=int, default=None, help="requests per minute")
    listing = key_cmd.add_parser("list", help="list keys (never their secret)")
    listing.add_argument("--account", default=None)
    revoke = key_cmd.add_parser("revoke", help="revoke a key by id or displayed prefix")
    revoke.add_argument("key", help="key id (UUID) or prefix as shown by `pim keys list`")
    rotate = key_cmd.add_parser(
        "rotate", help="a new key like this one; the old one works for --grace-hours more"
    )
    rotate.add_argument("key", help="key id (UUID) or prefix as shown by `pim keys list`")
    rotate.add_argument("--grace-hours", type=float, default=24, help="0 to 168 (default 24)")

    graphql_cmd = commands.add_parser("graphql", help="GraphQL operations").add_subparsers(
        dest="graphql_command", required=True
    )
    persist = graphql_cmd.add_parser(
        "persist", help="store and allowlist a build's operations (persisted queries)"
    )
    persist.add_argument(
        "file", help="Apollo persisted query manifest, or a JSON map of SHA-256 to operation text"
    )

    restrict = graphql_cmd.add_parser(
        "persisted-only", help="restrict an account's keys to allowlisted operations, or not"
    )
    restrict.add_argument("account")
    restrict.add_argument("state", choices=["on", "off"])

    demo = commands.add_parser("demo", help="load a realistic demo catalog")
    demo.add_argument("--account", default="demo")
    demo.add_argument("--products", type=int, default=3000)

    retention = commands.add_parser(
        "retention", help="remove what is past its retention (PIM_RETENTION_* settings)"
    )
    retention.add_argument("--dry-run", action="store_true", help="only show what would be removed")

    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command == "serve":
        _serve(
            settings, args.host, args.port, args.workers,
            migrate=not args.no_migrate, access_log=not args.no_access_log,
        )  # fmt: skip
    elif args.command == "worker":
        from pim.jobs import DEFAULT_QUEUE

        queue = DEFAULT_QUEUE if args.queue == "default" else args.queue
        if args.check:
            sys.exit(asyncio.run(_check_worker(settings, queue)))
        _worker(settings, queue)
    elif args.command == "migrate":
        upgrade(settings)
        print("Base de données à jour.")
    elif args.command == "keys":
        upgrade(settings)
        asyncio.run(_keys(settings, args))
    elif args.command == "graphql":
        upgrade(settings)
        if args.graphql_command == "persist":
            sys.exit(_persist(settings, args.file))
        sys.exit(asyncio.run(_with_runtime(settings, lambda rt: _restrict(rt, args))))
    elif args.command == "demo":
        from jobs.demo import load_demo

        upgrade(settings)
        summary = asyncio.run(
            _with_runtime(settings, lambda rt: load_demo(rt, args.account, args.products))
        )
        print(summary)
    elif args.command == "retention":
        upgrade(settings)
        asyncio.run(_with_runtime(settings, lambda rt: _retention(rt, dry_run=args.dry_run)))


async def _retention(runtime: Runtime, *, dry_run: bool) -> None:
    from jobs.housekeeping import apply_retention, retention_due
    from resolvers.retention import RULES

    if dry_run:
        counts = await retention_due(runtime)
    else:
        counts = await apply_retention({"runtime": runtime})
    verb = "à supprimer" if dry_run else "supprimés"
    for rule in RULES:
        days = getattr(runtime.settings, rule.setting)
        print(f"{rule.name}: {counts[rule.name]} {verb} ({rule.description}, > {days:g} jours)")


async def _with_runtime(settings: Settings, work):  # type: ignore[no-untyped-def]
    runtime = build_runtime(settings)
    try:
        return await work(runtime)
    finally:
        await runtime.close()


def _worker(settings: Settings, queue: str) -> None:
    from service.worker import run_worker

    logs.configure(settings.resolved_log_format, settings.log_level)
    tracing.setup("pim-worker")
    if settings.worker_metrics_port is not None:
        metrics.serve(settings.worker_metrics_port)
    run_worker(settings, queue)


async def _check_worker(settings: Settings, queue: str) -> int:
    from arq.constants import health_check_key_suffix

    runtime = build_runtime(settings)
    try:
        extra: dict[str, health.Check] = {}
        if settings.redis_url:
            url, key = settings.redis_url, queue + health_check_key_suffix
            extra["worker"] = lambda: health.key_alive(url, key)
        checks = await health.readiness(settings, runtime.db, extra)
    finally:
        await runtime.close()
    print(orjson.dumps(checks).decode())
    return 1 if health.failing(checks) else 0


def _serve(
    settings: Settings, host: str, port: int, workers: int, *, migrate: bool, access_log: bool
) -> None:
    from pim import serving  # uvicorn is imported by the one command that serves

    logs.configure(settings.resolved_log_format, settings.log_level)
    if migrate:
        upgrade(settings)
    asyncio.run(_with_runtime(settings, _first_key))
    if workers > 1 and not metrics.multiprocess_dir():
        # Each worker process then writes its metrics where /metrics, served by any of
        # them, adds them all up (set before the workers start: they read it at import).
        os.environ[metrics.MULTIPROCESS_DIR_ENV] = tempfile.mkdtemp(prefix="pim-metrics-")
    if not access_log:
        os.environ["PIM_REQUEST_LOG"] = "false"  # read by each worker's settings
    print(f"Pixee PIM API on http://{host}:{port} — GraphiQL at http://{host}:{port}/graphql")
    serving.serve(
        "service.api:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # The app logs one structured line per request and formats uvicorn's own lines:
        # uvicorn's access log would repeat each request, and its logging setup undo ours.
        access_log=False,
        log_config=None,
        # Subscription messages are small JSON states: compressing each one, for each
        # watching socket, costs CPU and a compressor per socket to save a few bytes.
        ws_per_message_deflate=False,
    )


async def _first_key(runtime: Runtime) -> None:
    """A fresh database gets one admin key, printed once, so the API is usable at once."""
    async with runtime.db.transaction() as session:
        if await keys.any_key_exists(session):
            return
        account = await keys.get_or_create_account(session, "default")
        created = await keys.create_key(session, account=account, name="Admin", scopes=ADMIN_SCOPES)
    print("First admin API key (shown once, keep it safe):")
    print(f"  {created.plain}")


async def _keys(settings: Settings, args: argparse.Namespace) -> None:
    runtime = build_runtime(settings)
    try:
        async with runtime.db.transaction() as session:
            if args.keys_command == "create":
                account = await keys.get_or_create_account(session, args.account)
                scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
                created = await keys.create_key(
                    session, account=account, name=args.name, scopes=scopes,
                    rate_limit_per_minute=args.rate_limit,
                )  # fmt: skip
                print(
                    f"Clé '{args.name}' créée pour le compte '{account.name}' ({', '.join(scopes)})"
                )
                print(created.plain)
            elif args.keys_command == "list":
                for key, account_name in await keys.list_keys(session, account_name=args.account):
                    state = "révoquée" if key.revoked_at else "active"
                    if not key.revoked_at and not keys.is_active(key, utcnow()):
                        state = "expirée"
                    used = key.last_used_at.isoformat() if key.last_used_at else "jamais"
                    print(f"{key.id}  {key.prefix}…  {account_name}  {key.name}  [{state}]  "
                          f"utilisée : {used}  portées : {','.join(key.scopes)}")  # fmt: skip
            elif args.keys_command == "revoke":
                revoked = await keys.revoke_key(session, **_key_ref(args.key))
                print(f"Clé {revoked.prefix}… révoquée.")
            elif args.keys_command == "rotate":
                grace = timedelta(hours=args.grace_hours)
                rotated = await keys.rotate_key(session, **_key_ref(args.key), grace=grace)
                print(f"Nouvelle clé '{rotated.key.name}' ; l'ancienne reste valable {grace}.")
                print(rotated.plain)
    except DomainError as exc:
        print(f"Erreur : {exc.message}", file=sys.stderr)
        sys.exit(1)
    finally:
        await runtime.close()


def _persist(settings: Settings, path: str) -> int:
    """Stores and allowlists the operations of a build's manifest; 1 if it is refused."""
    try:
        with open(path, "rb") as manifest:
            operations = persisted_queries.operations_in(orjson.loads(manifest.read()))
    except (OSError, orjson.JSONDecodeError) as exc:
        print(f"Erreur : {path} illisible ({exc})", file=sys.stderr)
        return 1
    except ValidationFailed as exc:
        print(f"Erreur : {'; '.join(str(e) for e in exc.errors)}", file=sys.stderr)
        return 1
    count = asyncio.run(_with_runtime(settings, lambda rt: _allowlist(rt, operations)))
    print(f"{count} opérations persistées et autorisées.")
    return 0


async def _restrict(runtime: Runtime, args: argparse.Namespace) -> int:
    try:
        async with runtime.db.transaction() as session:
            await persisted_queries.restrict_account(
                session, args.account, enabled=args.state == "on"
            )
    except DomainError as exc:
        print(f"Erreur : {exc.message}", file=sys.stderr)
        return 1
    scope = "les opérations persistées" if args.state == "on" else "toute opération"
    print(f"Compte '{args.account}' : {scope} acceptées.")
    return 0


async def _allowlist(runtime: Runtime, operations: list[persisted_queries.Operation]) -> int:
    async with runtime.db.transaction() as session:
        return await persisted_queries.allowlist(session, operations)


def _key_ref(text: str) -> dict[str, Any]:
    """A key named on the command line by its id or its displayed prefix."""
    try:
        return {"key_id": uuid.UUID(text)}
    except ValueError:
        return {"prefix": text.rstrip("…")}


if __name__ == "__main__":
    main()
