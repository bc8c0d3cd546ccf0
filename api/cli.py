"""The ``cityscore`` command: serve, migrate, load the demo, manage API keys."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from typing import Any

import orjson


def _upgrade(url: str) -> None:
    from pathlib import Path

    from alembic.config import Config

    from alembic import command

    root = Path(__file__).resolve().parent.parent
    if not (root / "alembic.ini").exists():  # installed as a package: use the working directory
        root = Path.cwd()
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "alembic"))
    config.attributes["url"] = url
    command.upgrade(config, "head")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cityscore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the API (never loads or changes data)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply every migration")

    demo = sub.add_parser("demo", help="load Boston's catalogue and synthetic values")
    demo.add_argument("--years", type=int, default=3)
    demo.add_argument("--metrics", type=int, default=23)
    demo.add_argument("--if-empty", action="store_true", help="do nothing if data exists")

    keys = sub.add_parser("keys", help="API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it once")
    who = create.add_mutually_exclusive_group(required=True)
    who.add_argument("--department", help="department slug the key may write for")
    who.add_argument("--admin", action="store_true", help="an analytics-team key")
    create.add_argument("--name", required=True)
    expiry = create.add_mutually_exclusive_group()
    expiry.add_argument(
        "--expires-in-days", type=int, metavar="N", help="the key stops working N days from now"
    )
    expiry.add_argument(
        "--expires",
        metavar="YYYY-MM-DD",
        help="the key stops working when this day begins (city time)",
    )
    lst = keys_sub.add_parser("list", help="list keys (never the secrets)")
    lst.add_argument("--json", action="store_true")
    rev = keys_sub.add_parser("revoke", help="revoke a key at once")
    rev.add_argument("id", type=int)

    args = parser.parse_args(argv)
    from api.settings import get_settings

    settings = get_settings()
    try:
        return _run(args, settings)
    except Exception as exc:  # one-line reason, non-zero exit
        from api.errors import APIError

        reason = exc.detail if isinstance(exc, APIError) else f"{type(exc).__name__}: {exc}"
        print(f"cityscore: error: {reason}".splitlines()[0], file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, settings: object) -> int:
    from api.settings import Settings

    assert isinstance(settings, Settings)
    if args.command == "serve":
        import uvicorn

        from api.observability import logs
        from api.observability.metrics import prepare_multiprocess_dir

        logs.configure(settings.log_level)
        cleanup = prepare_multiprocess_dir(args.workers)
        try:
            uvicorn.run(
                "api.asgi:app",
                host=args.host,
                port=args.port,
                workers=args.workers,
                proxy_headers=True,
                log_config=None,  # JSON logs (api.observability.logs), one line per request
                access_log=False,
            )
        finally:
            cleanup()
        return 0
    if args.command == "db":
        _upgrade(settings.database_url)
        print("database is at the latest schema")
        return 0

    from db.session import make_engine, session_factory

    engine = make_engine(settings.database_url)
    factory = session_factory(engine)
    with factory() as session:
        if args.command == "demo":
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
        return _keys(args, session, settings)


def _keys(args: argparse.Namespace, session: Any, settings: Any) -> int:
    """``cityscore keys create|list|revoke``."""
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
            for r in rows:
                print("\t".join(_key_line(r)))
        return 0
    if args.keys_command == "revoke":
        key = keys_service.revoke(session, args.id)
        session.commit()
        print(f"revoked key {key.id}")
        return 0
    return 2


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


def _key_line(row: dict[str, Any]) -> list[str]:
    from db.models import utcnow

    scope = "admin" if row["admin"] else str(row["department"])
    if row["revoked_at"]:
        state = f"revoked {row['revoked_at']:%Y-%m-%d}"
    elif row["expires_at"] and row["expires_at"] <= utcnow():
        state = f"expired {row['expires_at']:%Y-%m-%d}"
    elif row["expires_at"]:
        state = f"active until {row['expires_at']:%Y-%m-%dT%H:%M}Z"
    else:
        state = "active"
    return [str(row["id"]), row["name"], scope, state]


if __name__ == "__main__":
    raise SystemExit(main())
