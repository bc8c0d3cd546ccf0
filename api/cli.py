"""The ``cityscore`` command: serve, migrate, load the demo, manage API keys."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

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

        uvicorn.run(
            "api.asgi:app",
            host=args.host,
            port=args.port,
            workers=args.workers,
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
        )
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
        from api.keys import service as keys_service

        if args.keys_command == "create":
            key, token = keys_service.create(
                session, name=args.name, department=args.department, admin=args.admin
            )
            session.commit()
            scope = "admin" if args.admin else f"department {args.department}"
            print(f"created key {key.id} ({scope}); store it now, it is not shown again:")
            print(token)
            return 0
        if args.keys_command == "list":
            rows = keys_service.list_keys(session)
            if args.json:
                print(orjson.dumps(rows, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z).decode())
            else:
                for r in rows:
                    scope = "admin" if r["admin"] else r["department"]
                    state = f"revoked {r['revoked_at']:%Y-%m-%d}" if r["revoked_at"] else "active"
                    print(f"{r['id']}\t{r['name']}\t{scope}\t{state}")
            return 0
        if args.keys_command == "revoke":
            key = keys_service.revoke(session, args.id)
            session.commit()
            print(f"revoked key {key.id}")
            return 0
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
