"""One retry policy (issue 21): the file downloads follow the run's max_retries, as the Data API does."""

from __future__ import annotations

from pathlib import Path

from culturebridge_migration.defs.resources import BubbleResource, FilesResource
from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.fake_bubble.files import file_key
from culturebridge_migration.files.copier import FileCopier
from culturebridge_migration.files.storage import LocalFolderStorage
from culturebridge_migration.sources.bubble_api import BubbleClient
from culturebridge_migration.sources.http import RetryPolicy
from culturebridge_migration_tests.files.helpers import downloads, serve_files


def test_a_download_is_tried_max_retries_times_more_and_no_more(bubble: FakeBubble, tmp_path: Path) -> None:
    [url] = serve_files(bubble, 1)
    bubble.add_fault("500", times=100, file=url, status=503)
    retry = RetryPolicy(max_retries=2, backoff=0)

    with FileCopier(LocalFolderStorage(tmp_path), files_url=bubble.files_url, retry=retry) as copier:
        result = copier.copy_one(url)

    assert result.status == "failed"
    assert downloads(bubble)[file_key(url)] == 3


def test_a_body_cut_every_time_is_asked_for_max_retries_times_more(bubble: FakeBubble, tmp_path: Path) -> None:
    [url] = serve_files(bubble, 1)
    bubble.add_fault("cut", times=100, file=url)
    retry = RetryPolicy(max_retries=1, backoff=0)

    with FileCopier(LocalFolderStorage(tmp_path), files_url=bubble.files_url, retry=retry) as copier:
        copier.copy_one(url)

    assert downloads(bubble)[file_key(url)] == 2


def test_the_files_step_follows_the_runs_max_retries(bubble: FakeBubble, tmp_path: Path) -> None:
    source = BubbleResource(api_url=bubble.url, api_key="k", files_base_url=bubble.files_url, max_retries=1)

    with source.file_addresses() as files, FilesResource(target=str(tmp_path)).copier(files) as copier:
        assert copier.retry == RetryPolicy(max_retries=1)


def test_the_api_client_and_the_copier_share_the_policys_defaults(tmp_path: Path) -> None:
    client = BubbleClient("http://127.0.0.1:9/api/1.1", "k")
    copier = FileCopier(LocalFolderStorage(tmp_path))

    assert client.retry == copier.retry == RetryPolicy()
    client.close()
    copier.close()


def test_tries_wait_the_backoff_between_tries(monkeypatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr("culturebridge_migration.sources.http.time.sleep", waits.append)

    assert list(RetryPolicy(max_retries=4, backoff=0.5, backoff_max=1.5).tries()) == [1, 2, 3, 4, 5]
    assert waits == [0.5, 1.0, 1.5, 1.5]
