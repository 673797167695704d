"""The checks as data: which exist, what an export's completeness, the kept types and the files say, how long
each took. Pure."""

from __future__ import annotations

import dataclasses

from culturebridge_migration.files.table_files import TableFiles
from culturebridge_migration.files.types import FileRef
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.sources.export_store import ExportManifest
from culturebridge_migration.validation.checks import (
    EXTRA_TYPES_COMPLETE_CHECK,
    RECORDS_KEPT_CHECK,
    Outcome,
    TableCheck,
    check_export_complete,
    describe_incomplete_export,
    table_checks,
)
from culturebridge_migration.validation.file_checks import FilesInputs, check_files_copied, check_files_missing


def manifest(announced: int, exported: int, unique: int, duplicate_ids: int = 0) -> ExportManifest:
    return ExportManifest(
        "posts",
        "post",
        "test",
        announced,
        exported,
        unique,
        1,
        "2025-11-05T14:03:22Z",
        "run-1",
        duplicate_ids=duplicate_ids,
    )


def test_an_export_is_complete_when_every_announced_record_arrived_once() -> None:
    outcome = check_export_complete(manifest(300, 300, 300))
    assert (outcome.passed, outcome.offending) == (True, 0)


def test_missing_records_fail_the_export_check_and_say_how_many() -> None:
    outcome = check_export_complete(manifest(308, 300, 300))
    assert (outcome.passed, outcome.offending, outcome.details["missing"]) == (False, 8, 8)
    assert describe_incomplete_export(manifest(308, 300, 300)).startswith(
        "Bubble announced 308 records, 300 distinct arrived; 8 missing"
    )


def test_an_id_a_file_holds_twice_is_a_duplicate_not_a_missing_record() -> None:
    outcome = check_export_complete(manifest(307, 308, 307))
    assert not outcome.passed
    assert (outcome.details["missing"], outcome.details["duplicate_ids"]) == (0, 1)


def test_an_id_bubble_sent_twice_is_reported_as_a_duplicate_beside_the_record_it_hid() -> None:
    outcome = check_export_complete(manifest(308, 307, 307, duplicate_ids=1))
    assert (outcome.passed, outcome.details["missing"], outcome.details["duplicate_ids"]) == (False, 1, 1)
    assert "1 missing; 1 _id(s) arrived twice" in describe_incomplete_export(manifest(308, 307, 307, duplicate_ids=1))


def test_every_table_has_the_completeness_sample_and_deletion_checks_and_its_rules() -> None:
    names = {entity: [c.name for c in table_checks(ENTITIES[entity])] for entity in ENTITIES}
    for entity, checks in names.items():
        assert checks[:3] == ["row_counts", "sample_matches_export", "deleted_in_bubble"], entity
        assert len(checks) == len(set(checks)), entity
    assert "no_orphaned_payments" in names["payments"] and "amount_positive" in names["payments"]
    assert "valid_emails" in names["users"]


def test_a_check_records_how_long_it_took() -> None:
    check = TableCheck("slow", "WARN", "takes a moment", lambda inputs: Outcome(True, 0))
    outcome = check.evaluate(None)  # type: ignore[arg-type]
    assert outcome.passed and outcome.seconds > 0


def test_an_incomplete_export_says_why_in_its_summary() -> None:
    assert check_export_complete(manifest(300, 300, 300)).summary is None
    assert check_export_complete(manifest(308, 300, 300)).summary == describe_incomplete_export(manifest(308, 300, 300))


def test_extra_types_fail_by_name_when_one_was_not_exported_whole() -> None:
    whole, partial = manifest(3, 3, 3), dataclasses.replace(manifest(5, 4, 4), bubble_type="review")
    outcome = EXTRA_TYPES_COMPLETE_CHECK.evaluate([whole, partial])
    assert (outcome.passed, outcome.offending, outcome.sample_ids) == (False, 1, ["review"])
    assert EXTRA_TYPES_COMPLETE_CHECK.evaluate([whole]).passed and EXTRA_TYPES_COMPLETE_CHECK.blocking


def test_a_kept_type_that_lost_records_is_named() -> None:
    counts = {"review": {"exported": 5, "kept": 3, "rejected": 1}, "tag": {"exported": 2, "kept": 2, "rejected": 0}}
    outcome = RECORDS_KEPT_CHECK.evaluate(counts)
    assert (outcome.passed, outcome.offending, outcome.sample_ids) == (False, 1, ["review"])


def test_files_failed_and_missing_are_counted_by_record_with_their_reasons_and_urls() -> None:
    a, b = FileRef("users", "u1", "photo", "//s3/a.png"), FileRef("users", "u2", "photo", "//s3/b.png")
    files = TableFiles("users", 3, missing=[b], failed=[(a, "timeout"), (dataclasses.replace(a, url="//s3/c"), "500")])
    copied, missing = check_files_copied(FilesInputs(files, False)), check_files_missing(FilesInputs(files, False))
    assert (copied.passed, copied.offending, copied.sample_ids, copied.details) == (
        False,
        1,
        ["u1"],
        {"reasons": ["500", "timeout"]},
    )
    assert (missing.passed, missing.sample_ids, missing.details) == (False, ["u2"], {"urls": ["//s3/b.png"]})
    rehearsed = check_files_copied(FilesInputs(TableFiles("users", 3), True))
    assert rehearsed.passed and rehearsed.details == {"reasons": [], "skipped": "rehearsal: nothing was copied"}
