"""Dagster resources, built from the table of settings (settings.py): the only place that knows which
environment the migration runs in."""

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
from pydantic import Field as ConfigField

from culturebridge_migration.fake_bubble.sample import SAMPLE_API_KEY, sample_api, sample_server
from culturebridge_migration.files.copier import FileCopier
from culturebridge_migration.files.fetch import FileSource
from culturebridge_migration.files.progress import CopyProgress
from culturebridge_migration.files.storage import FileStorageError, open_storage, public_link_problem
from culturebridge_migration.files.urls import BubbleFileMatcher
from culturebridge_migration.loading.database import DatabaseUnavailable, connect, open_connection
from culturebridge_migration.loading.deletions import DeletedRecords
from culturebridge_migration.loading.embedded_server import EMBEDDED_DIR, embedded_server_url
from culturebridge_migration.loading.phase2_db import Phase2Database, Schemas
from culturebridge_migration.loading.schema_evolution import SchemaDiffers, SchemaOwner, ensure_schema
from culturebridge_migration.loading.writer_lock import Holder, WriterBusy, writer
from culturebridge_migration.mapping.corrections import EntityFixes, FixesFileError, read_fixes_file
from culturebridge_migration.mapping.entities import ENTITIES, Entity, apply_field_overrides
from culturebridge_migration.redaction import redact_url
from culturebridge_migration.settings import (
    SETTINGS,
    Setting,
    configured_text,
    field_default,
    field_doc,
    parsed,
    whole_number,
)
from culturebridge_migration.sources.bubble_api import BubbleClient, BubbleError
from culturebridge_migration.sources.http import RetryPolicy
from culturebridge_migration.sources.source import ApiSource, CsvSource, RecordSource


def _from_table(resource: str, field: str) -> Any:
    """A field the environment sets: its default and description are the settings table's."""
    return ConfigField(default=field_default(resource, field), description=field_doc(resource, field))


@cache
def _prepared(url: str, schemas: Schemas, owner: SchemaOwner) -> bool:
    """Bring the schemas up to the rules once per process and database (or stop, when the app owns them)."""
    with connect(url) as conn:
        try:
            ensure_schema(conn, schemas, owner=owner)
        except SchemaDiffers as exc:
            raise dg.Failure(str(exc)) from None
    return True


class PostgresResource(dg.ConfigurableResource):
    """Phase 2 PostgreSQL: `database_url`, or else an embedded server kept in `embedded_dir`."""

    database_url: str | None = _from_table("postgres", "database_url")
    embedded_dir: str = ConfigField(default=EMBEDDED_DIR, description="Data folder of the embedded server")
    app_schema: str = "public"
    migration_schema: str = "migration"
    schema_owner: str = _from_table("postgres", "schema_owner")

    @property
    def schemas(self) -> Schemas:
        try:
            return Schemas(self.app_schema, self.migration_schema)
        except ValueError as exc:
            raise dg.Failure(str(exc)) from None

    @property
    def owner(self) -> SchemaOwner:
        try:
            return SchemaOwner(self.schema_owner)
        except ValueError:
            raise dg.Failure(
                f"MIGRATION_SCHEMA_OWNER is {self.schema_owner!r}: set it to migration (the migration evolves the "
                "Phase 2 tables) or app (the app's own migrations do)"
            ) from None

    def url(self) -> str:
        return self.database_url or embedded_server_url(self.embedded_dir)

    def describe(self) -> str:
        return redact_url(self.database_url) if self.database_url else f"embedded PostgreSQL in {self.embedded_dir}"

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        schemas = self.schemas
        with ExitStack() as stack:
            try:
                url = self.url()
                _prepared(url, schemas, self.owner)
                conn = stack.enter_context(connect(url))
            except DatabaseUnavailable as exc:
                raise dg.Failure(str(exc)) from None  # one clear message, not a driver traceback
            yield conn

    @contextmanager
    def writer(
        self, context: dg.AssetExecutionContext | dg.OpExecutionContext, wait_seconds: float, *, run_done: bool = False
    ) -> Iterator[None]:
        """This run holds Phase 2 while the block runs (see loading/writer_lock.py); `run_done` releases it after."""
        schemas = self.schemas
        try:
            url = self.url()
            _prepared(url, schemas, self.owner)
        except DatabaseUnavailable as exc:
            raise dg.Failure(str(exc)) from None

        def connect() -> psycopg.Connection:
            return open_connection(url, autocommit=True)

        def waiting(holder: Holder) -> None:
            context.log.info(f"Phase 2 is in use by run {holder.run_id} ({holder.job_name}): waiting")

        def finished(run_id: str) -> bool:  # known to this instance (dagster dev, DAGSTER_HOME) and over
            run = context.instance.get_run_by_id(run_id)
            return run is not None and run.is_finished

        steps = len(context.run.step_keys_to_execute or context.job_def.nodes)
        try:
            with writer(
                connect,
                schemas,
                context.run.run_id,
                context.run.job_name,
                steps=steps,
                wait_seconds=wait_seconds,
                run_done=run_done,
                on_wait=waiting,
                finished=finished,
            ):
                yield
        except (WriterBusy, DatabaseUnavailable) as exc:
            raise dg.Failure(str(exc)) from None

    @contextmanager
    def database(self, entities: dict[str, Entity] | None = None) -> Iterator[Phase2Database]:
        """Phase 2 through one connection, with the field table the run maps with."""
        with self.connection() as conn:
            yield Phase2Database(conn, self.schemas, entities or ENTITIES)


class BubbleResource(dg.ConfigurableResource):
    """Phase 1 records: the Data API when `api_url` is set, else CSV files in `csv_dir`, else the bundled sample."""

    api_url: str | None = _from_table("bubble", "api_url")
    api_key: str | None = _from_table("bubble", "api_key")
    csv_dir: str | None = _from_table("bubble", "csv_dir")
    csv_timezone: str = _from_table("bubble", "csv_timezone")
    csv_encoding: str = _from_table("bubble", "csv_encoding")
    sample_users: int = ConfigField(default=300, description="size of the bundled sample")
    page_size: int = _from_table("bubble", "page_size")
    timeout_seconds: float = 30.0
    max_retries: int = RetryPolicy.max_retries  # the Data API's requests and Bubble's files alike
    requests_per_minute: int | None = _from_table("bubble", "requests_per_minute")
    page_workers: int = _from_table("bubble", "page_workers")
    files_base_url: str | None = _from_table("bubble", "files_base_url")

    def describe(self) -> str:
        if self.api_url:
            return f"Bubble Data API at {redact_url(self.api_url)}"
        if self.csv_dir:
            return f"Bubble CSV export files in {self.csv_dir} (times read as {self.csv_timezone})"
        return f"bundled sample ({self.sample_users} users) served by the local Bubble server"

    @contextmanager
    def open(self) -> Iterator[RecordSource]:
        if self.api_url:
            if not self.api_key:
                raise dg.Failure(
                    "BUBBLE_API_URL is set but BUBBLE_API_KEY is not: set it to an admin API token (Settings > API)"
                )
            with self._api(self.api_url, self.api_key) as source:
                yield source
        elif self.csv_dir:
            folder = Path(self.csv_dir)
            if not folder.is_dir():
                raise dg.Failure(f"BUBBLE_CSV_DIR {folder} is not a folder: point it at the Bubble CSV exports")
            yield CsvSource(folder, self.csv_timezone, self.describe(), self.csv_encoding)
        else:
            with sample_api(self.sample_users) as url, self._api(url, SAMPLE_API_KEY) as source:
                yield source

    @contextmanager
    def file_addresses(self) -> Iterator[FileSource]:
        """Where Bubble's files are fetched (their own hosts, or the local Bubble server's) and how retried."""
        retry = RetryPolicy(max_retries=self.max_retries)
        if self.files_base_url or self.api_url or self.csv_dir:
            yield FileSource(self.files_base_url, retry)
        else:
            with sample_server(self.sample_users) as server:
                yield FileSource(server.files_url, retry)

    @contextmanager
    def _api(self, url: str, key: str) -> Iterator[ApiSource]:
        try:
            client = BubbleClient(
                url,
                key,
                page_size=self.page_size,
                timeout=self.timeout_seconds,
                max_retries=self.max_retries,
                requests_per_minute=self.requests_per_minute,
                workers=self.page_workers,
            )
        except BubbleError as exc:  # a configuration the client refuses: one line, no traceback
            raise dg.Failure(str(exc)) from None
        try:
            yield ApiSource(client, self.describe())
        finally:
            client.close()


class FilesResource(dg.ConfigurableResource):
    """Storage the team owns for Bubble's files (a folder or an S3-compatible bucket) and which URLs are Bubble's."""

    target: str = _from_table("files", "target")
    public_base_url: str | None = _from_table("files", "public_base_url")
    host_patterns: str = _from_table("files", "host_patterns")
    workers: int = _from_table("files", "workers")
    max_bytes: int = _from_table("files", "max_bytes")

    def matcher(self) -> BubbleFileMatcher:
        try:
            return BubbleFileMatcher(p.strip() for p in self.host_patterns.split(",") if p.strip())
        except ValueError as exc:
            raise dg.Failure(f"MIGRATION_FILES_HOSTS: {exc}") from None

    def describe(self) -> str:
        return redact_url(self.target)

    @contextmanager
    def copier(
        self, source: FileSource, on_progress: Callable[[CopyProgress], None] | None = None, *, demo: bool = True
    ) -> Iterator[FileCopier]:
        """`demo`: Phase 2 is the embedded server, whose users are this machine's; else links must be public."""
        if problem := public_link_problem(self.target, self.public_base_url, demo=demo):
            raise dg.Failure(f"{problem}. Nothing was copied and Phase 2 keeps Bubble's links.")
        try:
            storage = open_storage(self.target, public_base_url=self.public_base_url)
        except (FileStorageError, ValueError, OSError) as exc:
            raise dg.Failure(f"Cannot open the files storage {self.describe()}: {exc}") from None
        with FileCopier(
            storage,
            matcher=self.matcher(),
            files_url=source.files_url,
            retry=source.retry,
            workers=self.workers,
            max_bytes=self.max_bytes,
            on_progress=on_progress,
        ) as copier:
            yield copier


class MigrationSettings(dg.ConfigurableResource):
    """Where files go and how Bubble's field names map to Phase 2 columns."""

    export_dir: str = _from_table("settings", "export_dir")
    report_dir: str = _from_table("settings", "report_dir")
    field_map: str | None = _from_table("settings", "field_map")
    hash_workers: int | None = ConfigField(default=None, description="bcrypt threads; default: one per core")
    sample_size: int = ConfigField(default=25, description="rows per table compared field by field with the export")
    sample_seed: int | None = ConfigField(default=None, description="seed for the sample check; unset: random")
    keep_unmigrated_types: bool = _from_table("settings", "keep_unmigrated_types")
    max_reject_share: float = _from_table("settings", "max_reject_share")
    writer_wait_seconds: int = _from_table("settings", "writer_wait_seconds")
    fixes: str | None = _from_table("settings", "fixes")
    deleted_records: str = _from_table("settings", "deleted_records")
    password_bridge_until: str | None = _from_table("settings", "password_bridge_until")

    def deleted_records_mode(self) -> DeletedRecords:
        try:
            return DeletedRecords(self.deleted_records)
        except ValueError:
            choices = ", ".join(m.value for m in DeletedRecords)
            raise dg.Failure(
                f"deleted_records is {self.deleted_records!r}; set MIGRATION_DELETED_RECORDS to one of: {choices}"
            ) from None

    def decisions_for(self, entity: Entity) -> EntityFixes | None:
        """The fixes file's corrections of `entity` (None without a file or without any for it)."""
        if not self.fixes:
            return None
        try:
            return read_fixes_file(self.fixes).for_entity(entity)
        except FixesFileError as exc:
            raise dg.Failure(str(exc)) from None

    def entities(self) -> dict[str, Entity]:
        if not self.field_map:
            return dict(ENTITIES)
        path = Path(self.field_map)
        try:
            overrides = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise dg.Failure(f"Cannot read the field map {path}: {exc}") from None
        try:
            return apply_field_overrides(ENTITIES, overrides)
        except ValueError as exc:
            raise dg.Failure(f"Field map {path}: {exc}") from None


_RESOURCES: dict[str, type[dg.ConfigurableResource]] = {
    "postgres": PostgresResource,
    "bubble": BubbleResource,
    "settings": MigrationSettings,
    "files": FilesResource,
}


def _configured(setting: Setting) -> object | None:
    """The value a set variable gives its field; None when it is unset.

    Text and whole numbers go to Dagster as EnvVars: it reads them at run time and the UI shows the
    variable's name, never its value (URLs and keys are secrets). Other types are parsed here, so a
    bad value names its variable before any run starts.
    """
    text = configured_text(setting)
    if text is None:
        return None
    if setting.parse is None:
        return dg.EnvVar(setting.variable)
    if setting.parse is whole_number:
        return dg.EnvVar.int(setting.variable)
    return parsed(setting, text)


def resources_from_env() -> dict[str, dg.ConfigurableResource]:
    """The resources for this environment, from the settings table: set variables, else the defaults."""
    fields: dict[str, dict[str, object]] = {key: {} for key in _RESOURCES}
    for setting in SETTINGS:
        if setting.resource is None or setting.field is None or (value := _configured(setting)) is None:
            continue  # unset, or not a resource's (read where it is used)
        fields[setting.resource].setdefault(setting.field, value)  # the first set variable of a field wins
    return {key: resource(**fields[key]) for key, resource in _RESOURCES.items()}
