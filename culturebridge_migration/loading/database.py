"""Connecting to Phase 2 (DATABASE_URL, else the embedded server of `embedded_server.py`): one clear
message when it cannot be reached, and every session marked as the migration's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from culturebridge_migration.redaction import redact_url, scrub, unencoded_at_in_password


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL cannot be reached; the message says which server and what to check."""


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (a driver's message goes on with hints and context)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# Why PostgreSQL ended a connection: a shutdown or restart ("terminating connection due to administrator
# command", 57P01), a crash of another backend (57P02), or still starting up again (57P03).
_RESTART_STATES = frozenset({"57P01", "57P02", "57P03"})


def restarted(exc: BaseException) -> bool:
    """True when PostgreSQL ended the connection by shutting down or restarting, anywhere in `exc`'s chain.

    The error a step sees is often a later one ("the connection is closed"), raised from the first.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "sqlstate", None) in _RESTART_STATES or "due to administrator command" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def open_connection(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    """A connection to `url`, or DatabaseUnavailable saying why with every secret of the URL removed."""
    if unencoded_at_in_password(url):
        raise DatabaseUnavailable(
            f"DATABASE_URL {redact_url(url)} has an unencoded @ in its password, which PostgreSQL reads as the "
            "end of the password: write each @ in the password as %40"
        )
    try:
        conn = psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
        mark_migrating(conn)
        return conn
    except psycopg.Error as exc:  # OperationalError, and ProgrammingError for a malformed key=value string
        raise DatabaseUnavailable(
            f"Cannot connect to PostgreSQL at {redact_url(url)}: {scrub(first_line(exc), url)}. "
            "Check DATABASE_URL (host, port, database, user, password) and that the server is running; "
            "unset DATABASE_URL to use the embedded server."
        ) from None


# Every session the migration opens says so: the change capture (change_capture.py) records only the
# app's writes, so a load, a deletion sweep or a rollback after cutover is never replayed into Bubble.
MIGRATING_SETTING = "culturebridge.migrating"


def mark_migrating(conn: psycopg.Connection) -> None:
    """Mark a fresh connection's session as the migration's (committed at once: it must outlive a rollback)."""
    conn.execute("SELECT set_config(%s, 'on', false)", (MIGRATING_SETTING,))
    if not conn.autocommit:
        conn.commit()


@contextmanager
def connect(url: str, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    with open_connection(url, autocommit=autocommit) as conn:
        yield conn
