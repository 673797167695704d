"""Dagster resources: the only place that knows which environment the migration runs in."""

import json
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import cache
from pathlib import Path

import dagster as dg
import psycopg
from pydantic import Field as ConfigField

from culturebridge_migration.fake_bubble.sample import SAMPLE_API_KEY, sample_api, sample_server
from culturebridge_migration.files.copier import DEFAULT_WORKERS, FileCopier
from culturebridge_migration.files.progress import CopyProgress
from culturebridge_migration.files.storage import DEFAULT_FILES_DIR, FileStorageError, open_storage
from culturebridge_migration.files.urls import DEFAULT_FILE_HOST_PATTERNS, BubbleFileMatcher, fetch_through
from culturebridge_migration.loading.database import (
    EMBEDDED_DIR,
    DatabaseUnavailable,
    connect,
    embedded_server_url,
    open_connection,
)
from culturebridge_migration.loading.deletions import DeletedRecords
from culturebridge_migration.loading.phase2_db import Phase2Database, Schemas
from culturebridge_migration.loading.schema_evolution import SchemaDiffers, SchemaOwner, ensure_schema
from culturebridge_migration.loading.writer_lock import Holder, WriterBusy, writer
from culturebridge_migration.mapping.corrections import EntityFixes, FixesFileError, read_fixes_file
from culturebridge_migration.mapping.entities import ENTITIES, Entity, apply_field_overrides
from culturebridge_migration.redaction import redact_url
from culturebridge_migration.sources.bubble_api import BubbleClient
from culturebridge_migration.sources.source import ApiSource, CsvSource, RecordSource


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

    database_url: str | None = ConfigField(default=None, description="postgresql:// URL; unset: embedded server")
    embedded_dir: str = ConfigField(default=EMBEDDED_DIR, description="Data folder of the embedded server")
    app_schema: str = "public"
    migration_schema: str = "migration"
    schema_owner: str = ConfigField(
        default="migration",
        description="who evolves the Phase 2 tables: migration (this project, recorded) or app (its own migrations)",
    )

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

    api_url: str | None = ConfigField(default=None, description="like https://APP.bubbleapps.io/api/1.1")
    api_key: str | None = ConfigField(default=None, description="an admin API token (Settings > API)")
    csv_dir: str | None = ConfigField(default=None, description="folder of Bubble editor CSV exports")
    csv_timezone: str = ConfigField(default="UTC", description="time zone of the person who exported the CSVs")
    csv_encoding: str = ConfigField(default="utf-8-sig", description="text encoding of the CSV files (Bubble: UTF-8)")
    sample_users: int = ConfigField(default=300, description="size of the bundled sample")
    page_size: int = ConfigField(default=100, description="records per page (Bubble allows 1..100)")
    timeout_seconds: float = 30.0
    max_retries: int = 6
    requests_per_minute: int | None = ConfigField(default=None, description="request budget; Bubble plans: 1000+")
    # 8 pages in flight at Bubble's ~150 ms is about 2,300 requests/min (measured on the local server):
    # more than the 1,000/min of Bubble's legacy plans, where requests_per_minute must be set.
    page_workers: int = ConfigField(default=8, description="requests in flight at once, across all types")
    files_base_url: str | None = ConfigField(
        default=None, description="fetch Bubble's files from here instead of their own host (the local Bubble server)"
    )

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
    def file_addresses(self) -> Iterator[Callable[[str], str]]:
        """Where each Bubble file URL is fetched: its own host, or the local Bubble server's file path."""
        if self.files_base_url:
            yield fetch_through(self.files_base_url)
        elif self.api_url or self.csv_dir:
            yield lambda url: url
        else:
            with sample_server(self.sample_users) as server:
                yield fetch_through(server.files_url)

    @contextmanager
    def _api(self, url: str, key: str) -> Iterator[ApiSource]:
        client = BubbleClient(
            url,
            key,
            page_size=self.page_size,
            timeout=self.timeout_seconds,
            max_retries=self.max_retries,
            requests_per_minute=self.requests_per_minute,
            workers=self.page_workers,
        )
        try:
            yield ApiSource(client, self.describe())
        finally:
            client.close()


class FilesResource(dg.ConfigurableResource):
    """Storage the team owns for Bubble's files (a folder or an S3-compatible bucket) and which URLs are Bubble's."""

    target: str = ConfigField(default=DEFAULT_FILES_DIR, description="a folder, or s3://bucket/prefix")
    public_base_url: str | None = ConfigField(default=None, description="the base URL Phase 2 links the copies by")
    host_patterns: str = ConfigField(
        default=",".join(DEFAULT_FILE_HOST_PATTERNS), description="comma-separated host patterns of Bubble's files"
    )
    workers: int = ConfigField(default=DEFAULT_WORKERS, description="downloads at once")

    def matcher(self) -> BubbleFileMatcher:
        try:
            return BubbleFileMatcher(p.strip() for p in self.host_patterns.split(",") if p.strip())
        except ValueError as exc:
            raise dg.Failure(f"MIGRATION_FILES_HOSTS: {exc}") from None

    def describe(self) -> str:
        return redact_url(self.target)

    @contextmanager
    def copier(
        self, fetch_url: Callable[[str], str], on_progress: Callable[[CopyProgress], None] | None = None
    ) -> Iterator[FileCopier]:
        try:
            storage = open_storage(self.target, public_base_url=self.public_base_url)
        except (FileStorageError, ValueError, OSError) as exc:
            raise dg.Failure(f"Cannot open the files storage {self.describe()}: {exc}") from None
        with FileCopier(storage, workers=self.workers, fetch_url=fetch_url, on_progress=on_progress) as copier:
            yield copier


class MigrationSettings(dg.ConfigurableResource):
    """Where files go and how Bubble's field names map to Phase 2 columns."""

    export_dir: str = ConfigField(default="migration_data", description="exports and id mappings")
    report_dir: str = ConfigField(default="migration_reports", description="reports, one set per run")
    field_map: str | None = ConfigField(
        default=None, description='JSON file of Bubble key overrides: {"users": {"first_name": "first_name_text"}}'
    )
    hash_workers: int | None = ConfigField(default=None, description="bcrypt threads; default: one per core")
    sample_size: int = ConfigField(default=25, description="rows per table compared field by field with the export")
    sample_seed: int | None = ConfigField(default=None, description="seed for the sample check; unset: random")
    keep_unmigrated_types: bool = ConfigField(
        default=True, description="export the Bubble types no table migrates and keep them in bubble_records"
    )
    max_reject_share: float = ConfigField(
        default=0.5, description="a table with more of its records rejected fails the gate (0..1)"
    )
    writer_wait_seconds: int = ConfigField(
        default=60, description="how long a run waits for another run on the same database or export folder"
    )
    fixes: str | None = ConfigField(
        default=None,
        description="the team's corrections: an errors CSV with its `fix` column filled in, or the JSON form "
        "(mapping/corrections.py)",
    )
    password_bridge_until: str | None = ConfigField(
        default=None,
        description="when the login bridge closes (ISO 8601 date or time, UTC without a zone); unset: 30 days "
        "after the last cutover",
    )
    deleted_records: str = ConfigField(
        default=DeletedRecords.REPORT.value,
        description="what a full export does with migrated rows gone from Bubble: report, flag or delete",
    )

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


def _env(name: str) -> dg.EnvVar | None:
    """An EnvVar when the variable is set (the UI shows its name, never its value), else None."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def _share(variable: str) -> float:
    text = os.environ[variable]
    try:
        share = float(text)
    except ValueError:
        share = -1.0
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"{variable} is {text!r}: set it to a share between 0 and 1, like 0.5")
    return share


def resources_from_env() -> dict[str, dg.ConfigurableResource]:
    """The resources for this environment: environment variables when set, embedded defaults otherwise."""
    optional = {
        "api_url": _env("BUBBLE_API_URL"),
        "api_key": _env("BUBBLE_API_KEY"),
        "csv_dir": _env("BUBBLE_CSV_DIR"),
    }
    settings = {
        "export_dir": _env("MIGRATION_EXPORT_DIR"),
        "report_dir": _env("MIGRATION_REPORT_DIR"),
        "field_map": _env("MIGRATION_FIELD_MAP"),
        "deleted_records": _env("MIGRATION_DELETED_RECORDS"),
        "fixes": _env("MIGRATION_FIXES"),
        "password_bridge_until": _env("MIGRATION_PASSWORD_BRIDGE_UNTIL"),
    }
    if os.environ.get("MIGRATION_KEEP_UNMIGRATED_TYPES"):
        settings["keep_unmigrated_types"] = os.environ["MIGRATION_KEEP_UNMIGRATED_TYPES"].lower() not in (
            "0",
            "no",
            "false",
        )
    if os.environ.get("MIGRATION_MAX_REJECT_SHARE"):  # not a secret, and EnvVar holds text or integers only
        settings["max_reject_share"] = _share("MIGRATION_MAX_REJECT_SHARE")
    if os.environ.get("MIGRATION_WRITER_WAIT_SECONDS"):
        settings["writer_wait_seconds"] = dg.EnvVar.int("MIGRATION_WRITER_WAIT_SECONDS")
    bubble = {k: v for k, v in optional.items() if v is not None}
    for field_name, variable in (("csv_timezone", "BUBBLE_CSV_TIMEZONE"), ("csv_encoding", "BUBBLE_CSV_ENCODING")):
        if os.environ.get(variable):
            bubble[field_name] = dg.EnvVar(variable)
    if os.environ.get("BUBBLE_FILES_URL"):
        bubble["files_base_url"] = dg.EnvVar("BUBBLE_FILES_URL")
    for field_name, variable in (
        ("page_size", "MIGRATION_BATCH_SIZE"),
        ("requests_per_minute", "MIGRATION_REQUESTS_PER_MINUTE"),
        ("page_workers", "MIGRATION_PAGE_WORKERS"),
    ):
        if os.environ.get(variable):
            bubble[field_name] = dg.EnvVar.int(variable)
    return {
        "postgres": PostgresResource(
            **({"database_url": _env("DATABASE_URL")} if _env("DATABASE_URL") else {}),
            **({"schema_owner": _env("MIGRATION_SCHEMA_OWNER")} if _env("MIGRATION_SCHEMA_OWNER") else {}),
        ),
        "bubble": BubbleResource(**bubble),
        "settings": MigrationSettings(**{k: v for k, v in settings.items() if v is not None}),
        "files": FilesResource(**_files_settings()),
    }


def _files_settings() -> dict[str, object]:
    settings: dict[str, object] = {}
    target = _env("MIGRATION_FILES_URL") or _env("MIGRATION_FILES_DIR")  # a bucket wins over a folder
    for name, value in (
        ("target", target),
        ("public_base_url", _env("MIGRATION_FILES_PUBLIC_URL")),
        ("host_patterns", _env("MIGRATION_FILES_HOSTS")),
    ):
        if value is not None:
            settings[name] = value
    workers = os.environ.get("MIGRATION_FILE_WORKERS", "").strip()
    if workers:  # checked here: a bad value must name its variable before any run starts
        if not (workers.isdigit() and int(workers) > 0):
            raise ValueError(f"MIGRATION_FILE_WORKERS is {workers!r}: set it to a positive whole number, like 8")
        settings["workers"] = int(workers)
    return settings


def loggers_from_env() -> dict[str, dg.LoggerDefinition] | None:
    """LOG_LEVEL (DEBUG, INFO, WARNING, ERROR) sets the run log's level; unset: Dagster's default."""
    level = os.environ.get("LOG_LEVEL")
    if not level:
        return None
    return {"console": dg.colored_console_logger.configured({"log_level": level.upper()})}
