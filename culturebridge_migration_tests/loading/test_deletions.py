"""Rows gone from Bubble, on a real PostgreSQL: reported, flagged or deleted, never breaking a row that needs them."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest

from culturebridge_migration.loading.deletions import UNCONFIRMED, DeletedRecords, Gone, gone_from_full_export, sweep
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import ENTITIES

pytestmark = pytest.mark.integration


@pytest.fixture
def loaded(db: Phase2Database, load: Callable, records: SimpleNamespace) -> Phase2Database:
    """Users 1x1..1x3 and two bookings of 1x1 with coach 1x2, from run-1."""
    load("users", records.users("a@x.io", "b@x.io", "c@x.io"), "run-1")
    load("bookings", records.bookings(2), "run-1")
    return db


def swept(db: Phase2Database, exported_ids: list[str], mode: DeletedRecords, run_id: str = "run-2"):
    db.register_run(run_id, "test")  # a table step registers its run before it sweeps
    gone = gone_from_full_export(db, ENTITIES["users"], exported_ids)
    return sweep(db, ENTITIES["users"], Gone(gone), mode, run_id)


def flags(db: Phase2Database) -> dict[str, str]:
    return dict(db.execute("SELECT bubble_id, reason FROM migration.deleted_in_bubble"))


def test_report_mode_changes_nothing(loaded: Phase2Database, table_sums: Callable) -> None:
    before = table_sums()
    result = swept(loaded, ["1x1"], DeletedRecords.REPORT)
    assert (result.deleted, result.flagged) == ([], {})
    assert table_sums() == before and flags(loaded) == {}


def test_flag_mode_lists_every_gone_row_and_keeps_it(loaded: Phase2Database) -> None:
    result = swept(loaded, ["1x1"], DeletedRecords.FLAG)
    assert result.flagged == {"1x2": "deleted in Bubble", "1x3": "deleted in Bubble"}
    assert loaded.scalar("SELECT count(*) FROM users") == 3
    assert flags(loaded) == result.flagged
    swept(loaded, ["1x1", "1x2"], DeletedRecords.FLAG, "run-3")  # 1x2 is back in Bubble
    assert flags(loaded) == {"1x3": "deleted in Bubble"}


def test_delete_mode_deletes_unreferenced_rows_and_keeps_referenced_ones_flagged(loaded: Phase2Database) -> None:
    result = swept(loaded, ["1x1"], DeletedRecords.DELETE)
    assert result.deleted == ["1x3"]  # 1x2 coaches both bookings
    assert result.flagged == {"1x2": "deleted in Bubble, kept: still referenced by bookings.coach_id"}
    assert sorted(b for (b,) in loaded.execute("SELECT bubble_id FROM users")) == ["1x1", "1x2"]
    saved = loaded.execute("SELECT bubble_id, action FROM migration.row_changes WHERE run_id = 'run-2'").fetchall()
    assert saved == [("1x3", "delete")]  # kept for the rollback


@pytest.mark.parametrize("bubble_id", ["native", None])  # an invented id, or none (the app's own sign-up)
def test_rows_the_app_created_are_never_considered(loaded: Phase2Database, bubble_id: str | None) -> None:
    loaded.execute(
        "INSERT INTO users (bubble_id, email, role, created_at, updated_at)"
        " VALUES (%s, 'n@x.io', 'client', now(), now())",
        (bubble_id,),
    )
    result = swept(loaded, ["1x1", "1x2", "1x3"], DeletedRecords.DELETE)
    assert (result.deleted, result.flagged) == ([], {})
    assert loaded.scalar("SELECT count(*) FROM users WHERE bubble_id IS NOT DISTINCT FROM %s", (bubble_id,)) == 1


def manifest(exported: int, *, modified_after: str | None = None, announced: int | None = None):
    from culturebridge_migration.sources.export_store import ExportManifest

    total = exported if announced is None else announced
    return ExportManifest(
        "users", "user", "test", total, exported, exported, 1, "", "run-2", modified_after=modified_after
    )


@pytest.mark.parametrize(
    "export",
    [
        None,  # no manifest at all
        manifest(1, modified_after="2026-01-01T00:00:00+00:00"),  # an incremental export
        manifest(1, announced=3),  # Bubble announced more than arrived
        manifest(2),  # the manifest promises more records than the load read
    ],
)
def test_deletion_acts_only_on_an_export_proven_whole_at_the_point_of_deletion(
    loaded: Phase2Database, load: Callable, records: SimpleNamespace, export
) -> None:
    outcome = load("users", records.users("a@x.io")[:1], "run-2", deleted_records=DeletedRecords.DELETE, export=export)
    assert outcome.sweep is None
    assert loaded.scalar("SELECT count(*) FROM users") == 3
    assert flags(loaded) == {}


def bubble_answers(*alive: str) -> Callable:
    """Bubble's answers by id: the records in `alive` are still there, every other one is 404."""
    asked: list[str] = []

    def still_in_bubble(entity, bubble_ids: list[str]) -> set[str]:
        asked.extend(bubble_ids)
        return set(alive) & set(bubble_ids)

    still_in_bubble.asked = asked  # type: ignore[attr-defined]
    return still_in_bubble


def load_only_a_at_x(load: Callable, records: SimpleNamespace, mode: DeletedRecords, still_in_bubble: Callable):
    """run-2 loads a whole export holding 1x1 only: 1x2 and 1x3 are missing from it."""
    return load(
        "users",
        records.users("a@x.io"),
        "run-2",
        deleted_records=mode,
        export=manifest(1),
        still_in_bubble=still_in_bubble,
    )


def test_a_whole_export_sweeps_the_rows_bubble_confirms_gone_by_id(
    loaded: Phase2Database, load: Callable, records: SimpleNamespace
) -> None:
    bubble = bubble_answers()
    outcome = load_only_a_at_x(load, records, DeletedRecords.DELETE, bubble)
    assert outcome.sweep is not None and outcome.sweep.deleted == ["1x3"]
    assert sorted(bubble.asked) == ["1x2", "1x3"]  # every row missing from the export, asked before anything


@pytest.mark.parametrize("mode", [DeletedRecords.FLAG, DeletedRecords.DELETE])
def test_a_row_missing_from_a_whole_export_but_alive_in_bubble_is_left_as_it_is(
    loaded: Phase2Database, load: Callable, records: SimpleNamespace, table_sums: Callable, mode: DeletedRecords
) -> None:
    before = table_sums()
    outcome = load_only_a_at_x(load, records, mode, bubble_answers("1x2", "1x3"))  # Bubble still has both
    assert outcome.sweep is not None
    assert (outcome.sweep.deleted, outcome.sweep.flagged, outcome.sweep.alive) == ([], {}, ["1x2", "1x3"])
    assert table_sums() == before and flags(loaded) == {}


def test_rows_missing_from_files_nobody_can_ask_by_id_are_flagged_never_deleted(
    loaded: Phase2Database, load: Callable, records: SimpleNamespace
) -> None:
    outcome = load_only_a_at_x(load, records, DeletedRecords.DELETE, lambda entity, ids: None)  # CSV: no one to ask
    assert outcome.sweep is not None and not outcome.sweep.confirmed
    assert outcome.sweep.deleted == []
    assert flags(loaded) == {"1x2": UNCONFIRMED, "1x3": UNCONFIRMED}
    assert loaded.scalar("SELECT count(*) FROM users") == 3


@pytest.mark.parametrize("hostile", ["1x4\x00", ["1x4"], "1x4\n", "9" * 500])
def test_a_hostile_id_in_a_whole_export_is_a_reject_and_the_sweep_still_runs(
    loaded: Phase2Database, load: Callable, records: SimpleNamespace, hostile: object
) -> None:
    exported = records.users("a@x.io", "b@x.io", "c@x.io", "d@x.io")
    exported[3]["_id"] = hostile  # a NUL once crashed the staging of the export's ids (COPY)
    outcome = load(
        "users",
        exported,
        "run-2",
        deleted_records=DeletedRecords.DELETE,
        export=manifest(4),
        still_in_bubble=bubble_answers(),
    )
    assert [(r.column, r.reason) for r in outcome.rejects] == [("bubble_id", "invalid_value")]
    assert outcome.exported == outcome.loaded + len(outcome.rejects) == 4
    assert outcome.sweep is not None and outcome.sweep.deleted == []


def test_a_run_whose_only_change_is_new_flags_is_the_last_run_and_its_rollback_takes_them_back(
    loaded: Phase2Database,
) -> None:
    from culturebridge_migration.loading.rollback import last_run, rollback_run

    swept(loaded, ["1x1"], DeletedRecords.FLAG)  # run-2 flags 1x2 and 1x3, changes no row
    assert flags(loaded) == {"1x2": "deleted in Bubble", "1x3": "deleted in Bubble"}
    assert last_run(loaded) == "run-2"
    rollback_run(loaded, "run-2")
    assert flags(loaded) == {}
