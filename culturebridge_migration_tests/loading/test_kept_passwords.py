"""A password the login bridge (or the Phase 2 app) stored outlives later loads of the user's record."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest

from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.loading.rollback import RollbackBlocked, rollback_run

pytestmark = pytest.mark.integration
HASH = "$2b$12$dc0qGwWkn36UZ7BmdyJXnutAPjaL/IDkmHUivVVc1VkaQGyiRMxke"  # the sample's strong-legacy-1


def test_a_reload_keeps_a_bridged_password_and_writes_nothing_for_an_unchanged_record(
    db: Phase2Database, load: Callable, records: SimpleNamespace
) -> None:
    load("users", records.users("a@x.io", "b@x.io"), "run-1")
    db.execute(
        "UPDATE users SET password_hash = %s, password_hash_source = 'login_bridge', password_hash_set_at = now(),"
        " password_reset_required = false WHERE bubble_id = '1x1'",
        (HASH,),
    )
    kept = db.execute("SELECT password_hash, password_hash_set_at FROM users WHERE bubble_id = '1x1'").fetchone()
    again = load("users", records.users("a@x.io", "b@x.io"), "run-2")
    assert (again.result.updated, again.result.unchanged) == (0, 2)
    changed = records.users("a@x.io", "b@x.io")
    changed[0]["First Name"] = "Ana"
    assert load("users", changed, "run-3").result.updated == 1
    row = db.execute(
        "SELECT password_hash, password_hash_set_at, password_hash_source, password_reset_required, first_name"
        " FROM users WHERE bubble_id = '1x1'"
    ).fetchone()
    assert row == (*kept, "login_bridge", False, "Ana")


def test_a_migrated_password_is_marked_as_the_migrations(
    db: Phase2Database, load: Callable, records: SimpleNamespace
) -> None:
    users = records.users("a@x.io", "b@x.io")
    users[0]["Legacy Password"] = HASH
    load("users", users, "run-1")
    rows = db.execute(
        "SELECT bubble_id, password_hash_source, password_hash_set_at, password_reset_required FROM users ORDER BY 1"
    ).fetchall()
    assert rows == [("1x1", "migration", None, False), ("1x2", None, None, True)]


def test_a_rollback_refuses_to_undo_a_user_whose_password_the_bridge_carried_since(
    db: Phase2Database, load: Callable, records: SimpleNamespace
) -> None:
    load("users", records.users("a@x.io", "b@x.io"), "run-1")
    changed = records.users("a@x.io", "b@x.io")
    changed[0]["First Name"] = "Ana"
    load("users", changed, "run-2")
    db.execute(
        "UPDATE users SET password_hash = %s, password_hash_source = 'login_bridge', password_reset_required = false"
        " WHERE bubble_id = '1x1'",
        (HASH,),
    )
    with pytest.raises(RollbackBlocked, match="1x1"):
        rollback_run(db, "run-2")
    assert db.scalar("SELECT password_hash FROM users WHERE bubble_id = '1x1'") == HASH
