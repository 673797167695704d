"""Rollback of one run against a real PostgreSQL: exact, or it refuses and changes nothing."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from culturebridge_migration.loading.change_capture import install_capture
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.loading.rollback import RollbackBlocked, rollback_run, rollback_script
from culturebridge_migration.mapping.entities import ENTITIES

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
    assert rollback_run(db, "run-2").counts() == {"restored": 1, "recreated": 0, "deleted": 3}
    assert table_sums() == after_first
    rollback_run(db, "run-1")
    assert table_sums() == empty
    with pytest.raises(RollbackBlocked, match="already rolled back"):
        rollback_run(db, "run-1")


@pytest.mark.parametrize("app_ids", [("native-1", "native-b"), (None, None)])  # invented ids, or none
def test_rollback_refuses_to_orphan_rows_created_after_cutover(
    db: Phase2Database, load: Callable, records: SimpleNamespace, table_sums: Callable, app_ids: tuple
) -> None:
    load("users", records.users("a@x.io", "b@x.io"), "run-1")
    coach_id = db.scalar("SELECT id FROM users WHERE bubble_id = '1x2'")
    client_id = db.scalar(
        "INSERT INTO users (bubble_id, email, role, created_at, updated_at)"
        " VALUES (%s, 'n@x.io', 'client', now(), now()) RETURNING id",
        (app_ids[0],),
    )
    db.execute(
        "INSERT INTO bookings (bubble_id, client_id, coach_id, session_start, duration_minutes, status, created_at,"
        " updated_at) VALUES (%s, %s, %s, now(), 30, 'pending', now(), now())",
        (app_ids[1], client_id, coach_id),
    )
    db.conn.commit()
    before = table_sums()
    with pytest.raises(RollbackBlocked, match="changed nothing"):
        rollback_run(db, "run-1")
    assert table_sums() == before


def test_rollback_leaves_the_rows_the_app_created_without_a_bubble_id(
    db: Phase2Database, load: Callable, records: SimpleNamespace
) -> None:
    load("users", records.users("a@x.io", "b@x.io"), "run-1")
    db.execute(
        "INSERT INTO users (bubble_id, email, role, created_at, updated_at)"
        " VALUES (NULL, 'n@x.io', 'client', now(), now())"
    )
    db.conn.commit()
    assert rollback_run(db, "run-1").counts() == {"restored": 0, "recreated": 0, "deleted": 2}
    assert db.execute("SELECT bubble_id, email FROM users").fetchall() == [(None, "n@x.io")]


def test_rollback_script_is_the_same_undo(
    db: Phase2Database, load: Callable, records: SimpleNamespace, table_sums: Callable, database_url: str
) -> None:
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed")
    empty = table_sums()
    load("users", records.users("a@x.io", "b@x.io"), "run-1")
    script = rollback_script(db, "run-1")
    install_capture(db)  # after cutover: the script says it is the migration's write, not the app's
    db.conn.commit()
    done = subprocess.run([psql, database_url, "-q", "-f", "-"], input=script, text=True, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert table_sums() == empty
    assert db.scalar("SELECT count(*) FROM migration.captured_changes") == 0


def test_rollback_of_an_older_run_waits_for_the_later_one(
    db: Phase2Database, load: Callable, records: SimpleNamespace, table_sums: Callable
) -> None:
    load("users", records.users("a@x.io", "b@x.io"), "run-1")
    load("users", records.users("a@x.io", "b@x.io", "c@x.io"), "run-2")
    before = table_sums()
    with pytest.raises(RollbackBlocked, match="roll back run-2 first"):
        rollback_run(db, "run-1")
    assert table_sums() == before


@pytest.fixture
def app_table(db: Phase2Database) -> Callable[[str], None]:
    """The app's own table of user notes, pointing at users with the given ON DELETE action."""

    def create(on_delete: str) -> None:
        db.execute(
            "CREATE TABLE public.app_notes (id serial PRIMARY KEY, user_id bigint REFERENCES public.users (id)"
            f" ON DELETE {on_delete}, note text)"
        )
        db.execute("INSERT INTO public.app_notes (user_id, note) SELECT id, 'remember me' FROM public.users")
        db.conn.commit()

    return create


def app_rows(db: Phase2Database) -> list[tuple]:
    return db.execute("SELECT id, user_id, note FROM public.app_notes ORDER BY id").fetchall()


@pytest.mark.parametrize("on_delete", ["CASCADE", "SET NULL", "NO ACTION"])
def test_rollback_refuses_when_the_apps_rows_point_at_rows_it_would_delete_whatever_their_on_delete(
    db: Phase2Database,
    load: Callable,
    records: SimpleNamespace,
    table_sums: Callable,
    app_table: Callable,
    on_delete: str,
) -> None:
    load("users", records.users("a@x.io", "b@x.io"), "run-1")
    db.conn.commit()
    app_table(on_delete)
    before, notes = table_sums(), app_rows(db)
    with pytest.raises(RollbackBlocked, match=r"changed nothing.*public\.app_notes\.user_id") as refused:
        rollback_run(db, "run-1")
    assert {"CASCADE": "would delete them", "SET NULL": "would unlink them"}.get(on_delete, "is refused") in str(
        refused.value
    )
    assert table_sums() == before and app_rows(db) == notes


def test_rollback_refuses_to_overwrite_an_app_edit_and_force_overwrites_it_saying_so(
    db: Phase2Database, load: Callable, records: SimpleNamespace, table_sums: Callable
) -> None:
    load("users", records.users("a@x.io", "b@x.io"), "run-1")
    changed = records.users("a@x.io", "b@x.io")
    changed[0]["Phone"] = "+49 1"
    load("users", changed, "run-2")
    db.execute("UPDATE users SET phone = '+49 999 (changed in the app)' WHERE bubble_id = '1x1'")
    db.conn.commit()
    before = table_sums()
    with pytest.raises(RollbackBlocked, match=r"public\.users|users: 1 rows changed since the run wrote them"):
        rollback_run(db, "run-2")
    assert table_sums() == before
    done = rollback_run(db, "run-2", force=True)
    assert [c.sample for c in done.overwritten] == [("1x1",)]
    assert db.scalar("SELECT phone FROM users WHERE bubble_id = '1x1'") is None  # the version before run-2


def test_rollback_puts_back_the_watermarks_the_run_advanced(db: Phase2Database, load: Callable, records) -> None:
    from datetime import UTC, datetime

    early, late = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    load("users", records.users("a@x.io"), "run-1", watermark=early)
    load("users", records.users("a@x.io", "b@x.io"), "run-2", watermark=late)
    assert db.read_watermark(ENTITIES["users"]) == late
    rollback_run(db, "run-2")
    assert db.read_watermark(ENTITIES["users"]) == early
    rollback_run(db, "run-1")
    assert db.read_watermark(ENTITIES["users"]) is None
