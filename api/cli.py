"""The ``cityscore`` command: serve, migrate, load the demo, manage API keys, push a file."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import orjson


class Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help text with every option's default (none shown for flags and unset options)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


class CommandError(Exception):
    """A one-line reason for a non-zero exit."""


def package_version() -> str:
    try:
        return metadata.version("cityscore-api")
    except metadata.PackageNotFoundError:  # running from a checkout that is not installed
        return "unknown"


def log_database(url: str) -> None:
    from db.migrate import describe

    print(f"cityscore: database {describe(url)}", file=sys.stderr)


def open_store(url: str, *, bulk: bool = False) -> Any:
    """An engine on an existing, migrated store; CommandError (never a new empty file) else.
    ``bulk``: tuned for one big load (see ``make_engine``)."""
    from sqlalchemy.engine import make_url

    from db.migrate import describe, schema_problem
    from db.session import is_sqlite, make_engine

    if is_sqlite(url):
        from pathlib import Path

        database = make_url(url).database
        if database and database != ":memory:" and not Path(database).exists():
            raise CommandError(
                f"no database at {Path(database).resolve()} ({describe(url)}): run "
                "`cityscore db upgrade` to create it, or set DATABASE_URL"
            )
    engine = make_engine(url, bulk=bulk)
    with engine.connect() as conn:
        problem = schema_problem(conn)
    if problem is not None:
        engine.dispose()
        raise CommandError(problem)
    return engine


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cityscore",
        description=__doc__,
        epilog="Settings come from the environment (DATABASE_URL, CITY_TIMEZONE, ...): see "
        "the README. Every command that touches the store says which one on stderr.",
        formatter_class=Formatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {package_version()} (API v1)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve", help="serve the API (never loads or changes data)", formatter_class=Formatter
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="TCP port")
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY", "1")),
        help="server processes; each keeps its own DB pool (DB_POOL_SIZE + DB_MAX_OVERFLOW)",
    )

    db = sub.add_parser("db", help="database schema", formatter_class=Formatter)
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    db_sub.add_parser(
        "upgrade",
        help="apply every migration (safe to run from several replicas at once)",
        formatter_class=Formatter,
    )

    demo = sub.add_parser(
        "demo", help="load Boston's catalogue and synthetic values", formatter_class=Formatter
    )
    demo.add_argument("--years", type=int, default=3, help="years of synthetic daily values")
    demo.add_argument("--metrics", type=int, default=23, help="how many metrics to load")
    demo.add_argument("--if-empty", action="store_true", help="do nothing if data exists")

    _add_keys(sub)
    _add_import(sub)
    _add_ingest(sub)
    return parser


def _add_import(sub: Any) -> None:
    """``cityscore import boston-full-metric-list FILE``."""
    imp = sub.add_parser("import", help="import published records", formatter_class=Formatter)
    imp_sub = imp.add_subparsers(dest="import_command", required=True, metavar="COMMAND")
    fml = imp_sub.add_parser(
        "boston-full-metric-list",
        help="a Boston CityScore Full Metric List export as archived runs",
        description="Load a Full Metric List CSV (Boston's 17 columns) as archived runs: one "
        "per distinct score_calculated_ts (city-local time), figures kept verbatim, metrics "
        "matched by name and created in the 'imported' department when missing. Runs already "
        "imported are skipped, so importing a file twice adds nothing.",
        formatter_class=Formatter,
    )
    fml.add_argument("file", metavar="FILE.csv", help="the export to load")


def _add_ingest(sub: Any) -> None:
    """``cityscore ingest FILE --url --key``."""
    from api.ingest.client import add_arguments

    ingest = sub.add_parser(
        "ingest",
        help="push a CSV or JSON file of values to a server, in batches",
        description="Push a CSV or JSON file of daily values to POST /v1/ingest/values, split "
        "into batches under the server's limits. Each batch carries an Idempotency-Key derived "
        "from its content, so rerunning after a crash resumes without duplicates. Progress on "
        "stderr, receipts on stdout; exit 0 only when every batch was accepted.",
        formatter_class=Formatter,
    )
    add_arguments(ingest)


def _add_keys(sub: Any) -> None:
    keys = sub.add_parser("keys", help="API keys", formatter_class=Formatter)
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    create = keys_sub.add_parser(
        "create", help="create a key and print it once", formatter_class=Formatter
    )
    who = create.add_mutually_exclusive_group(required=True)
    who.add_argument("--department", help="department slug the key may write for")
    who.add_argument("--admin", action="store_true", help="an analytics-team key")
    create.add_argument("--name", required=True, help="who or what uses the key")
    expiry = create.add_mutually_exclusive_group()
    expiry.add_argument(
        "--expires-in-days", type=int, metavar="N", help="the key stops working N days from now"
    )
    expiry.add_argument(
        "--expires",
        metavar="YYYY-MM-DD",
        help="the key stops working when this day begins (city time)",
    )
    lst = keys_sub.add_parser(
        "list", help="list keys (never the secrets)", formatter_class=Formatter
    )
    lst.add_argument(
        "--json",
        action="store_true",
        help="a JSON array [{id, name, department, admin, created_at, revoked_at, expires_at}]",
    )
    rev = keys_sub.add_parser("revoke", help="revoke a key at once", formatter_class=Formatter)
    rev.add_argument("id", type=int, help="the key's id (see `keys list`)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from api.settings import get_settings

        return _run(args, get_settings())
    except Exception as exc:  # one-line reason, non-zero exit
        from api.errors import APIError
        from api.ingest.chunks import FileProblem

        reason = exc.detail if isinstance(exc, APIError) else str(exc)
        if not isinstance(exc, APIError | CommandError | FileProblem):
            reason = f"{type(exc).__name__}: {exc}"
        print(f"cityscore: error: {reason}".splitlines()[0], file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, settings: Any) -> int:
    if args.command == "ingest":
        from api.ingest.client import run

        return run(args)
    log_database(settings.database_url)
    if args.command == "serve":
        return _serve(args, settings)
    if args.command == "db":
        from db.migrate import upgrade
        from db.session import make_engine

        engine = make_engine(settings.database_url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        print("database is at the latest schema")
        return 0
    from db.session import session_factory

    engine = open_store(settings.database_url, bulk=args.command == "demo")
    try:
        with session_factory(engine)() as session:
            if args.command == "demo":
                return _demo(session, args, settings)
            if args.command == "import":
                return _import(session, args, settings)
            return _keys(session, args, settings)
    finally:
        engine.dispose()


def _serve(args: argparse.Namespace, settings: Any) -> int:
    import uvicorn

    # The metrics module creates its multiprocess files on import: the directory must exist
    # first (the image names one under /tmp that nothing has made yet).
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    from api.observability.metrics import prepare_multiprocess_dir
    from db.session import connection_budget

    cleanup = prepare_multiprocess_dir(args.workers)
    budget = connection_budget(
        settings.database_url,
        args.workers,
        settings.db_pool_size,
        settings.db_max_overflow,
        listeners=int(settings.version_cache and not settings.database_read_url),
    )
    from api.observability import logs

    for warning in [*budget, *_store_warnings(settings.database_url)]:
        print(f"cityscore: warning: {warning}", file=sys.stderr)
    logs.configure(settings.log_level)
    try:
        uvicorn.run(
            "api.asgi:app",
            host=args.host,
            port=args.port,
            workers=args.workers,
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            log_config=None,  # JSON logs (api.observability.logs), one line per request
            access_log=False,
        )
    finally:
        cleanup()
    return 0


def _store_warnings(url: str) -> list[str]:
    """Why /readyz will answer 503, said once at start (serving goes on: the store may be
    migrated or come up later)."""
    try:
        open_store(url).dispose()
    except CommandError as exc:
        return [f"{exc}; /readyz answers 503 until then"]
    except Exception as exc:
        return [f"the store is unreachable ({type(exc).__name__}); /readyz answers 503"]
    return []


def _demo(session: Any, args: argparse.Namespace, settings: Any) -> int:
    from api.demo import service as demo_service

    if args.if_empty and not demo_service.is_empty(session):
        print("database already has data; demo not loaded")
        return 0
    summary = demo_service.load(
        session, years=args.years, metrics=args.metrics, today=settings.today()
    )
    session.commit()
    print(summary)
    return 0


def _import(session: Any, args: argparse.Namespace, settings: Any) -> int:
    from pathlib import Path

    from api.runs import boston

    try:
        summary = boston.import_file(session, Path(args.file), settings.tz)
    except boston.ImportProblem as exc:
        raise CommandError(str(exc)) from None
    session.commit()
    print(summary)
    return 0


def _keys(session: Any, args: argparse.Namespace, settings: Any) -> int:
    from api.keys import service as keys_service

    if args.keys_command == "create":
        expires_at = _expiry(args, settings)
        key, token = keys_service.create(
            session,
            name=args.name,
            department=args.department,
            admin=args.admin,
            expires_at=expires_at,
        )
        session.commit()
        scope = "admin" if args.admin else f"department {args.department}"
        until = f", expires {expires_at:%Y-%m-%dT%H:%M:%SZ}" if expires_at else ""
        print(f"created key {key.id} ({scope}{until}); store it now, it is not shown again:")
        print(token)
        return 0
    if args.keys_command == "list":
        rows = keys_service.list_keys(session)
        if args.json:
            print(orjson.dumps(rows, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z).decode())
        else:
            print(format_keys(rows), end="")
        return 0
    key = keys_service.revoke(session, args.id)
    session.commit()
    print(f"revoked key {key.id}")
    return 0


def _expiry(args: argparse.Namespace, settings: Any) -> dt.datetime | None:
    """The expiry instant (naive UTC) from --expires-in-days or --expires, or None."""
    from db.models import utcnow

    if args.expires_in_days is not None:
        if not 1 <= args.expires_in_days <= 36_500:
            raise ValueError("--expires-in-days must be from 1 to 36500")
        return utcnow() + dt.timedelta(days=args.expires_in_days)
    if args.expires is not None:
        try:
            day = dt.date.fromisoformat(args.expires)
        except ValueError:
            raise ValueError(
                f"--expires must be a date as YYYY-MM-DD; got {args.expires!r}"
            ) from None
        begins = dt.datetime.combine(day, dt.time(), settings.tz)
        return begins.astimezone(dt.UTC).replace(tzinfo=None)
    return None


def format_keys(rows: list[dict[str, Any]]) -> str:
    """A table with a header; instants in UTC to the minute."""

    def when(ts: Any) -> str:
        return f"{ts:%Y-%m-%d %H:%M}Z" if ts is not None else "-"

    table = [("ID", "NAME", "SCOPE", "CREATED (UTC)", "REVOKED (UTC)", "EXPIRES (UTC)")]
    for r in rows:
        scope = "admin" if r["admin"] else f"department {r['department']}"
        table.append(
            (
                str(r["id"]),
                r["name"],
                scope,
                when(r["created_at"]),
                when(r["revoked_at"]),
                when(r.get("expires_at")),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    if not rows:
        lines.append("(no keys yet: `cityscore keys create --department SLUG --name TEXT`)")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
