"""One asset per Bubble type (its records on disk, with a blocking completeness check), all
exported by one step through one client.

One step, because Bubble limits requests per app, not per type: the types export at once and
share one bound on requests in flight (`page_workers`) and one `requests_per_minute` budget.
Separate steps would each bring their own budget, and the multiprocess executor runs two at once.
The step can be subset: `--select bubble/users` exports only the users. The work itself is
`sources.export_run`; this module wires resources to it and reports what it did.
"""

from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta

import dagster as dg

from culturebridge_migration.defs.checks import check_result, check_spec
from culturebridge_migration.defs.event_log import EventLogResource
from culturebridge_migration.defs.resources import BubbleResource, MigrationSettings, PostgresResource
from culturebridge_migration.defs.run_reports import REPORT_HOOKS
from culturebridge_migration.mapping.entities import ENTITIES, EXTRA_PREFIX, Entity
from culturebridge_migration.reporting.markdown import export_preview
from culturebridge_migration.reporting.progress import ProgressLog
from culturebridge_migration.sources.bubble_api import BubbleError
from culturebridge_migration.sources.deletion_census import CensusOutcome, KnownRecord
from culturebridge_migration.sources.export_run import (
    ExportFailure,
    ExportPlan,
    ExportProgress,
    TypeExport,
    export_types,
    save_meta,
)
from culturebridge_migration.sources.folder_lock import FolderBusy, export_folder
from culturebridge_migration.validation.checks import (
    EXPORT_COMPLETE_CHECK,
    EXTRA_TYPES_COMPLETE_CHECK,
    describe_incomplete_export,
)

EXPORT_GROUP = "bubble_export"


class ExportConfig(dg.Config):
    incremental: bool = False  # only records modified after the type's watermark
    overlap_minutes: float = 5.0  # re-read this much before the watermark: Bubble's clock may skew
    # Cutover: after the incremental export, a census of each type finds the records Bubble deleted
    # (sources/deletion_census.py) without a full export; the loads then sweep them.
    census: bool = False


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


EXTRA_TYPES = dg.AssetKey(["bubble", "extra_types"])


@dg.multi_asset(
    name="bubble_export",
    specs=[
        *(_export_spec(name) for name in ENTITIES),
        dg.AssetSpec(
            EXTRA_TYPES,
            group_name=EXPORT_GROUP,
            kinds={"bubble", "json"},
            description="Every Bubble type /meta exposes (or CSV file exported) that no table migrates, exported "
            "the same way, to be kept verbatim in the migration schema (MIGRATION_KEEP_UNMIGRATED_TYPES).",
        ),
    ],
    check_specs=[
        *(check_spec(EXPORT_COMPLETE_CHECK, export_key(name)) for name in ENTITIES),
        check_spec(EXTRA_TYPES_COMPLETE_CHECK, EXTRA_TYPES),
    ],
    can_subset=True,
    pool="bubble_api",
    description="Exports the selected Bubble types at once, through one client and one request budget.",
    hooks=REPORT_HOOKS,
)
def bubble_export(
    context: dg.AssetExecutionContext,
    config: ExportConfig,
    bubble: BubbleResource,
    postgres: PostgresResource,
    settings: MigrationSettings,
    event_log: EventLogResource,  # held open while the run's events are written (defs/event_log.py)
) -> Iterator[dg.MaterializeResult]:
    entities = [e for name, e in settings.entities().items() if export_key(name) in context.selected_asset_keys]
    with_extras = EXTRA_TYPES in context.selected_asset_keys and settings.keep_unmigrated_types
    if bubble.api_url:
        context.log.info("Only an admin API token sees every record: a user token silently hides private ones.")
    failures: list[str] = []
    extras: list[TypeExport] = []
    # Cutover refuses to start while another run writes to Phase 2: downtime is not spent waiting for it.
    wait = 0 if config.census else settings.writer_wait_seconds
    with (
        postgres.writer(context, wait),
        _folder(settings.export_dir, context.run.run_id, wait),
        bubble.open() as source,
        # At cutover, what Phase 2 knows is read while Bubble pages, two types at a time (reading is CPU the
        # census threads share), in the plans' order; each type's census waits for its own.
        ThreadPoolExecutor(max_workers=2, thread_name_prefix="known-records") as known_readers,
    ):
        try:
            document, note = save_meta(source, settings.export_dir)
        except BubbleError as exc:  # Bubble cannot be reached at all: one message, not a traceback per type
            raise dg.Failure(f"Export failed: {exc}. No type was exported.") from None
        if document is None:
            context.log.warning(f"Bubble's /meta is not available ({note}): the fields are learned from the records")
        if with_extras:
            entities += source.extra_types(settings.entities().values(), document)
        plans = _plans(postgres, settings, entities, config, known_readers)
        context.log.info(f"Exporting {', '.join(e.name for e in entities)} from {bubble.describe()}")
        for plan in plans:
            if plan.modified_after:
                context.log.info(
                    f"{plan.entity.name}: only records changed after {plan.modified_after:%Y-%m-%d %H:%M:%S} UTC"
                )
        logs = {e.name: ProgressLog(context.log, f"export {e.name}") for e in entities}
        for event in export_types(
            source, plans, settings.export_dir, context.run.run_id, hash_workers=settings.hash_workers
        ):
            if isinstance(event, ExportProgress):
                logs[event.entity](event.done, event.total)
            elif isinstance(event, ExportFailure):
                failures.append(f"{event.entity.name}: {event.error}")
            else:
                if event.entity.name.startswith(EXTRA_PREFIX):
                    extras.append(event)
                else:
                    yield _materialization(context, event)
                if not event.manifest.complete:  # its blocking check stops the tables; the step says why
                    failures.append(f"{event.entity.name}: {describe_incomplete_export(event.manifest)}")
    if with_extras:
        yield _extras_materialization(extras)
    if failures:
        others = "The other types were exported." if len(failures) < len(entities) else "No type was exported."
        raise dg.Failure(
            "Export failed for " + "; ".join(failures) + ". Pages already exported are kept; the next run resumes "
            f"after them. {others}"
        )


@contextmanager
def _folder(folder: str, run_id: str, wait: float) -> Iterator[None]:
    try:
        with export_folder(folder, run_id, wait_seconds=wait):
            yield
    except FolderBusy as exc:
        raise dg.Failure(str(exc)) from None


def _extras_materialization(extras: list[TypeExport]) -> dg.MaterializeResult:
    counts = {e.entity.bubble_type: e.manifest.exported for e in extras}
    outcome = EXTRA_TYPES_COMPLETE_CHECK.evaluate([e.manifest for e in extras])
    return dg.MaterializeResult(
        asset_key=EXTRA_TYPES,
        metadata={"dagster/row_count": sum(counts.values()), "types": dg.MetadataValue.json(counts)},
        check_results=[check_result(EXTRA_TYPES_COMPLETE_CHECK, outcome, EXTRA_TYPES)],
    )


def _plans(
    postgres: PostgresResource,
    settings: MigrationSettings,
    entities: list[Entity],
    config: ExportConfig,
    known_readers: Executor,
) -> list[ExportPlan]:
    """Per type: where an incremental export starts, the password hashes Phase 2 already holds and, at
    cutover, the read of what Phase 2 knows (started on `known_readers`; the type's census waits for it)."""
    with postgres.database(settings.entities()) as db:
        plans = []
        for entity in entities:
            watermark = db.read_watermark(entity) if config.incremental else None
            start = watermark - timedelta(minutes=config.overlap_minutes) if watermark else None
            known = db.known_password_hashes(entity) if entity.has_passwords else {}
            # Types kept verbatim are archived, not swept: the census runs for the migrated tables.
            census = (
                known_readers.submit(_known_records, postgres, settings, entity).result
                if config.census and entity.name in settings.entities()
                else None
            )
            plans.append(ExportPlan(entity, start, known, census))
    return plans


def _known_records(postgres: PostgresResource, settings: MigrationSettings, entity: Entity) -> list[KnownRecord]:
    """What Phase 2 knows of the type, read on a connection of its own."""
    with postgres.database(settings.entities()) as db:
        return db.known_records(entity)


def _materialization(context: dg.AssetExecutionContext, export: TypeExport) -> dg.MaterializeResult:
    entity, manifest = export.entity, export.manifest
    for note in manifest.notes:
        context.log.warning(f"{entity.name}: {note}")
    if manifest.census:
        census = CensusOutcome(**manifest.census)
        if census.swept:
            context.log.warning(
                f"{entity.name}: {len(census.alive_elsewhere)} record(s) answered by id outside their Created Date "
                f"window (e.g. {census.alive_elsewhere[0]}): a Created Date moved in Bubble, so the census read "
                "the whole type to find deletions; none of them is deleted"
            )
        if census.conclusive:
            context.log.info(
                f"{entity.name}: census of {census.known} known records in {census.requests} requests "
                f"({census.seconds:.1f} s): {len(census.gone)} deleted in Bubble"
            )
        else:
            context.log.warning(f"{entity.name}: deletions unknown: {census.why_inconclusive()}")
    if manifest.passwords_hashed:
        context.log.info(
            f"{entity.name}: {manifest.passwords_hashed} plain-text legacy passwords bcrypt-hashed before writing"
        )
    return dg.MaterializeResult(
        asset_key=export_key(entity.name),
        metadata=_metadata(export),
        check_results=[
            check_result(EXPORT_COMPLETE_CHECK, EXPORT_COMPLETE_CHECK.evaluate(manifest), export_key(entity.name))
        ],
    )


def _metadata(export: TypeExport) -> dict[str, object]:
    manifest, writer = export.manifest, export.writer
    return {
        "dagster/row_count": manifest.exported,
        "announced_total": manifest.announced_total,
        "pages": manifest.pages,
        # Data API searches of this type (pages, and the census's counts and reads); retries not counted.
        "requests": manifest.pages + (manifest.census or {}).get("requests", 0),
        "passwords_hashed": manifest.passwords_hashed,
        "source": manifest.source,
        "path": dg.MetadataValue.path(str(export.path)),
        "seconds": round(export.seconds, 2),
        "hash_seconds": round(export.hash_seconds, 2),
        "fields_seen": dg.MetadataValue.json(dict(writer.fields.most_common())),
        "preview": dg.MetadataValue.md(export_preview(export.entity, writer.preview)),
        **({"census": dg.MetadataValue.json(_census_metadata(manifest.census))} if manifest.census else {}),
    }


def _census_metadata(census: dict) -> dict[str, object]:
    return {k: v[:20] if isinstance(v, list) else v for k, v in census.items()} | {"gone_count": len(census["gone"])}


EXPORT_ASSETS = [bubble_export]
__all__ = ["EXPORT_ASSETS", "export_key"]
