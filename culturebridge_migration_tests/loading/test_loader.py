"""Loading and upserts against a real PostgreSQL, without Dagster."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest

from culturebridge_migration.loading.phase2_db import Phase2Database

pytestmark = pytest.mark.integration


def test_rerun_upserts_by_bubble_id_without_duplicates_or_writes(
    db: Phase2Database, load: Callable, records: SimpleNamespace
) -> None:
    first = load("users", records.users("a@x.io", "b@x.io", "bad"), "run-1")
    ids = db.execute("SELECT bubble_id, id FROM users ORDER BY id").fetchall()
    again = load("users", records.users("a@x.io", "b@x.io", "bad"), "run-2")
    assert (first.result.inserted, first.loaded, len(first.rejects)) == (2, 2, 1)
    assert (again.result.inserted, again.result.updated, again.result.unchanged) == (0, 0, 2)
    assert db.execute("SELECT bubble_id, id FROM users ORDER BY id").fetchall() == ids
    assert db.scalar("SELECT count(*) FROM migration.row_changes WHERE run_id = 'run-2'") == 0


def test_changed_record_is_updated_in_place(db: Phase2Database, load: Callable, records: SimpleNamespace) -> None:
    load("users", records.users("a@x.io", "b@x.io"), "run-1")
    changed = records.users("a@x.io", "b@x.io")
    changed[0]["First Name"] = "Ana"
    outcome = load("users", changed, "run-2")
    assert (outcome.result.inserted, outcome.result.updated) == (0, 1)
    assert db.scalar("SELECT first_name FROM users WHERE bubble_id = '1x1'") == "Ana"


def test_a_stream_of_records_loads_in_chunks_with_every_record_loaded_or_rejected(
    db: Phase2Database, load: Callable, records: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from culturebridge_migration.loading import migrate

    monkeypatch.setattr(migrate, "CHUNK_RECORDS", 7)
    load("users", records.users("a@x.io", "b@x.io"), "run-1")
    bookings = records.bookings(40)
    bookings[3]["Status"] = "Lost"  # rejects in different chunks
    bookings[33]["Client"] = "1x404"
    pulled = []

    def stream():  # a generator: the load must not need len() or a second pass
        for record in bookings:
            pulled.append(record["_id"])
            yield record

    outcome = load("bookings", stream(), "run-2")
    assert pulled == [r["_id"] for r in bookings]
    assert (outcome.exported, outcome.loaded, len(outcome.rejects)) == (40, 38, 2)
    assert sorted(r.bubble_id for r in outcome.rejects) == ["2x3", "2x33"]
    assert db.scalar("SELECT count(*) FROM bookings") == 38


def test_rejects_are_kept_with_every_part_a_person_needs(
    db: Phase2Database, load: Callable, records: SimpleNamespace
) -> None:
    from culturebridge_migration.loading.bookkeeping import read_rejects

    load("users", records.users("a@x.io", "not-an-email"), "run-1")
    (reject,) = read_rejects(db, "run-1")
    assert (reject.entity, reject.bubble_id, reject.field, reject.column) == (
        "users",
        "1x2",
        "authentication.email.email",
        "email",
    )
    assert (reject.value, reject.reason) == ("not-an-email", "invalid_email")
    assert "not a valid email address" in reject.message


def test_a_reference_to_a_rejected_record_says_why_that_one_was_rejected(
    db: Phase2Database, load: Callable, records: SimpleNamespace
) -> None:
    load("users", records.users("a@x.io", "b@x.io", "bad"), "run-1")
    booking = {**records.bookings(1)[0], "Client": "1x3"}
    (reject,) = load("bookings", [booking], "run-1").rejects
    assert reject.reason == "rejected_reference" and "(invalid_email)" in reject.message


def test_a_load_analyzes_its_table_only_when_it_changed_enough_of_it_to_move_the_plans(
    db: Phase2Database, load: Callable, records: SimpleNamespace
) -> None:
    """As autovacuum does: 50 rows + 10% of the table. At cutover, an ANALYZE of every large table for a
    few changed rows cost seconds of downtime; after a bulk load the checks must plan on what is there."""

    def planned_rows() -> float:
        return db.scalar("SELECT reltuples FROM pg_class WHERE oid = 'public.bookings'::regclass")

    load("users", records.users("a@x.io", "b@x.io"), "run-0")
    load("bookings", records.bookings(600), "run-1")
    assert planned_rows() == 600  # a first load: analyzed
    load("bookings", records.bookings(650), "run-2")
    assert planned_rows() == 600  # 50 new rows, below 50 + 60: the statistics stand
    load("bookings", records.bookings(800), "run-3")
    assert planned_rows() == 800  # 150 new rows: analyzed


def test_the_id_map_learns_of_a_table_loaded_first_however_many_rows_it_holds_already(
    db: Phase2Database, load: Callable, records: SimpleNamespace
) -> None:
    """The id map holds every table's rows: a first load of 55 posts beside 600 bookings is not 10% of it,
    but without statistics for the posts a check joining the map planned a nested loop (70 s for 50k)."""
    load("users", records.users("a@x.io", "b@x.io"), "run-1")
    load("bookings", records.bookings(600), "run-2")
    posts = [
        {"_id": f"3x{i}", "Created Date": "2025-11-05T14:03:22.120Z", "Author": "1x1", "Title": f"post {i}"}
        for i in range(55)
    ]
    assert load("posts", posts, "run-3").result.inserted == 55
    assert db.scalar("SELECT reltuples FROM pg_class WHERE oid = 'migration.id_map'::regclass") == 2 + 600 + 55


def test_a_small_load_asks_phase_2_only_for_the_records_it_references(
    db: Phase2Database, load: Callable, records: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cutover's 226 payments need their bookings' ids, not the 200k of the bookings table (0.6 s)."""
    load("users", records.users("a@x.io", "b@x.io", "c@x.io", "bad"), "run-1")
    asked, lookups = [], db.reference_lookups
    monkeypatch.setattr(db, "reference_lookups", lambda entity, only=None: asked.append(only) or lookups(entity, only))
    bookings = records.bookings(3)
    bookings[1]["Client"], bookings[2]["Client"] = "1x4", "1x9"  # rejected (invalid email), never exported
    outcome = load("bookings", bookings, "run-2")
    assert asked == [{"users": {"1x1", "1x2", "1x4", "1x9"}}]
    assert outcome.result.inserted == 1
    assert sorted(r.reason for r in outcome.rejects) == ["missing_reference", "rejected_reference"]


def test_an_id_postgresql_cannot_hold_is_looked_up_as_absent(
    db: Phase2Database, load: Callable, records: SimpleNamespace
) -> None:
    from culturebridge_migration.mapping.entities import ENTITIES

    load("users", records.users("a@x.io"), "run-1")
    lookups = db.reference_lookups(ENTITIES["bookings"], only={"users": {"1x1", "1x1\x00"}})
    assert set(lookups["users"].ids) == {"1x1"}


def test_a_small_load_looks_up_the_records_the_teams_corrections_point_at(
    db: Phase2Database, load: Callable, records: SimpleNamespace
) -> None:
    from culturebridge_migration.mapping.corrections import Correction, EntityFixes
    from culturebridge_migration.mapping.entities import ENTITIES

    load("users", records.users("a@x.io", "b@x.io", "c@x.io"), "run-1")
    booking = {**records.bookings(1)[0], "Client": "1x404"}  # a client deleted in Bubble; the team points it at 1x3
    fixes = EntityFixes(ENTITIES["bookings"], "ops", [Correction("bookings", booking["_id"], "Client", "1x3")], {})
    outcome = load("bookings", [booking], "run-2", decisions=fixes)
    assert (outcome.result.inserted, outcome.rejects) == (1, [])
    assert fixes.applied  # remembered once, by the load itself
