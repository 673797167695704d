"""The copier against the local Bubble server over real HTTP, into a folder and into S3."""

from __future__ import annotations

from pathlib import Path

import pytest

from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.fake_bubble.files import file_key
from culturebridge_migration.fake_bubble.sample import sample_files
from culturebridge_migration.files.copier import FileCopier
from culturebridge_migration.files.keys import storage_key
from culturebridge_migration.files.progress import CopyProgress
from culturebridge_migration.files.storage import FileStorage, FileStorageError, LocalFolderStorage, sha256_of
from culturebridge_migration.files.urls import BubbleFileMatcher, find_file_refs
from culturebridge_migration.sources.http import RetryPolicy
from culturebridge_migration.sources.sample_data import generate_sample
from culturebridge_migration_tests.files.helpers import downloads, serve_files, sha256


def copier_for(bubble: FakeBubble, storage: FileStorage, **options: object) -> FileCopier:
    options = {"workers": 4, "retry": RetryPolicy(max_retries=3, backoff=0.01), **options}
    return FileCopier(storage, files_url=bubble.files_url, **options)


def test_every_file_is_copied_once_byte_identical(bubble: FakeBubble, storage: FileStorage) -> None:
    files = serve_files(bubble, 12)
    urls = [*files, *list(files)[:3]]  # three files linked from two records each

    with copier_for(bubble, storage) as copier:
        results = dict(copier.copy(urls))

    assert set(results) == set(files)
    for url, content in files.items():
        result = results[url]
        assert (result.status, result.bytes, result.sha256) == ("copied", len(content), sha256(content))
        assert result.key == storage_key(url)
        assert result.public_url == storage.public_url(result.key)
        assert sha256_of(storage.read(result.key)) == sha256(content)
    assert downloads(bubble) == {file_key(url): 1 for url in files}


def test_the_content_type_bubble_served_is_kept(bubble: FakeBubble, storage: FileStorage) -> None:
    bubble.put_file("//x.cdn.bubble.io/f1/guide.pdf", b"%PDF-1.4 guide")

    with copier_for(bubble, storage) as copier:
        result = copier.copy_one("//x.cdn.bubble.io/f1/guide.pdf")

    assert result.content_type == "application/pdf"


def test_a_file_bubble_no_longer_has_is_missing_and_the_copy_goes_on(bubble: FakeBubble, storage: FileStorage) -> None:
    files = serve_files(bubble, 3)
    gone = "//abc123.cdn.bubble.io/f1690000000000x1/deleted.pdf"

    with copier_for(bubble, storage) as copier:
        results = dict(copier.copy([gone, *files]))

    assert results[gone].status == "missing"
    assert "no longer has this file (404)" in results[gone].reason
    assert [results[url].status for url in files] == ["copied"] * 3
    assert storage_key(gone) not in storage.stored_sizes()


def test_a_body_cut_mid_transfer_is_asked_again_and_stored_whole(bubble: FakeBubble, storage: FileStorage) -> None:
    [(url, content)] = serve_files(bubble, 1).items()
    bubble.add_fault("cut", times=2, file=url, fraction=0.6)

    with copier_for(bubble, storage) as copier:
        result = copier.copy_one(url)

    assert (result.status, result.sha256) == ("copied", sha256(content))
    assert sha256_of(storage.read(result.key)) == sha256(content)
    assert downloads(bubble)[file_key(url)] == 3


def test_a_body_cut_every_time_fails_and_is_never_stored(bubble: FakeBubble, storage: FileStorage) -> None:
    [url] = serve_files(bubble, 1)
    bubble.add_fault("cut", times=100, file=url)

    with copier_for(bubble, storage, retry=RetryPolicy(max_retries=2, backoff=0.01)) as copier:
        result = copier.copy_one(url)

    assert result.status == "failed"
    assert "kept breaking off" in result.reason
    assert storage.stored_sizes() == {}


def test_a_cut_download_leaves_no_partial_file_in_the_folder(bubble: FakeBubble, tmp_path: Path) -> None:
    [url] = serve_files(bubble, 1)
    bubble.add_fault("cut", times=100, file=url)

    with copier_for(bubble, LocalFolderStorage(tmp_path), retry=RetryPolicy(max_retries=1, backoff=0.01)) as copier:
        copier.copy_one(url)

    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []


@pytest.mark.parametrize(("kind", "params"), [("500", {"status": 503}), ("429", {}), ("drop", {})])
def test_transient_faults_are_retried(bubble: FakeBubble, storage: FileStorage, kind: str, params: dict) -> None:
    [(url, content)] = serve_files(bubble, 1).items()
    bubble.add_fault(kind, times=2, file=url, **params)

    with copier_for(bubble, storage) as copier:
        result = copier.copy_one(url)

    assert (result.status, result.sha256) == ("copied", sha256(content))


def test_a_server_error_that_lasts_fails_with_what_bubble_answered(bubble: FakeBubble, storage: FileStorage) -> None:
    [url] = serve_files(bubble, 1)
    bubble.add_fault("500", times=100, file=url, status=503)

    with copier_for(bubble, storage, retry=RetryPolicy(max_retries=2, backoff=0.01)) as copier:
        result = copier.copy_one(url)

    assert result.status == "failed"
    assert "503" in result.reason and "run again later" in result.reason


def test_a_server_that_does_not_answer_in_time_fails_with_the_timeout(bubble: FakeBubble, tmp_path: Path) -> None:
    [url] = serve_files(bubble, 1)
    bubble.add_fault("slow", times=2, file=url, seconds=1)

    with copier_for(
        bubble, LocalFolderStorage(tmp_path), retry=RetryPolicy(max_retries=1, backoff=0.01), timeout=0.2
    ) as copier:
        result = copier.copy_one(url)

    assert result.status == "failed"
    assert "did not answer within 0.2s" in result.reason


def test_an_unreachable_host_fails_with_a_reason(storage: FileStorage) -> None:
    with FileCopier(storage, retry=RetryPolicy(max_retries=0), files_url="http://127.0.0.1:9/_files") as copier:
        result = copier.copy_one("//x.cdn.bubble.io/f1/a.jpg")

    assert result.status == "failed"
    assert result.reason.startswith("cannot reach 127.0.0.1")


def test_progress_counts_every_file_and_its_bytes(bubble: FakeBubble, tmp_path: Path) -> None:
    files = serve_files(bubble, 6)
    seen: list[CopyProgress] = []

    with copier_for(bubble, LocalFolderStorage(tmp_path), on_progress=seen.append) as copier:
        list(copier.copy(files))

    assert [progress.files_done for progress in seen] == [1, 2, 3, 4, 5, 6]
    assert seen[-1].files_total == 6
    assert seen[-1].bytes_done == sum(map(len, files.values()))
    assert seen[-1].eta_seconds == 0


def test_every_file_of_the_bundled_sample_is_copied(tmp_path: Path) -> None:
    sample = generate_sample(users=40)
    served = sample_files(sample)
    rows = [
        {"bubble_id": record["_id"], "profile_photo_url": record.get("Profile Photo")}
        for record in sample.records["users"]
    ] + [{"bubble_id": record["_id"], "file_url": record.get("File")} for record in sample.records["resources"]]
    matcher = BubbleFileMatcher()
    urls = [ref.url for ref in find_file_refs("any", rows, ["profile_photo_url", "file_url"], matcher)]
    storage = LocalFolderStorage(tmp_path)

    with FakeBubble(files=served) as bubble, copier_for(bubble, storage) as copier:
        results = dict(copier.copy(urls))

    assert {file_key(url) for url in results} == set(served)
    assert {sha256(served[file_key(url)]) for url in results} == {
        sha256_of(storage.read(result.key)) for result in results.values()
    }


def test_a_storage_that_cannot_be_written_stops_the_copy(bubble: FakeBubble, tmp_path: Path) -> None:
    files = serve_files(bubble, 3)
    not_a_folder = tmp_path / "files"
    not_a_folder.write_text("a file where the folder should be")

    with (
        copier_for(bubble, LocalFolderStorage(not_a_folder)) as copier,
        pytest.raises(FileStorageError, match="Cannot write"),
    ):
        list(copier.copy(files))
