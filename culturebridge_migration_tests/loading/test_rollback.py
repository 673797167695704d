"""Rollback of one run against a real PostgreSQL: exact, or it refuses and changes nothing."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.loading.rollback import RollbackBlocked, rollback_run, rollback_script

pytestmark = pytest.mark.integration


def test_rollback_restores_exactly_the_state_before_each_run(
    db: Phase2Database, load: Callable, records: SimpleNamespace, table_sums: Callable
) -> None:
    empty = table_sums()
    load("users", records.users("a@x.io", "b@x.io"), "run-1")
    load("bookings", records.bookings(3), "run-1")
    after_first = table_sums()
    changed = records.users("a@x.io", "b@x.io", "c@x.io")
    changed[1]["First Name"] = "Bea"
    load("users", changed, "run-2")
    load("bookings", records.bookings(5), "run-2")
    assert table_sums() != after_first
    assert rollback_run(db, "run-2") == {"restored": 1, "recreated": 0, "deleted": 3}
    assert table_sums() == after_first
    rollback_run(db, "run-1")
    assert table_sums() == empty
    with pytest.raises(RollbackBlocked, match="already rolled back"):
        rollback_run(db, "run-1")


def test_rollback_refuses_to_orphan_rows_created_after_cutover(
    db: Phase2Database, load: Callable, records: SimpleNamespace, table_sums: Callable
) -> None:
    load("users", records.users("a@x.io", "b@x.io"), "run-1")
    coach_id = db.scalar("SELECT id FROM users WHERE bubble_id = '1x2'")
    db.execute(
        "INSERT INTO users (bubble_id, email, role, created_at, updated_at)"
        " VALUES ('native-1', 'n@x.io', 'client', now(), now())"
    )
    db.execute(
        "INSERT INTO bookings (bubble_id, client_id, coach_id, session_start, duration_minutes, status, created_at,"
        " updated_at) SELECT 'native-b', id, %s, now(), 30, 'pending', now(), now() FROM users"
        " WHERE bubble_id = 'native-1'",
        (coach_id,),
    )
    db.conn.commit()
    before = table_sums()
    with pytest.raises(RollbackBlocked, match="changed nothing"):
        rollback_run(db, "run-1")
    assert table_sums() == before


def test_rollback_script_is_the_same_undo(
    db: Phase2Database, load: Callable, records: SimpleNamespace, table_sums: Callable, database_url: str
) -> None:
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed")
    empty = table_sums()
    load("users", records.users("a@x.io", "b@x.io"), "run-1")
    script = rollback_script(db, "run-1")
    db.conn.commit()
    done = subprocess.run([psql, database_url, "-q", "-f", "-"], input=script, text=True, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert table_sums() == empty


def test_rollback_of_an_older_run_waits_for_the_later_one(
    db: Phase2Database, load: Callable, records: SimpleNamespace, table_sums: Callable
) -> None:
    load("users", records.users("a@x.io", "b@x.io"), "run-1")
    load("users", records.users("a@x.io", "b@x.io", "c@x.io"), "run-2")
    before = table_sums()
    with pytest.raises(RollbackBlocked, match="roll back run-2 first"):
        rollback_run(db, "run-1")
    assert table_sums() == before
