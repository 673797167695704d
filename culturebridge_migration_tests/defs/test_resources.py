"""The resources the environment configures: the README's variables, and their defaults."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import psycopg
import pytest

from culturebridge_migration.defs.resources import FilesResource, PostgresResource, resources_from_env
from culturebridge_migration.files.fetch import FileSource
from culturebridge_migration.files.storage import LocalFolderStorage, ObjectStoreStorage, open_storage
from culturebridge_migration.files.urls import DEFAULT_FILE_HOST_PATTERNS
from culturebridge_migration.settings import SETTINGS

FILES_VARIABLES = (
    "MIGRATION_FILES_URL",
    "MIGRATION_FILES_DIR",
    "MIGRATION_FILES_PUBLIC_URL",
    "MIGRATION_FILES_HOSTS",
    "MIGRATION_FILE_WORKERS",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment with none of the files variables set; the test sets its own."""
    for name in FILES_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def files_resource() -> FilesResource:
    """The `files` resource as a run sees it: its EnvVars resolved."""
    resource = resources_from_env()["files"]
    assert isinstance(resource, FilesResource)
    return resource.process_config_and_initialize()


def test_with_nothing_set_files_go_to_the_local_folder(env: pytest.MonkeyPatch) -> None:
    files = files_resource()
    assert (files.target, files.public_base_url, files.workers) == ("./migration_files", None, 8)
    assert tuple(files.host_patterns.split(",")) == DEFAULT_FILE_HOST_PATTERNS
    assert isinstance(open_storage(files.target), LocalFolderStorage)


def test_a_bucket_url_wins_over_the_folder(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("MIGRATION_FILES_URL", "s3://team-files/bubble")
    env.setenv("MIGRATION_FILES_DIR", str(tmp_path))
    env.setenv("MIGRATION_FILES_PUBLIC_URL", "https://cdn.example.org/files")
    env.setenv("AWS_REGION", "eu-west-1")
    files = files_resource()
    storage = open_storage(files.target, public_base_url=files.public_base_url)
    assert isinstance(storage, ObjectStoreStorage)
    assert storage.public_url("a/b.pdf") == "https://cdn.example.org/files/a/b.pdf"


def test_hosts_and_workers_are_configurable(env: pytest.MonkeyPatch) -> None:
    env.setenv("MIGRATION_FILES_HOSTS", "files.example.org/, *.cdn.bubble.io")
    env.setenv("MIGRATION_FILE_WORKERS", "3")
    files = files_resource()
    assert files.workers == 3
    assert files.matcher()("//files.example.org/f1/a.png")
    assert not files.matcher()("//s3.amazonaws.com/appforest_uf/f1/a.png")


def test_a_worker_count_that_is_not_a_number_is_refused_by_name(env: pytest.MonkeyPatch) -> None:
    env.setenv("MIGRATION_FILE_WORKERS", "eight")
    with pytest.raises(ValueError, match="MIGRATION_FILE_WORKERS is 'eight'"):
        resources_from_env()


def postgres_resource() -> PostgresResource:
    resource = resources_from_env()["postgres"]
    assert isinstance(resource, PostgresResource)
    return resource.process_config_and_initialize()


@pytest.mark.integration
def test_an_app_owned_schema_that_differs_stops_before_anything_is_loaded(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MIGRATION_SCHEMA_OWNER", "app")
    with (
        pytest.raises(dg.Failure, match=r"(?s)MIGRATION_SCHEMA_OWNER=app.*CREATE TABLE"),
        postgres_resource().connection(),
    ):
        pass  # a new database: every table is a difference, and the SQL that makes it is in the message
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('public.users')").fetchone()[0] is None


def test_a_schema_owner_that_is_neither_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATION_SCHEMA_OWNER", "apps")
    with pytest.raises(dg.Failure, match="MIGRATION_SCHEMA_OWNER is 'apps'"):
        _ = postgres_resource().owner


def test_with_nothing_set_every_field_the_table_sets_holds_the_tables_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for setting in SETTINGS:
        monkeypatch.delenv(setting.variable, raising=False)
    resources = {key: r.process_config_and_initialize() for key, r in resources_from_env().items()}
    for setting in SETTINGS:
        if setting.resource is not None:
            assert getattr(resources[setting.resource], setting.field) == setting.default, setting.variable


def test_set_variables_reach_their_fields_parsed_and_text_stays_an_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATION_BATCH_SIZE", "50")
    monkeypatch.setenv("MIGRATION_MAX_REJECT_SHARE", "0.2")
    monkeypatch.setenv("MIGRATION_KEEP_UNMIGRATED_TYPES", "false")
    monkeypatch.setenv("BUBBLE_API_KEY", "secret-token")
    resources = resources_from_env()
    assert resources["bubble"].api_key == dg.EnvVar("BUBBLE_API_KEY")  # the UI shows the name, not the secret
    bubble, settings = (resources[k].process_config_and_initialize() for k in ("bubble", "settings"))
    assert (bubble.page_size, bubble.api_key) == (50, "secret-token")
    assert (settings.max_reject_share, settings.keep_unmigrated_types) == (0.2, False)


def test_copies_for_a_real_phase2_without_a_public_url_stop_before_anything_is_copied(tmp_path: Path) -> None:
    files = FilesResource(target=str(tmp_path / "files"))
    with (
        pytest.raises(dg.Failure, match=r"set MIGRATION_FILES_PUBLIC_URL.*Nothing was copied"),
        files.copier(FileSource(), demo=False),
    ):
        pass
    assert not (tmp_path / "files").exists()
