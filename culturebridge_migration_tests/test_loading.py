"""Loading, upserts and rollback against a real PostgreSQL, without Dagster."""

from __future__ import annotations

import hashlib

import psycopg
import pytest

from culturebridge_migration.loading.database import DatabaseUnavailable, connect, ensure_schema
from culturebridge_migration.loading.loader import Schemas
from culturebridge_migration.loading.migrate import migrate_entity
from culturebridge_migration.loading.rollback import RollbackBlocked, rollback_run, rollback_script
from culturebridge_migration.mapping.entities import ENTITIES

SCHEMAS = Schemas()
T0 = "2025-11-05T14:03:22.120Z"


def users(*emails: str) -> list[dict]:
    return [
        {
            "_id": f"1x{i}",
            "Created Date": f"2025-11-0{i}T00:00:00.000Z",
            "Modified Date": T0,
            "authentication": {"email": {"email": email}},
            "Role": "Coach" if i == 2 else "Client",
            "Goals": ["x"],
        }
        for i, email in enumerate(emails, 1)
    ]


def bookings(n: int) -> list[dict]:
    return [
        {
            "_id": f"2x{i}",
            "Created Date": T0,
            "Client": "1x1",
            "Coach": "1x2",
            "Session Start": "2025-12-01T10:00:00Z",
            "Duration Minutes": 60,
            "Status": "Confirmed",
        }
        for i in range(n)
    ]


@pytest.fixture
def conn(database_url: str):
    with connect(database_url) as connection:
        ensure_schema(connection, SCHEMAS.app, SCHEMAS.migration)
        yield connection


def load(conn: psycopg.Connection, entity: str, records: list[dict], run_id: str):
    return migrate_entity(conn, SCHEMAS, ENTITIES, ENTITIES[entity], records, run_id=run_id, job_name="test")


def checksum(conn: psycopg.Connection) -> dict[str, str]:
    sums = {}
    for entity in ENTITIES.values():
        rows = conn.execute(f"SELECT * FROM public.{entity.table} ORDER BY id").fetchall()
        sums[entity.table] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return sums


def test_schema_creation_is_idempotent(conn: psycopg.Connection) -> None:
    ensure_schema(conn, SCHEMAS.app, SCHEMAS.migration)
    tables = conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").fetchone()[0]
    assert tables == len(ENTITIES)


def test_schema_columns_match_the_field_table(conn: psycopg.Connection) -> None:
    from culturebridge_migration.mapping.mapper import row_columns

    for entity in ENTITIES.values():
        columns = [
            name
            for (name,) in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s"
                " ORDER BY ordinal_position",
                (entity.table,),
            )
        ]
        assert columns == ["id", *row_columns(entity)], entity.table


def test_rerun_upserts_by_bubble_id_without_duplicates_or_writes(conn: psycopg.Connection) -> None:
    first = load(conn, "users", users("a@x.io", "b@x.io", "bad"), "run-1")
    ids = conn.execute("SELECT bubble_id, id FROM users ORDER BY id").fetchall()
    again = load(conn, "users", users("a@x.io", "b@x.io", "bad"), "run-2")
    assert (first.result.inserted, first.loaded, len(first.rejects)) == (2, 2, 1)
    assert (again.result.inserted, again.result.updated, again.result.unchanged) == (0, 0, 2)
    assert conn.execute("SELECT bubble_id, id FROM users ORDER BY id").fetchall() == ids
    assert conn.execute("SELECT count(*) FROM migration.row_changes WHERE run_id = 'run-2'").fetchone()[0] == 0


def test_changed_record_is_updated_in_place(conn: psycopg.Connection) -> None:
    load(conn, "users", users("a@x.io", "b@x.io"), "run-1")
    changed = users("a@x.io", "b@x.io")
    changed[0]["First Name"] = "Ana"
    outcome = load(conn, "users", changed, "run-2")
    assert (outcome.result.inserted, outcome.result.updated) == (0, 1)
    assert conn.execute("SELECT first_name FROM users WHERE bubble_id = '1x1'").fetchone()[0] == "Ana"


def test_rollback_restores_exactly_the_state_before_each_run(conn: psycopg.Connection) -> None:
    empty = checksum(conn)
    load(conn, "users", users("a@x.io", "b@x.io"), "run-1")
    load(conn, "bookings", bookings(3), "run-1")
    after_first = checksum(conn)
    changed = users("a@x.io", "b@x.io", "c@x.io")
    changed[1]["First Name"] = "Bea"
    load(conn, "users", changed, "run-2")
    load(conn, "bookings", bookings(5), "run-2")
    assert checksum(conn) != after_first
    assert rollback_run(conn, SCHEMAS, "run-2") == {"restored": 1, "recreated": 0, "deleted": 3}
    assert checksum(conn) == after_first
    rollback_run(conn, SCHEMAS, "run-1")
    assert checksum(conn) == empty
    with pytest.raises(RollbackBlocked, match="already rolled back"):
        rollback_run(conn, SCHEMAS, "run-1")


def test_rollback_refuses_to_orphan_rows_created_after_cutover(conn: psycopg.Connection) -> None:
    load(conn, "users", users("a@x.io", "b@x.io"), "run-1")
    coach_id = conn.execute("SELECT id FROM users WHERE bubble_id = '1x2'").fetchone()[0]
    conn.execute(
        "INSERT INTO users (bubble_id, email, role, created_at, updated_at) VALUES ('native-1', 'n@x.io', 'client', now(), now())"
    )
    conn.execute(
        "INSERT INTO bookings (bubble_id, client_id, coach_id, session_start, duration_minutes, status, created_at, updated_at)"
        " SELECT 'native-b', id, %s, now(), 30, 'pending', now(), now() FROM users WHERE bubble_id = 'native-1'",
        (coach_id,),
    )
    conn.commit()
    before = checksum(conn)
    with pytest.raises(RollbackBlocked, match="changed nothing"):
        rollback_run(conn, SCHEMAS, "run-1")
    assert checksum(conn) == before


def test_rollback_script_is_the_same_undo(conn: psycopg.Connection, database_url: str) -> None:
    import shutil
    import subprocess

    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed")
    empty = checksum(conn)
    load(conn, "users", users("a@x.io", "b@x.io"), "run-1")
    script = rollback_script(conn, SCHEMAS, "run-1")
    conn.commit()
    done = subprocess.run([psql, database_url, "-q", "-f", "-"], input=script, text=True, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert checksum(conn) == empty


def test_unreachable_database_names_what_to_fix() -> None:
    with (
        pytest.raises(DatabaseUnavailable, match="Check DATABASE_URL") as err,
        connect("postgresql://u:secret@127.0.0.1:1/db"),
    ):
        pass
    assert "secret" not in str(err.value)


def test_rollback_of_an_older_run_waits_for_the_later_one(conn: psycopg.Connection) -> None:
    load(conn, "users", users("a@x.io", "b@x.io"), "run-1")
    load(conn, "users", users("a@x.io", "b@x.io", "c@x.io"), "run-2")
    before = checksum(conn)
    with pytest.raises(RollbackBlocked, match="roll back run-2 first"):
        rollback_run(conn, SCHEMAS, "run-1")
    assert checksum(conn) == before


def test_a_stream_of_records_loads_in_chunks_with_every_record_loaded_or_rejected(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from culturebridge_migration.loading import migrate

    monkeypatch.setattr(migrate, "CHUNK_RECORDS", 7)
    load(conn, "users", users("a@x.io", "b@x.io"), "run-1")
    records = bookings(40)
    records[3]["Status"] = "Lost"  # rejects in different chunks
    records[33]["Client"] = "1x404"
    pulled = []

    def stream():  # a generator: the load must not need len() or a second pass
        for record in records:
            pulled.append(record["_id"])
            yield record

    outcome = load(conn, "bookings", stream(), "run-2")
    assert pulled == [r["_id"] for r in records]
    assert (outcome.exported, outcome.loaded, len(outcome.rejects)) == (40, 38, 2)
    assert sorted(r.bubble_id for r in outcome.rejects) == ["2x3", "2x33"]
    assert conn.execute("SELECT count(*) FROM bookings").fetchone()[0] == 38
