"""Files configuration from the environment variables DESIGN.md names."""

from __future__ import annotations

from pathlib import Path

import pytest

from culturebridge_migration.files.config import FilesConfig
from culturebridge_migration.files.storage import LocalFolderStorage, ObjectStoreStorage
from culturebridge_migration.files.urls import DEFAULT_FILE_HOST_PATTERNS


def test_with_nothing_set_files_go_to_the_local_folder() -> None:
    config = FilesConfig.from_env({})

    assert config == FilesConfig("./migration_files", None, DEFAULT_FILE_HOST_PATTERNS, 8)
    assert isinstance(config.storage({}), LocalFolderStorage)


def test_a_bucket_url_wins_over_the_folder(tmp_path: Path) -> None:
    env = {
        "MIGRATION_FILES_URL": "s3://team-files/bubble",
        "MIGRATION_FILES_DIR": str(tmp_path),
        "MIGRATION_FILES_PUBLIC_URL": "https://cdn.example.org/files",
        "AWS_REGION": "eu-west-1",
    }

    storage = FilesConfig.from_env(env).storage(env)

    assert isinstance(storage, ObjectStoreStorage)
    assert storage.public_url("a/b.pdf") == "https://cdn.example.org/files/a/b.pdf"


def test_hosts_and_workers_are_configurable() -> None:
    config = FilesConfig.from_env(
        {"MIGRATION_FILES_HOSTS": "files.example.org/, *.cdn.bubble.io", "MIGRATION_FILE_WORKERS": "3"}
    )

    assert config.workers == 3
    assert config.matcher()("//files.example.org/f1/a.png")
    assert not config.matcher()("//s3.amazonaws.com/appforest_uf/f1/a.png")


def test_a_worker_count_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(ValueError, match="MIGRATION_FILE_WORKERS"):
        FilesConfig.from_env({"MIGRATION_FILE_WORKERS": "eight"})
