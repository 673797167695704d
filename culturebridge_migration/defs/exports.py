"""One asset per Bubble type: its records on disk, with a blocking completeness check."""

import threading
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
from culturebridge_migration.sources.bubble_api import BubbleError
from culturebridge_migration.sources.checkpoint import PageCheckpoint
from culturebridge_migration.sources.export_store import ExportManifest, ExportWriter

COMPLETE_CHECK = "export_complete"


class ExportConfig(dg.Config):
    incremental: bool = False  # only records modified after the type's watermark
    overlap_minutes: float = 5.0  # re-read this much before the watermark: Bubble's clock may skew


PREVIEW_ROWS = 5


def export_key(entity_name: str) -> dg.AssetKey:
    return dg.AssetKey(["bubble", entity_name])


def build_export_asset(entity_name: str) -> dg.AssetsDefinition:
    key = export_key(entity_name)

    @dg.asset(
        key=key,
        group_name="bubble_export",
        kinds={"bubble", "json"},
        pool="bubble_api",
        description=f"Every Bubble `{ENTITIES[entity_name].bubble_type}` record, as exported, "
        "in JSON Lines under MIGRATION_EXPORT_DIR (passwords already bcrypt-hashed).",
        check_specs=[
            dg.AssetCheckSpec(
                COMPLETE_CHECK,
                asset=key,
                blocking=True,  # a table must never be loaded from a partial export
                description="The export holds exactly as many records as Bubble announced, each _id once.",
            )
        ],
    )
    def _export(
        context: dg.AssetExecutionContext,
        config: ExportConfig,
        bubble: BubbleResource,
        postgres: PostgresResource,
        settings: MigrationSettings,
    ) -> dg.MaterializeResult:
        entity = settings.entities()[entity_name]
        modified_after = _incremental_start(postgres, entity, config) if config.incremental else None
        since = f" changed after {modified_after:%Y-%m-%d %H:%M:%S} UTC" if modified_after else ""
        context.log.info(f"Exporting {entity.name}{since} from {bubble.describe()}")
        if bubble.api_url:
            context.log.info("Only an admin API token sees every record: a user token silently hides private ones.")
        guard = PasswordGuard(entity, postgres, settings.hash_workers)
        checkpoint = PageCheckpoint(Path(settings.export_dir) / f"{entity.name}.partial.jsonl")
        writer = ExportWriter(settings.export_dir, entity.name)  # records go to disk as they arrive
        try:
            with bubble.open() as source:
                result = source.export(
                    entity,
                    modified_after=modified_after,
                    on_progress=ProgressLog(context.log, f"export {entity.name}"),
                    prepare=guard,
                    checkpoint=checkpoint,
                    sink=writer,
                )
        except (BubbleError, FileNotFoundError, ValueError) as exc:
            writer.discard()
            raise dg.Failure(f"{exc}. Pages already exported are kept; the next run resumes after them.") from None
        except BaseException:
            writer.discard()
            raise
        for note in result.notes:
            context.log.warning(f"{entity.name}: {note}")
        if guard.keys:
            context.log.info(f"{entity.name}: {guard.hashed} plain-text legacy passwords bcrypt-hashed before writing")
        manifest = ExportManifest(
            entity=entity.name,
            bubble_type=entity.bubble_type,
            source=bubble.describe(),
            announced_total=result.announced_total,
            exported=writer.count,
            unique_ids=len(writer.ids),
            pages=result.pages,
            exported_at=datetime.now(UTC).isoformat(),
            run_id=context.run.run_id,
            passwords_hashed=guard.hashed,
            notes=result.notes,
            modified_after=modified_after.isoformat() if modified_after else None,
            max_modified=writer.max_modified.isoformat() if writer.max_modified else None,
        )
        path = writer.commit(manifest)
        checkpoint.clear()
        return dg.MaterializeResult(
            metadata=_metadata(entity, manifest, writer, str(path)),
            check_results=[completeness(manifest)],
        )

    return _export


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
        self.workers, self.hashed = workers, 0
        self._count_lock = threading.Lock()  # pages arrive on several threads at once
        self.known: dict[tuple[str, str], str] = {}
        if self.keys:
            with postgres.connection() as conn:
                self.known = known_password_hashes(conn, postgres.schemas, entity)

    def __call__(self, records: list[dict]) -> None:
        if self.keys:
            hashed = protect_record_passwords(records, self.keys, known_hashes=self.known, workers=self.workers)
            with self._count_lock:
                self.hashed += hashed


def completeness(manifest: ExportManifest) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
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


def _metadata(entity: Entity, manifest: ExportManifest, writer: ExportWriter, path: str) -> dict[str, object]:
    return {
        "dagster/row_count": manifest.exported,
        "announced_total": manifest.announced_total,
        "pages": manifest.pages,
        "passwords_hashed": manifest.passwords_hashed,
        "source": manifest.source,
        "path": dg.MetadataValue.path(path),
        "fields_seen": dg.MetadataValue.json(dict(writer.fields.most_common())),
        "preview": dg.MetadataValue.md(preview_markdown(entity, writer.preview)),
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


EXPORT_ASSETS = [build_export_asset(name) for name in ENTITIES]
__all__ = ["EXPORT_ASSETS", "export_key"]
