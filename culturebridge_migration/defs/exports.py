"""One asset per Bubble type (its records on disk, with a blocking completeness check), all
exported by one step through one client.

One step, because Bubble limits requests per app, not per type: the types export at once and
share one bound on requests in flight (`page_workers`) and one `requests_per_minute` budget.
Separate steps would each bring their own budget, and the multiprocess executor runs two at once.
The step can be subset: `--select bubble/users` exports only the users.
"""

import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from culturebridge_migration.defs.progress import ProgressLog
from culturebridge_migration.defs.resources import BubbleResource, MigrationSettings, PostgresResource
from culturebridge_migration.loading.loader import known_password_hashes, read_watermark
from culturebridge_migration.mapping.entities import ENTITIES, ID_KEY, Entity, Kind
from culturebridge_migration.mapping.mapper import get_value
from culturebridge_migration.mapping.passwords import protect_record_passwords
from culturebridge_migration.mapping.rejects import MASK
from culturebridge_migration.sources.bubble_api import BubbleError, ProgressCallback
from culturebridge_migration.sources.checkpoint import PageCheckpoint
from culturebridge_migration.sources.export_store import ExportManifest, ExportWriter
from culturebridge_migration.sources.source import RecordSource

COMPLETE_CHECK = "export_complete"
EXPORT_GROUP = "bubble_export"


class ExportConfig(dg.Config):
    incremental: bool = False  # only records modified after the type's watermark
    overlap_minutes: float = 5.0  # re-read this much before the watermark: Bubble's clock may skew


def export_key(entity_name: str) -> dg.AssetKey:
    return dg.AssetKey(["bubble", entity_name])


def _export_spec(entity_name: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        export_key(entity_name),
        group_name=EXPORT_GROUP,
        kinds={"bubble", "json"},
        description=f"Every Bubble `{ENTITIES[entity_name].bubble_type}` record, as exported, "
        "in JSON Lines under MIGRATION_EXPORT_DIR (passwords already bcrypt-hashed).",
    )


def _complete_spec(entity_name: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        COMPLETE_CHECK,
        asset=export_key(entity_name),
        blocking=True,  # a table must never be loaded from a partial export
        description="The export holds exactly as many records as Bubble announced, each _id once.",
    )


class ExportCancelled(Exception):
    """The step is stopping (another type failed unexpectedly, or the run was terminated)."""


@dataclass
class TypeExport:
    """What one type's export left: the committed manifest and the writer's running figures."""

    entity: Entity
    manifest: ExportManifest
    writer: ExportWriter
    path: Path
    seconds: float  # wall time of this type's export, shared with the types exporting beside it
    hash_seconds: float  # of `seconds`: wall time while some page's passwords were being secured


@dg.multi_asset(
    name="bubble_export",
    specs=[_export_spec(name) for name in ENTITIES],
    check_specs=[_complete_spec(name) for name in ENTITIES],
    can_subset=True,
    pool="bubble_api",
    description="Exports the selected Bubble types at once, through one client and one request budget.",
)
def bubble_export(
    context: dg.AssetExecutionContext,
    config: ExportConfig,
    bubble: BubbleResource,
    postgres: PostgresResource,
    settings: MigrationSettings,
) -> Iterator[dg.MaterializeResult]:
    entities = [e for name, e in settings.entities().items() if export_key(name) in context.selected_asset_keys]
    starts = {e.name: _incremental_start(postgres, e, config) if config.incremental else None for e in entities}
    context.log.info(f"Exporting {', '.join(e.name for e in entities)} from {bubble.describe()}")
    for name, start in starts.items():
        if start:
            context.log.info(f"{name}: only records changed after {start:%Y-%m-%d %H:%M:%S} UTC")
    if bubble.api_url:
        context.log.info("Only an admin API token sees every record: a user token silently hides private ones.")
    progress: dict[str, tuple[int, int]] = {}  # written by the export threads, logged by this one
    stop = threading.Event()

    def export_one(entity: Entity) -> TypeExport:
        def on_progress(done: int, total: int) -> None:
            if stop.is_set():
                raise ExportCancelled
            progress[entity.name] = (done, total)

        return export_type(entity, source, starts[entity.name], postgres, settings, context.run.run_id, on_progress)

    failures: list[str] = []
    with bubble.open() as source, ThreadPoolExecutor(max_workers=max(1, len(entities))) as pool:
        futures = {pool.submit(export_one, e): e for e in entities}
        logs = {e.name: ProgressLog(context.log, f"export {e.name}") for e in entities}
        pending: set[Future] = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                for name, figures in list(progress.items()):
                    logs[name](*progress.pop(name, figures))
                for future in finished:
                    entity = futures[future]
                    try:
                        yield _materialization(context, future.result())
                    except (BubbleError, FileNotFoundError, ValueError) as exc:
                        failures.append(f"{entity.name}: {exc}")
        except BaseException:
            stop.set()  # the other types stop at their next page; their pages stay checkpointed
            raise
    if failures:
        raise dg.Failure(
            "Export failed for " + "; ".join(failures) + ". Pages already exported are kept; the next run resumes "
            "after them. The other types were exported."
        )


def export_type(
    entity: Entity,
    source: RecordSource,
    modified_after: datetime | None,
    postgres: PostgresResource,
    settings: MigrationSettings,
    run_id: str,
    on_progress: ProgressCallback,
) -> TypeExport:
    """One type to `ENTITY.jsonl`, its pages checkpointed and its plain passwords hashed as they arrive."""
    started = time.monotonic()
    guard = PasswordGuard(entity, postgres, settings.hash_workers)
    checkpoint = PageCheckpoint(Path(settings.export_dir) / f"{entity.name}.partial.jsonl")
    writer = ExportWriter(settings.export_dir, entity.name)  # records go to disk as they arrive
    try:
        result = source.export(
            entity,
            modified_after=modified_after,
            on_progress=on_progress,
            prepare=guard,
            checkpoint=checkpoint,
            sink=writer,
        )
    except BaseException:
        writer.discard()
        raise
    manifest = ExportManifest(
        entity=entity.name,
        bubble_type=entity.bubble_type,
        source=source.description,
        announced_total=result.announced_total,
        exported=writer.count,
        unique_ids=result.exported,
        pages=result.pages,
        exported_at=datetime.now(UTC).isoformat(),
        run_id=run_id,
        passwords_hashed=guard.hashed,
        notes=result.notes,
        modified_after=modified_after.isoformat() if modified_after else None,
        max_modified=writer.max_modified.isoformat() if writer.max_modified else None,
    )
    path = writer.commit(manifest)
    checkpoint.clear()
    return TypeExport(entity, manifest, writer, path, time.monotonic() - started, guard.seconds)


def _materialization(context: dg.AssetExecutionContext, export: TypeExport) -> dg.MaterializeResult:
    entity, manifest = export.entity, export.manifest
    for note in manifest.notes:
        context.log.warning(f"{entity.name}: {note}")
    if manifest.passwords_hashed:
        context.log.info(
            f"{entity.name}: {manifest.passwords_hashed} plain-text legacy passwords bcrypt-hashed before writing"
        )
    return dg.MaterializeResult(
        asset_key=export_key(entity.name),
        metadata=_metadata(export),
        check_results=[completeness(manifest)],
    )


def _incremental_start(postgres: PostgresResource, entity: Entity, config: ExportConfig) -> datetime | None:
    with postgres.connection() as conn:
        watermark = read_watermark(conn, postgres.schemas, entity)
    return watermark - timedelta(minutes=config.overlap_minutes) if watermark else None


class PasswordGuard:
    """Hashes each page's plain legacy passwords as it arrives, before a checkpoint or export file sees it.

    Records Bubble has not modified since the last load keep the hash Phase 2 already holds.
    """

    def __init__(self, entity: Entity, postgres: PostgresResource, workers: int | None) -> None:
        self.keys = [f.source for f in entity.fields if f.kind is Kind.PASSWORD]
        self.workers, self.hashed, self.seconds = workers, 0, 0.0
        self._lock = threading.Lock()  # pages arrive on several threads at once
        self._busy, self._busy_since = 0, 0.0  # pages being secured now, and since when
        self.known: dict[tuple[str, str], str] = {}
        if self.keys:
            with postgres.connection() as conn:
                self.known = known_password_hashes(conn, postgres.schemas, entity)

    def __call__(self, records: list[dict]) -> None:
        if not self.keys:
            return
        self._busy_changes(+1)
        hashed = 0
        try:
            hashed = protect_record_passwords(records, self.keys, known_hashes=self.known, workers=self.workers)
        finally:
            self._busy_changes(-1, hashed)

    def _busy_changes(self, by: int, hashed: int = 0) -> None:
        """Counts wall time once however many pages are secured at once (the threads share bcrypt's pool)."""
        with self._lock:
            now = time.perf_counter()
            if self._busy:
                self.seconds += now - self._busy_since
            self._busy, self._busy_since = self._busy + by, now
            self.hashed += hashed


def completeness(manifest: ExportManifest) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=export_key(manifest.entity),
        check_name=COMPLETE_CHECK,
        passed=manifest.complete,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "announced_total": manifest.announced_total,
            "exported": manifest.exported,
            "missing": max(0, manifest.announced_total - manifest.exported),
            "duplicate_ids": manifest.exported - manifest.unique_ids,
        },
        description=None
        if manifest.complete
        else f"Bubble announced {manifest.announced_total} records, {manifest.exported} arrived "
        f"({manifest.unique_ids} distinct ids): export again before loading",
    )


def _metadata(export: TypeExport) -> dict[str, object]:
    manifest, writer = export.manifest, export.writer
    return {
        "dagster/row_count": manifest.exported,
        "announced_total": manifest.announced_total,
        "pages": manifest.pages,
        "passwords_hashed": manifest.passwords_hashed,
        "source": manifest.source,
        "path": dg.MetadataValue.path(str(export.path)),
        "seconds": round(export.seconds, 2),
        "hash_seconds": round(export.hash_seconds, 2),
        "fields_seen": dg.MetadataValue.json(dict(writer.fields.most_common())),
        "preview": dg.MetadataValue.md(preview_markdown(export.entity, writer.preview)),
    }


def preview_markdown(entity: Entity, records: list[dict]) -> str:
    """The first records as a table; password values masked even though they are hashes."""
    secret = {f.source for f in entity.fields if f.kind is Kind.PASSWORD}
    keys = [ID_KEY, *(f.source for f in entity.fields)]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for record in records:
        cells = [MASK if k in secret and k in record else _cell(record, k) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(record: dict, key: str) -> str:
    value = get_value(record, key)
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")[:60]


EXPORT_ASSETS = [bubble_export]
__all__ = ["EXPORT_ASSETS", "export_key"]
