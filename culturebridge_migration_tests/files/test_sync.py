"""Resumable copies with the bookkeeping on a real PostgreSQL: only what is not held yet is downloaded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.fake_bubble.files import file_key
from culturebridge_migration.files.bookkeeping import ensure_files_table, file_rows
from culturebridge_migration.files.content import WEB_PAGE
from culturebridge_migration.files.copier import FileCopier
from culturebridge_migration.files.keys import storage_key
from culturebridge_migration.files.storage import FileStorage, LocalFolderStorage, sha256_of
from culturebridge_migration.files.sync import FilesSummary, sync_files
from culturebridge_migration.files.types import FileRef
from culturebridge_migration.sources.http import RetryPolicy
from culturebridge_migration_tests.files.helpers import downloads, serve_files, sha256

pytestmark = pytest.mark.integration

SCHEMA = "migration"


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        ensure_files_table(connection, SCHEMA)
        yield connection


def photo_refs(files: dict[str, bytes]) -> list[FileRef]:
    return [FileRef("users", f"user{n}", "profile_photo_url", url) for n, url in enumerate(files)]


def run(
    conn: psycopg.Connection, bubble: FakeBubble, storage: FileStorage, refs: list[FileRef], run_id: str
) -> FilesSummary:
    with FileCopier(
        storage, workers=4, retry=RetryPolicy(max_retries=2, backoff=0.01), files_url=bubble.files_url
    ) as copier:
        return sync_files(conn, SCHEMA, refs, copier, run_id=run_id)


def test_a_first_run_copies_and_records_every_file(
    conn: psycopg.Connection, bubble: FakeBubble, storage: FileStorage
) -> None:
    files = serve_files(bubble, 8)
    refs = photo_refs(files)

    summary = run(conn, bubble, storage, refs, "run-1")

    assert (summary.copied, summary.held, summary.rows_written) == (8, 0, 8)
    rows = {row.ref: row for row in file_rows(conn, SCHEMA)}
    assert set(rows) == set(refs)
    for ref in refs:
        row = rows[ref]
        assert (row.result.status, row.run_id) == ("copied", "run-1")
        assert row.result.sha256 == sha256(files[ref.url]) == sha256_of(storage.read(row.result.key))
        assert summary.public_urls[ref.url] == row.result.public_url == storage.public_url(storage_key(ref.url))


def test_a_second_run_downloads_nothing_and_writes_no_row(
    conn: psycopg.Connection, bubble: FakeBubble, storage: FileStorage
) -> None:
    refs = photo_refs(serve_files(bubble, 8))
    run(conn, bubble, storage, refs, "run-1")
    mark = time.monotonic()

    summary = run(conn, bubble, storage, refs, "run-2")

    assert downloads(bubble, since=mark) == {}
    assert (summary.copied, summary.held, summary.rows_written) == (0, 8, 0)
    assert len(summary.public_urls) == 8


def test_an_incremental_sync_copies_only_the_new_uploads(
    conn: psycopg.Connection, bubble: FakeBubble, storage: FileStorage
) -> None:
    first = serve_files(bubble, 5, seed=1)
    run(conn, bubble, storage, photo_refs(first), "run-1")
    new = serve_files(bubble, 3, seed=2)
    mark = time.monotonic()

    run(conn, bubble, storage, photo_refs(first) + photo_refs(new), "run-2")

    assert downloads(bubble, since=mark) == {file_key(url): 1 for url in new}


def test_a_file_already_copied_for_another_record_is_not_downloaded_again(
    conn: psycopg.Connection, bubble: FakeBubble, storage: FileStorage
) -> None:
    [url] = serve_files(bubble, 1)
    run(conn, bubble, storage, [FileRef("resources", "r1", "file_url", url)], "run-1")
    mark = time.monotonic()

    summary = run(conn, bubble, storage, [FileRef("resources", "r2", "file_url", url)], "run-2")

    assert downloads(bubble, since=mark) == {}
    assert summary.rows_written == 1
    assert {row.ref.bubble_id for row in file_rows(conn, SCHEMA)} == {"r1", "r2"}


def test_a_file_gone_from_storage_is_copied_again(conn: psycopg.Connection, bubble: FakeBubble, tmp_path: Path) -> None:
    storage = LocalFolderStorage(tmp_path)
    files = serve_files(bubble, 3)
    run(conn, bubble, storage, photo_refs(files), "run-1")
    lost, damaged, _kept = files
    (tmp_path / storage_key(lost)).unlink()
    (tmp_path / storage_key(damaged)).write_bytes(b"short")
    mark = time.monotonic()

    run(conn, bubble, storage, photo_refs(files), "run-2")

    assert downloads(bubble, since=mark) == {file_key(lost): 1, file_key(damaged): 1}
    assert sha256_of(storage.read(storage_key(damaged))) == sha256(files[damaged])


def test_missing_and_failed_files_are_recorded_with_their_reasons_and_asked_again(
    conn: psycopg.Connection, bubble: FakeBubble, storage: FileStorage
) -> None:
    files = serve_files(bubble, 3)
    gone, flaky, fine = files
    bubble.delete_file(gone)
    bubble.add_fault("500", times=100, file=flaky, status=502)

    summary = run(conn, bubble, storage, photo_refs(files), "run-1")

    assert (summary.copied, summary.missing, summary.failed) == (1, 1, 1)
    statuses = {row.ref.url: (row.result.status, row.result.reason) for row in file_rows(conn, SCHEMA)}
    assert statuses[gone][0] == "missing" and "404" in statuses[gone][1]
    assert statuses[flaky][0] == "failed" and "502" in statuses[flaky][1]
    assert statuses[fine] == ("copied", None)

    bubble.clear_faults()
    mark = time.monotonic()
    summary = run(conn, bubble, storage, photo_refs(files), "run-2")

    assert downloads(bubble, since=mark) == {file_key(gone): 1, file_key(flaky): 1}
    assert (summary.copied, summary.missing, summary.held) == (1, 1, 1)


def test_an_audit_run_recopies_a_stored_file_whose_bytes_changed_but_not_its_size(
    conn: psycopg.Connection, bubble: FakeBubble, tmp_path: Path
) -> None:
    storage = LocalFolderStorage(tmp_path)
    files = serve_files(bubble, 2)
    run(conn, bubble, storage, photo_refs(files), "run-1")
    tampered = next(iter(files))
    (tmp_path / storage_key(tampered)).write_bytes(b"\0" * len(files[tampered]))
    mark = time.monotonic()

    run(conn, bubble, storage, photo_refs(files), "run-2")
    assert downloads(bubble, since=mark) == {}  # the size matches: an ordinary run trusts it

    with FileCopier(storage, retry=RetryPolicy(backoff=0.01), files_url=bubble.files_url) as copier:
        sync_files(conn, SCHEMA, photo_refs(files), copier, run_id="audit", verify_checksums=True)

    assert downloads(bubble, since=mark) == {file_key(tampered): 1}
    assert sha256_of(storage.read(storage_key(tampered))) == sha256(files[tampered])


def test_what_the_column_does_not_hold_is_recorded_failed_and_keeps_bubbles_link(
    conn: psycopg.Connection, bubble: FakeBubble, tmp_path: Path
) -> None:
    login_page = "//x.cdn.bubble.io/f1/private.jpg"
    bubble.put_file(login_page, b"<!DOCTYPE html><html><body>Log in</body></html>", "text/html")
    guide = "//x.cdn.bubble.io/f2/guide.pdf"
    bubble.put_file(guide, b"%PDF-1.4 a guide")
    refs = [
        FileRef("users", "u1", "profile_photo_url", login_page),
        FileRef("users", "u2", "profile_photo_url", guide),  # a PDF where a photo belongs
        FileRef("resources", "r1", "file_url", guide),  # the same PDF where any file goes
    ]

    summary = run(conn, bubble, LocalFolderStorage(tmp_path), refs, "run-1")

    rows = {row.ref.bubble_id: row.result for row in file_rows(conn, SCHEMA)}
    assert (rows["u1"].status, rows["u1"].reason) == ("failed", WEB_PAGE)
    assert rows["u2"].status == "failed" and "application/pdf" in rows["u2"].reason
    assert rows["r1"].status == "failed"  # one download per URL: the strictest column that links it decides
    assert summary.public_urls == {}  # nothing to point a row at: Phase 2 keeps Bubble's links
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []
