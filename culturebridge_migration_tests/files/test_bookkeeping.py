"""`{migration}.files` on a real PostgreSQL: created idempotently, written, read back."""

from __future__ import annotations

import psycopg
import pytest

from culturebridge_migration.files.bookkeeping import copied_files, ensure_files_table, file_rows, save_file_results
from culturebridge_migration.files.types import CopyResult, FileRef

pytestmark = pytest.mark.integration

SCHEMA = 'mig "files"'  # a name that only survives proper quoting
PHOTO = FileRef("users", "1x1", "profile_photo_url", "//s3.amazonaws.com/appforest_uf/f1/a.jpg")
SHARED = FileRef("resources", "2x1", "file_url", "//x.cdn.bubble.io/f2/guide.pdf")
SHARED_AGAIN = FileRef("resources", "2x2", "file_url", "//x.cdn.bubble.io/f2/guide.pdf")
GONE = FileRef("resources", "2x3", "file_url", "//x.cdn.bubble.io/f3/gone.pdf")


def copied(key: str, size: int = 10) -> CopyResult:
    return CopyResult("copied", key, f"https://files.example.org/{key}", size, "ab" * 32, "application/pdf")


MISSING = CopyResult("missing", "x.cdn.bubble.io/f3/gone.pdf", reason="Bubble no longer has this file (404)")


@pytest.fixture
def conn(database_url: str) -> psycopg.Connection:
    with psycopg.connect(database_url, autocommit=True) as connection:
        ensure_files_table(connection, SCHEMA)
        yield connection


def test_creating_the_table_twice_changes_nothing(conn: psycopg.Connection) -> None:
    save_file_results(conn, SCHEMA, [(PHOTO, copied("a"))], "run-1")

    ensure_files_table(conn, SCHEMA)

    assert [row.ref for row in file_rows(conn, SCHEMA)] == [PHOTO]


def test_results_read_back_as_they_were_saved(conn: psycopg.Connection) -> None:
    results = [(PHOTO, copied("a")), (SHARED, copied("g")), (SHARED_AGAIN, copied("g")), (GONE, MISSING)]

    assert save_file_results(conn, SCHEMA, results, "run-1") == 4

    rows = file_rows(conn, SCHEMA)
    assert [(row.ref, row.result) for row in rows] == sorted(results, key=lambda pair: pair[0])
    assert {row.run_id for row in rows} == {"run-1"}
    assert [row.ref for row in file_rows(conn, SCHEMA, entity="users")] == [PHOTO]


def test_the_links_not_copied_are_read_without_the_copied_ones(conn: psycopg.Connection) -> None:
    """A cutover lists a table's missing and failed links; reading its 40k copied ones too cost 0.6 s."""
    save_file_results(conn, SCHEMA, [(SHARED, copied("g")), (SHARED_AGAIN, copied("g")), (GONE, MISSING)], "run-1")

    rows = file_rows(conn, SCHEMA, entity="resources", not_copied=True)

    assert [(row.ref, row.result) for row in rows] == [(GONE, MISSING)]


def test_copied_files_are_known_by_their_original_url(conn: psycopg.Connection) -> None:
    save_file_results(conn, SCHEMA, [(PHOTO, copied("a")), (SHARED, copied("g")), (GONE, MISSING)], "run-1")

    assert copied_files(conn, SCHEMA) == {PHOTO.url: copied("a"), SHARED.url: copied("g")}


def test_the_copies_of_some_urls_are_read_without_the_others(conn: psycopg.Connection) -> None:
    """A cutover's few new links are matched against their own copies, not against all 40k (0.6 s)."""
    save_file_results(conn, SCHEMA, [(PHOTO, copied("a")), (SHARED, copied("g")), (GONE, MISSING)], "run-1")

    held = copied_files(conn, SCHEMA, urls=[SHARED.url, GONE.url, "//x.cdn.bubble.io/never/seen.pdf"])

    assert held == {SHARED.url: copied("g")}


def test_saving_an_unchanged_result_writes_no_row(conn: psycopg.Connection) -> None:
    save_file_results(conn, SCHEMA, [(PHOTO, copied("a"))], "run-1")

    assert save_file_results(conn, SCHEMA, [(PHOTO, copied("a"))], "run-2") == 0
    assert [row.run_id for row in file_rows(conn, SCHEMA)] == ["run-1"]


def test_a_new_outcome_replaces_the_old_one_and_names_its_run(conn: psycopg.Connection) -> None:
    save_file_results(conn, SCHEMA, [(GONE, MISSING)], "run-1")

    assert save_file_results(conn, SCHEMA, [(GONE, copied("x.cdn.bubble.io/f3/gone.pdf"))], "run-2") == 1

    [row] = file_rows(conn, SCHEMA)
    assert (row.result.status, row.result.reason, row.run_id) == ("copied", None, "run-2")


def test_a_record_whose_file_changed_keeps_the_row_of_its_old_file(conn: psycopg.Connection) -> None:
    new_photo = FileRef(PHOTO.entity, PHOTO.bubble_id, PHOTO.column, "//s3.amazonaws.com/appforest_uf/f9/b.jpg")
    save_file_results(conn, SCHEMA, [(PHOTO, copied("a"))], "run-1")
    save_file_results(conn, SCHEMA, [(new_photo, copied("b"))], "run-2")

    assert [row.ref.url for row in file_rows(conn, SCHEMA)] == [PHOTO.url, new_photo.url]


def test_a_copied_row_without_its_checksum_is_refused(conn: psycopg.Connection) -> None:
    incomplete = CopyResult("copied", "a", "https://files.example.org/a", 10, None, None)

    with pytest.raises(psycopg.errors.CheckViolation):
        save_file_results(conn, SCHEMA, [(PHOTO, incomplete)], "run-1")
