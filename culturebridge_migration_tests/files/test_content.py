"""The bytes are what the column says (issue 23): an image for an image column, never a web page, never
more than MIGRATION_FILE_MAX_BYTES, never longer than the time allowed; a failed copy leaves nothing stored."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from culturebridge_migration.defs.resources import resources_from_env
from culturebridge_migration.files.content import IMAGE_COLUMNS, WEB_PAGE
from culturebridge_migration.files.copier import FileCopier
from culturebridge_migration.files.storage import LocalFolderStorage
from culturebridge_migration.files.types import CopyResult
from culturebridge_migration.mapping.entities import ENTITIES, Kind
from culturebridge_migration.sources.http import RetryPolicy
from culturebridge_migration_tests.files.servers import Answer, ScriptedServer

PHOTO = "//x.cdn.bubble.io/f1/a.png"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(300)
PDF = b"%PDF-1.4\n" + bytes(300)
LOGIN_PAGE = b"<!DOCTYPE html>\n<html><head><title>Log in</title></head><body>Please log in</body></html>"


@pytest.fixture
def origin() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


def copy(
    origin: ScriptedServer, tmp_path: Path, answer: Answer, *, image: bool = True, **options: object
) -> CopyResult:
    origin.route("/_files/x.cdn.bubble.io/f1/a.png", answer)
    options = {"retry": RetryPolicy(max_retries=0, backoff=0), **options}
    with FileCopier(LocalFolderStorage(tmp_path / "files"), files_url=f"{origin.url}/_files", **options) as copier:
        return copier.copy_one(PHOTO, image=image)


def stored_files(tmp_path: Path) -> list[Path]:
    """Every file under the storage folder, temporary ones included."""
    return [path for path in tmp_path.rglob("*") if path.is_file()]


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "image/png"])
def test_a_web_page_where_a_file_belongs_is_a_failed_copy(
    origin: ScriptedServer, tmp_path: Path, content_type: str
) -> None:
    result = copy(origin, tmp_path, Answer(200, LOGIN_PAGE, {"Content-Type": content_type}), image=False)

    assert (result.status, result.reason) == ("failed", WEB_PAGE)
    assert WEB_PAGE == "Bubble answered with a web page: the file is private or gone"
    assert stored_files(tmp_path) == []


def test_an_image_column_gets_an_image_told_by_its_bytes(origin: ScriptedServer, tmp_path: Path) -> None:
    result = copy(origin, tmp_path, Answer(200, PDF, {"Content-Type": "image/png"}))

    assert result.status == "failed"
    assert "image" in result.reason and "application/pdf" in result.reason
    assert stored_files(tmp_path) == []


def test_an_image_is_copied_with_the_type_its_bytes_say(origin: ScriptedServer, tmp_path: Path) -> None:
    result = copy(origin, tmp_path, Answer(200, PNG, {"Content-Type": "application/octet-stream"}))

    assert (result.status, result.content_type, result.bytes) == ("copied", "image/png", len(PNG))


def test_a_file_column_takes_any_file_but_a_web_page(origin: ScriptedServer, tmp_path: Path) -> None:
    result = copy(origin, tmp_path, Answer(200, PDF, {"Content-Type": "application/pdf"}), image=False)

    assert (result.status, result.content_type) == ("copied", "application/pdf")


@pytest.mark.parametrize("announced", [True, False])
def test_a_file_larger_than_the_limit_is_a_failed_copy_with_its_size(
    origin: ScriptedServer, tmp_path: Path, announced: bool
) -> None:
    big = PNG + bytes(5_000)

    result = copy(origin, tmp_path, Answer(200, big, {"Content-Type": "image/png"}, length=announced), max_bytes=1_000)

    assert result.status == "failed"
    assert "1,000" in result.reason and (
        f"{len(big):,}" in result.reason if announced else "more than" in result.reason
    )
    assert stored_files(tmp_path) == []  # the temporary file written so far is gone too


def test_a_download_has_a_total_time_limit(origin: ScriptedServer, tmp_path: Path) -> None:
    """Each byte comes well within the read timeout, but the whole would take minutes."""
    result = copy(
        origin, tmp_path, Answer(200, PNG, {"Content-Type": "image/png"}, trickle=0.05), timeout=5, total_timeout=0.5
    )

    assert result.status == "failed"
    assert "0.5" in result.reason and "longer" in result.reason
    assert stored_files(tmp_path) == []


def test_the_image_columns_are_url_columns_of_the_field_table() -> None:
    url_columns = {(e.name, f.column) for e in ENTITIES.values() for f in e.fields if f.kind is Kind.URL}

    assert IMAGE_COLUMNS and url_columns >= IMAGE_COLUMNS


def test_the_size_limit_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATION_FILE_MAX_BYTES", "5000000")
    assert resources_from_env()["files"].max_bytes == 5_000_000

    monkeypatch.setenv("MIGRATION_FILE_MAX_BYTES", "100MB")
    with pytest.raises(ValueError, match="MIGRATION_FILE_MAX_BYTES is '100MB'"):
        resources_from_env()


def test_without_the_setting_the_limit_is_100_mb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIGRATION_FILE_MAX_BYTES", raising=False)
    assert resources_from_env()["files"].max_bytes == 100 * 1024 * 1024


FULL_DISK_COPY = """
import sys
from culturebridge_migration.files.storage import FileStorageError, LocalFolderStorage
try:
    LocalFolderStorage(sys.argv[1]).write("f1/big.bin", iter([bytes(64 * 1024)] * 8), content_type=None, size=None)
except FileStorageError as exc:
    print("refused:", exc)
"""


def test_a_full_disk_leaves_no_temporary_file(tmp_path: Path) -> None:
    """The file grows past what the disk takes (a file size limit stands in for the full disk)."""

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (100 * 1024, 100 * 1024))

    folder = tmp_path / "files"
    done = subprocess.run(
        [sys.executable, "-B", "-c", FULL_DISK_COPY, str(folder)],
        preexec_fn=small_disk,  # no threads start between fork and exec here
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )

    assert "refused: Cannot write files under" in done.stdout, done.stderr
    assert stored_files(tmp_path) == []
