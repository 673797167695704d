"""Change capture from cutover on a real PostgreSQL: the app's writes are recorded, the migration's are not."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace

import psycopg
import pytest

from culturebridge_migration.loading import change_capture
from culturebridge_migration.loading.change_capture import NetChange, capture_status, net_changes
from culturebridge_migration.loading.deletions import DeletedRecords, Gone, gone_from_full_export, sweep
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.loading.rollback import rollback_run
from culturebridge_migration.mapping.entities import ENTITIES

pytestmark = pytest.mark.integration


@pytest.fixture
def app(db: Phase2Database, database_url: str) -> Iterator[psycopg.Connection]:
    """The Phase 2 app: a plain connection of its own, which the migration never opened."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


def install_capture(db: Phase2Database) -> list[str]:
    """Installed and committed, as the CLI and the cutover do: the triggers' lock must not wait on the app."""
    tables = change_capture.install_capture(db)
    db.conn.commit()
    return tables


def remove_capture(db: Phase2Database) -> list[str]:
    tables = change_capture.remove_capture(db)
    db.conn.commit()
    return tables


def captured(db: Phase2Database) -> list[tuple]:
    return db.execute(
        "SELECT table_name, row_id, bubble_id, operation FROM migration.captured_changes ORDER BY seq"
    ).fetchall()


def sign_up(app: psycopg.Connection, email: str) -> int:
    return app.execute(
        "INSERT INTO users (email, role, created_at, updated_at) VALUES (%s, 'client', now(), now()) RETURNING id",
        (email,),
    ).fetchone()[0]


def test_the_apps_inserts_updates_and_deletes_are_captured_with_the_row_and_its_transaction(
    db: Phase2Database, app: psycopg.Connection, load: Callable, records: SimpleNamespace
) -> None:
    load("users", records.users("a@x.io"), "run-1")
    migrated = db.scalar("SELECT id FROM users WHERE bubble_id = '1x1'")
    assert install_capture(db) == sorted(e.table for e in ENTITIES.values())
    with app.transaction():
        new = sign_up(app, "n@x.io")
        app.execute("UPDATE users SET first_name = 'Ana' WHERE id = %s", (migrated,))
        txid = app.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()[0]
    app.execute("UPDATE users SET first_name = first_name WHERE id = %s", (migrated,))  # changes nothing
    app.execute("DELETE FROM users WHERE id = %s", (migrated,))

    assert captured(db) == [
        ("users", new, None, "insert"),
        ("users", migrated, "1x1", "update"),
        ("users", migrated, "1x1", "delete"),
    ]
    transactions = [t for (t,) in db.execute("SELECT txid FROM migration.captured_changes ORDER BY seq")]
    assert transactions[:2] == [txid, txid] and transactions[2] != txid


def test_the_migrations_own_writes_are_never_captured(
    db: Phase2Database, load: Callable, records: SimpleNamespace
) -> None:
    install_capture(db)
    load("users", records.users("a@x.io", "b@x.io", "c@x.io"), "run-1")
    changed = records.users("a@x.io", "b@x.io")  # 1x3 is gone from Bubble: a full export deletes it
    changed[0]["First Name"] = "Ana"
    load("users", changed, "run-2")
    with db.transaction():  # the sweep of a full export, Bubble having confirmed the deletion
        gone = Gone(gone_from_full_export(db, ENTITIES["users"], ["1x1", "1x2"]))
        assert sweep(db, ENTITIES["users"], gone, DeletedRecords.DELETE, "run-2").deleted == ["1x3"]
    rollback_run(db, "run-2")

    assert captured(db) == []


def test_installing_twice_is_harmless_and_captures_each_change_once(
    db: Phase2Database, app: psycopg.Connection
) -> None:
    install_capture(db)
    install_capture(db)
    sign_up(app, "n@x.io")
    assert len(captured(db)) == 1


def test_removing_stops_the_capture_and_removing_again_is_harmless(db: Phase2Database, app: psycopg.Connection) -> None:
    remove_capture(db)  # never installed
    install_capture(db)
    sign_up(app, "n1@x.io")
    assert remove_capture(db) == sorted(e.table for e in ENTITIES.values())
    sign_up(app, "n2@x.io")
    remove_capture(db)

    assert len(captured(db)) == 1  # what was captured stays, for the fallback
    status = capture_status(db)
    assert (status.tables, status.changes) == ([], 1)


def test_net_changes_keep_the_last_operation_per_row(
    db: Phase2Database, app: psycopg.Connection, load: Callable, records: SimpleNamespace
) -> None:
    load("users", records.users("a@x.io", "b@x.io", "c@x.io"), "run-1")
    ids = dict(db.execute("SELECT bubble_id, id FROM users"))
    install_capture(db)
    status = capture_status(db)
    assert (status.tables, status.changes) == (sorted(e.table for e in ENTITIES.values()), 0)
    gone = sign_up(app, "gone@x.io")  # created then deleted: nets to nothing
    app.execute("DELETE FROM users WHERE id = %s", (gone,))
    kept = sign_up(app, "kept@x.io")  # created then edited: an insert of the row as it is now
    app.execute("UPDATE users SET first_name = 'Kim' WHERE id = %s", (kept,))
    for name in ("Ana", "Anna"):  # edited twice: one update
        app.execute("UPDATE users SET first_name = %s WHERE bubble_id = '1x1'", (name,))
    app.execute("UPDATE users SET first_name = 'Bo' WHERE bubble_id = '1x2'")  # edited, then deleted: a delete
    app.execute("DELETE FROM users WHERE bubble_id = '1x2'")

    net = net_changes(db)
    assert {(c.table_name, c.row_id, c.bubble_id, c.operation) for c in net} == {
        ("users", kept, None, "insert"),
        ("users", ids["1x1"], "1x1", "update"),
        ("users", ids["1x2"], "1x2", "delete"),
    }
    since = max(c.last_seq for c in net)
    app.execute("UPDATE users SET first_name = 'Cy' WHERE bubble_id = '1x3'")
    assert [(c.row_id, c.operation) for c in net_changes(db, since=since)] == [(ids["1x3"], "update")]
    assert all(isinstance(c, NetChange) for c in net)
