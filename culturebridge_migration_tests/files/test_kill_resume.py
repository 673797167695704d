"""A copy killed with kill -9 mid-run leaves no partial file, and the next run copies only what was missing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.fake_bubble.files import file_key
from culturebridge_migration.files.bookkeeping import ensure_files_table
from culturebridge_migration.files.keys import storage_key
from culturebridge_migration.files.storage import LocalFolderStorage, sha256_of
from culturebridge_migration_tests.files.helpers import downloads, serve_files, sha256

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCHEMA = "migration"
FILES = 40
KILL_AFTER = 6  # files recorded as copied
SCRIPT = "culturebridge_migration_tests.files.copy_files_script"


def start_copy(bubble: FakeBubble, database_url: str, folder: Path, urls_json: Path, run_id: str) -> subprocess.Popen:
    command = [sys.executable, "-m", SCRIPT, bubble.files_url, database_url, str(folder), str(urls_json), run_id]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def copied_urls(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(f"SELECT original_url FROM {SCHEMA}.files WHERE status = 'copied'").fetchall()
    return {url for (url,) in rows}


def wait_for_copies(process: subprocess.Popen, database_url: str, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(copied_urls(database_url)) < count:
        assert process.poll() is None, f"the copy ended before it was killed: {process.communicate()}"
        assert time.monotonic() < deadline, "the copy recorded too few files in time"
        time.sleep(0.05)


def test_a_run_killed_mid_copy_is_resumed_by_copying_only_what_was_missing(
    bubble: FakeBubble, database_url: str, tmp_path: Path
) -> None:
    files = serve_files(bubble, FILES)
    urls_json, folder = tmp_path / "urls.json", tmp_path / "files"
    urls_json.write_text(json.dumps(list(files)))
    with psycopg.connect(database_url, autocommit=True) as conn:
        ensure_files_table(conn, SCHEMA)
    bubble.add_fault("slow", times=FILES, file="*", seconds=0.3)  # two workers: about 7 files a second

    killed = start_copy(bubble, database_url, folder, urls_json, "run-1")
    wait_for_copies(killed, database_url, KILL_AFTER)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()

    recorded = copied_urls(database_url)
    assert KILL_AFTER <= len(recorded) < FILES
    stored = LocalFolderStorage(folder).stored_sizes()
    by_key = {storage_key(url): content for url, content in files.items()}
    assert all(size == len(by_key[key]) for key, size in stored.items()), "a partial file under its final key"
    mark = time.monotonic()

    rerun = start_copy(bubble, database_url, folder, urls_json, "run-2")
    output, errors = rerun.communicate(timeout=120)

    assert rerun.returncode == 0, errors
    assert downloads(bubble, since=mark) == {file_key(url): 1 for url in files if url not in recorded}
    assert json.loads(output) == {"copied": FILES - len(recorded), "held": len(recorded)}
    storage = LocalFolderStorage(folder)
    assert {storage_key(url): sha256(content) for url, content in files.items()} == {
        key: sha256_of(storage.read(key)) for key in storage.stored_sizes()
    }
