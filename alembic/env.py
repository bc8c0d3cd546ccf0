"""Alembic environment: the URL comes from settings, or a live connection from the caller."""

from sqlalchemy import Connection

import db.models  # noqa: F401  (registers the tables)
from alembic import context
from api.settings import get_settings
from db.base import metadata
from db.session import make_engine

config = context.config


def run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite and not connection.in_transaction():
        # Batch migrations recreate tables; with foreign keys on, dropping the old table would
        # cascade into its children. The pragma only takes effect outside a transaction.
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # Alembic treats SQLite DDL as non-transactional and commits after every revision, so
        # a second `db upgrade` waiting on the write lock could slip in between, find the
        # schema part-way and replay a revision. SQLite DDL is transactional: one transaction.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration broke foreign keys: {broken[:5]}")
    if sqlite and not connection.in_transaction():
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    url = config.attributes.get("url") or get_settings().database_url
    engine = make_engine(url)
    with engine.connect() as conn:
        run(conn)
        conn.commit()
    engine.dispose()
