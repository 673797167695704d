"""Rows PostgreSQL refuses are set aside with its reason, and every other row loads, on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import psycopg
import pytest

from culturebridge_migration.loading import loader
from culturebridge_migration.loading.isolation import refusal_reject
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.mapping.mapper import map_records

pytestmark = pytest.mark.integration


@pytest.fixture
def people(db: Phase2Database, load: Callable, records: SimpleNamespace) -> Phase2Database:
    load("users", records.users("a@x.io", "b@x.io"), "run-0")
    return db


def noted(bookings: list[dict], *which: int, notes: str) -> list[dict]:
    for i in which:
        bookings[i] = {**bookings[i], "Notes": notes, "Modified Date": "2026-01-01T00:00:00.000Z"}
    return bookings


def test_a_check_constraint_the_app_added_later_rejects_only_the_rows_it_refuses(
    people: Phase2Database, load: Callable, records: SimpleNamespace
) -> None:
    load("bookings", records.bookings(6), "run-1")
    people.execute("ALTER TABLE bookings ADD CONSTRAINT notes_are_short CHECK (length(notes) < 20) NOT VALID")
    outcome = load("bookings", noted(records.bookings(6), 1, 4, notes="a note far too long for the app"), "run-2")
    assert sorted(r.bubble_id for r in outcome.rejects) == ["2x1", "2x4"]
    reject = outcome.rejects[0]
    assert reject.reason == "refused_by_database"
    assert 'violates check constraint "notes_are_short"' in reject.message
    assert "correct the record in Bubble, or the constraint" in reject.message
    assert (outcome.loaded, outcome.result.unchanged) == (4, 4)
    assert people.scalar("SELECT count(*) FROM migration.rejects WHERE run_id = 'run-2'") == 2
    assert (
        people.scalar("SELECT count(*) FROM migration.row_changes WHERE run_id = 'run-2'") == 0
    )  # nothing else changed


def test_a_first_load_copies_every_row_but_the_refused_ones(
    people: Phase2Database, load: Callable, records: SimpleNamespace
) -> None:
    people.execute("ALTER TABLE bookings ADD CONSTRAINT notes_are_short CHECK (length(notes) < 20)")
    bookings = noted(records.bookings(50), 7, 33, notes="a note far too long for the app")
    outcome = load("bookings", bookings, "run-1")
    assert sorted(r.bubble_id for r in outcome.rejects) == ["2x33", "2x7"]
    assert people.scalar("SELECT count(*) FROM bookings") == 48 == outcome.loaded
    assert people.scalar("SELECT count(*) FROM migration.id_map WHERE entity = 'bookings'") == 48


def test_a_value_larger_than_postgresql_indexes_is_a_reject_not_a_crash(
    people: Phase2Database, records: SimpleNamespace
) -> None:
    import random
    import string

    # The mapper refuses an _id longer than Bubble's itself; this row is built past it, to prove the loader's net.
    refs = people.reference_lookups(ENTITIES["bookings"])
    rows = map_records(ENTITIES["bookings"], records.bookings(5), refs).rows
    rows[2]["bubble_id"] = "".join(random.Random(1).choices(string.ascii_letters, k=12_000))  # no compression saves it
    people.register_run("run-1", "test")
    load = loader.load_rows(people, ENTITIES["bookings"], rows, "run-1")
    ((row, error),) = load.refused
    reject = refusal_reject(ENTITIES["bookings"], row, error)
    assert row["bubble_id"] == rows[2]["bubble_id"]
    assert reject.reason == "refused_by_database" and "larger than PostgreSQL allows" in reject.message


def test_text_postgresql_cannot_encode_is_found_among_the_rows_and_named(
    people: Phase2Database, records: SimpleNamespace
) -> None:
    # The mapper rejects lone surrogates itself; this row is built past it, to prove the loader's own net.
    refs = people.reference_lookups(ENTITIES["bookings"])
    rows = map_records(ENTITIES["bookings"], records.bookings(4), refs).rows
    rows[1]["notes"] = "broken \ud800 text"
    people.register_run("run-1", "test")
    load = loader.load_rows(people, ENTITIES["bookings"], rows, "run-1")
    ((row, error),) = load.refused
    assert row["bubble_id"] == rows[1]["bubble_id"] and isinstance(error, UnicodeEncodeError)
    assert load.result.loaded == 3


def test_an_error_that_is_not_about_a_row_fails_the_load(
    people: Phase2Database, records: SimpleNamespace, database_url: str
) -> None:
    refs = people.reference_lookups(ENTITIES["bookings"])
    rows = map_records(ENTITIES["bookings"], records.bookings(3), refs).rows
    pid = people.scalar("SELECT pg_backend_pid()")

    def rows_then_the_server_goes() -> object:
        yield rows[0]
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        yield from rows[1:]

    people.register_run("run-1", "test")
    with pytest.raises(psycopg.OperationalError):
        loader.load_rows(people, ENTITIES["bookings"], rows_then_the_server_goes(), "run-1")
