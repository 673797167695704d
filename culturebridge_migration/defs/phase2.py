"""One asset per Phase 2 table, with its validations as asset checks.

The checks are declared on the table assets themselves and computed at the end of the load. A step
downstream of a table starts as soon as the table is loaded (definitions.py), its checks perhaps still
running, so the reports wait for every other step of the run to end before they read any check
(`run_reports.wait_for_the_other_steps`). The assets can be subset: the `validate_migration` job runs
only the checks, against Phase 2 as it is now.
None of the table checks is blocking: no table's load is made wrong by another table's failed
check, and the `cutover_readiness` gate turns every failed ERROR check into a failed run after
the reports were written. The load is `loading.migrate`, the checks `validation.checks`.
"""

from collections.abc import Generator, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg
import psycopg

from culturebridge_migration.defs.checks import check_result, check_spec
from culturebridge_migration.defs.event_log import EventLogResource
from culturebridge_migration.defs.exports import EXTRA_TYPES, export_key
from culturebridge_migration.defs.resources import BubbleResource, MigrationSettings, PostgresResource
from culturebridge_migration.defs.run_reports import REPORT_HOOKS
from culturebridge_migration.defs.run_tags import is_dry_run
from culturebridge_migration.loading.database import first_line, restarted
from culturebridge_migration.loading.migrate import EntityOutcome, migrate_entity
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.loading.rehearsal import keep_rehearsal, rehearsal
from culturebridge_migration.loading.schema import table_columns
from culturebridge_migration.loading.verbatim import migrate_verbatim
from culturebridge_migration.mapping.corrections import EntityFixes
from culturebridge_migration.mapping.entities import ENTITIES, Entity, extra_entity
from culturebridge_migration.reporting.markdown import rejects_preview
from culturebridge_migration.sources.export_run import read_meta
from culturebridge_migration.sources.export_store import (
    ExportManifest,
    ExportMismatch,
    extra_manifests,
    iter_records,
    read_manifest,
)
from culturebridge_migration.sources.schema import MalformedMeta, parse_meta
from culturebridge_migration.validation.checks import (
    RECORDS_KEPT_CHECK,
    CheckInputs,
    TableCheck,
    staged_export,
    table_checks,
)
from culturebridge_migration.validation.export_digest import ExportDigest

PHASE2_GROUP = "phase2"
PRIORITY_TAG = "dagster/priority"  # of the steps ready to start, the higher first
# Where the UI says a table is before any run: the app schema of an unconfigured PostgresResource.
# A run's materialization names the schema it wrote to (`_metadata`).
APP_SCHEMA = PostgresResource.model_fields["app_schema"].default


def table_key(entity_name: str) -> dg.AssetKey:
    return dg.AssetKey(["phase2", ENTITIES[entity_name].table])


def column_schema(entity: Entity) -> dg.TableSchema:
    """The table's columns as the UI shows them, from the same definition the DDL is made of."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                column.name,
                column.sql_type,
                description=column.description,
                constraints=dg.TableColumnConstraints(
                    nullable=not column.not_null, unique=column.unique, other=list(column.checks)
                ),
            )
            for column in table_columns(entity)
        ]
    )


def tables_after(entity_name: str) -> set[str]:
    """The tables that load only after this one, directly or through another."""
    direct = {name for name, e in ENTITIES.items() if entity_name in e.upstream}
    return direct.union(*(tables_after(name) for name in direct))


def build_table_asset(entity_name: str) -> dg.AssetsDefinition:
    entity = ENTITIES[entity_name]
    key = table_key(entity_name)
    checks = table_checks(entity)
    spec = dg.AssetSpec(
        key,
        group_name=PHASE2_GROUP,
        kinds={"postgres"},
        deps=[export_key(entity_name), *(table_key(name) for name in entity.upstream)],
        description=f"Phase 2 table `{entity.table}`, upserted by bubble_id from the `{entity.bubble_type}` export.",
        metadata={"dagster/column_schema": column_schema(entity), "dagster/table_name": f"{APP_SCHEMA}.{entity.table}"},
    )
    check_specs = [check_spec(c, key) for c in checks]

    @dg.multi_asset(
        name=f"phase2_{entity.table}",
        specs=[spec],
        check_specs=check_specs,
        can_subset=True,
        pool="phase2",
        # Of the steps ready at once, the table that most others wait for goes first (users, then bookings).
        op_tags={PRIORITY_TAG: str(len(tables_after(entity_name)))},
        hooks=REPORT_HOOKS,  # a table that fails still leaves the reports, saying why
    )
    def _table(
        context: dg.AssetExecutionContext,
        postgres: PostgresResource,
        settings: MigrationSettings,
        bubble: BubbleResource,
        event_log: EventLogResource,  # held open while the step's check results are written (defs/event_log.py)
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        try:
            with postgres.writer(context, settings.writer_wait_seconds):
                yield from _load_and_check(context, postgres, settings, bubble, entity_name, key, checks)
        except ExportMismatch as exc:
            raise dg.Failure(str(exc)) from None
        except psycopg.OperationalError as exc:  # not about a row: the server, the disk, the network
            failed = "restarted (or was shut down)" if restarted(exc) else "failed"
            raise dg.Failure(
                f"PostgreSQL {failed} while loading {entity_name}: {first_line(exc)}. The table is as it was "
                "(each table loads in one transaction); run the migration again once the database is back."
            ) from None

    return _table


def _load_and_check(
    context: dg.AssetExecutionContext,
    postgres: PostgresResource,
    settings: MigrationSettings,
    bubble: BubbleResource,
    entity_name: str,
    key: dg.AssetKey,
    checks: list[TableCheck],
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Load the table from its export (when the table is selected), then run its selected checks.

    In a dry run both happen inside a transaction that is rolled back (loading/rehearsal.py): the checks
    see what cutover would leave, Phase 2 stays as it was, and the reports get what the load would do.
    """
    entities = settings.entities()
    try:
        manifest = read_manifest(settings.export_dir, entity_name)
    except FileNotFoundError as exc:
        raise dg.Failure(str(exc)) from None
    dry_run, started = is_dry_run(context), datetime.now(UTC)
    with postgres.database(entities) as db:
        with rehearsal(db, context.run.run_id) if dry_run else nullcontext():
            step = _TableStep(context, postgres, settings, bubble, db, entities[entity_name], key, manifest)
            outcome = yield from step.load_and_check(checks)
        if dry_run and outcome is not None:
            keep_rehearsal(db, outcome, context.run.run_id, context.run.job_name, started)


@dataclass
class _TableStep:
    context: dg.AssetExecutionContext
    postgres: PostgresResource
    settings: MigrationSettings
    bubble: BubbleResource
    db: Phase2Database
    entity: Entity
    key: dg.AssetKey
    manifest: ExportManifest

    def load_and_check(
        self, checks: list[TableCheck]
    ) -> Generator[dg.MaterializeResult | dg.AssetCheckResult, None, EntityOutcome | None]:
        """Yields the table's materialization and check results; returns the load's outcome (None: not loaded)."""
        context, settings, manifest = self.context, self.settings, self.manifest
        # The checks' view of the export, gathered as the load streams it (or read for the checks alone).
        digest = ExportDigest(self.entity, 2 * settings.sample_size, settings.sample_seed)  # rejects are drawn too
        records = digest.watch(iter_records(settings.export_dir, self.entity.name, manifest.export_id))
        outcome, decisions = None, settings.decisions_for(self.entity)
        if self.key in context.selected_asset_keys:
            outcome = self.load(records, decisions)
            _log_outcome(context, outcome)
            metadata = _metadata(self.postgres, self.entity, outcome)
            if is_dry_run(context):
                metadata["dry_run"] = "rehearsal: these are the changes cutover would make; nothing was written"
            yield dg.MaterializeResult(asset_key=self.key, metadata=metadata)
        else:
            digest.consume(records)
        inputs = CheckInputs(
            self.db,
            self.entity,
            digest,
            manifest,
            settings.sample_size,
            settings.deleted_records_mode(),
            settings.max_reject_share,
            _bubble_fields(settings, self.entity),
            decisions,
            loaded_here=outcome is not None,
            sweep=outcome.sweep if outcome is not None else None,
        )
        selected = {k.name for k in context.selected_asset_check_keys if k.asset_key == self.key}
        judged = inputs.judged()
        with staged_export(inputs):
            for check in checks:
                if check.name in selected:
                    result = check.evaluate(inputs)
                    result.details["judged"] = judged  # every check result says over which records it ran
                    yield check_result(check, result)
        return outcome

    def load(self, records: Iterator[dict], decisions: EntityFixes | None) -> EntityOutcome:
        manifest = self.manifest
        if not manifest.complete:
            raise dg.Failure(
                f"The {self.entity.name} export is incomplete ({manifest.exported} of {manifest.announced_total} "
                "announced records): export it again before loading"
            )
        return migrate_entity(
            self.db,
            self.entity,
            records,
            run_id=self.context.run.run_id,
            job_name=self.context.run.job_name,
            watermark=datetime.fromisoformat(manifest.max_modified) if manifest.max_modified else None,
            # Only a whole export (or a census) proves a record is gone: the load checks it before any deletion.
            deleted_records=self.settings.deleted_records_mode(),
            export=manifest,
            decisions=decisions,
            still_in_bubble=self.still_in_bubble,
        )

    def still_in_bubble(self, entity: Entity, bubble_ids: list[str]) -> set[str] | None:
        """Asked before a row missing from a full export is flagged or deleted: does Bubble answer it by id?"""
        with self.bubble.open() as source:  # opened only when some row is missing: most loads never ask
            alive = source.alive_among(entity, bubble_ids)
        if alive is not None:
            self.context.log.info(
                f"{entity.name}: asked Bubble by id for {len(bubble_ids)} record(s) missing from the export: {len(alive)} still there"
            )
        return alive


def _bubble_fields(settings: MigrationSettings, entity: Entity) -> frozenset[str] | None:
    """The type's fields as Bubble's /meta lists them, when the last export could read it."""
    document, _ = read_meta(settings.export_dir)
    if document is None:
        return None
    try:
        return parse_meta(document).field_keys(entity.bubble_type)
    except MalformedMeta:
        return None


def _log_outcome(context: dg.AssetExecutionContext, outcome: EntityOutcome) -> None:
    r = outcome.result
    context.log.info(
        f"{outcome.entity}: exported {outcome.exported}, loaded {outcome.loaded} "
        f"(inserted {r.inserted}, updated {r.updated}, unchanged {r.unchanged}), "
        f"rejected {len(outcome.rejects)} {outcome.rejects_by_reason or ''} in {outcome.seconds:.2f}s"
    )
    if outcome.sweep and (outcome.sweep.deleted or outcome.sweep.flagged):
        context.log.warning(
            f"{outcome.entity}: gone from Bubble: deleted {len(outcome.sweep.deleted)} "
            f"{outcome.sweep.deleted[:5]}, flagged {len(outcome.sweep.flagged)} {list(outcome.sweep.flagged)[:5]}"
        )
    if outcome.sweep and outcome.sweep.alive:
        context.log.error(
            f"{outcome.entity}: {len(outcome.sweep.alive)} record(s) missing from the full export are still in "
            f"Bubble by id (e.g. {outcome.sweep.alive[0]}): left as they are; the export was not whole"
        )


def _metadata(postgres: PostgresResource, entity: Entity, outcome: EntityOutcome) -> dict[str, object]:
    r = outcome.result
    return {
        "dagster/row_count": outcome.loaded,
        "dagster/table_name": f"{postgres.app_schema}.{entity.table}",
        "exported": outcome.exported,
        "loaded": outcome.loaded,
        "inserted": r.inserted,
        "updated": r.updated,
        "unchanged": r.unchanged,
        "rejected": len(outcome.rejects),
        "rejected_by_reason": dg.MetadataValue.json(outcome.rejects_by_reason),
        "deleted_in_bubble": dg.MetadataValue.json(_sweep_metadata(outcome)),
        "seconds": round(outcome.seconds, 3),
        "read_seconds": round(outcome.read_seconds, 6),
        "map_seconds": round(outcome.map_seconds, 6),
        "rejects_preview": dg.MetadataValue.md(rejects_preview(outcome.rejects)),
    }


def _sweep_metadata(outcome: EntityOutcome) -> dict[str, object]:
    sweep = outcome.sweep
    if sweep is None:
        return {"skipped": "incremental export: absence proves nothing"}
    return {
        "deleted_records": str(sweep.mode),
        "deleted": len(sweep.deleted),
        "flagged": len(sweep.flagged),
        "alive_in_bubble": sweep.alive[:20],  # missing from the export, answered by id: left as they are
        "asked_by_id": sweep.confirmed,
    }


# -- Bubble types no table migrates ------------------------------------------------------------------
BUBBLE_RECORDS = dg.AssetKey(["phase2", "bubble_records"])


@dg.multi_asset(
    name="phase2_bubble_records",
    specs=[
        dg.AssetSpec(
            BUBBLE_RECORDS,
            group_name=PHASE2_GROUP,
            kinds={"postgres"},
            deps=[EXTRA_TYPES],
            description="The Bubble types no table migrates, one jsonb row per record in the migration schema's "
            "bubble_records, so nothing of the app is left behind on Bubble.",
        )
    ],
    check_specs=[check_spec(RECORDS_KEPT_CHECK, BUBBLE_RECORDS)],
    can_subset=True,
    pool="phase2",
    hooks=REPORT_HOOKS,
)
def bubble_records(
    context: dg.AssetExecutionContext, postgres: PostgresResource, settings: MigrationSettings
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    counts: dict[str, dict[str, int]] = {}
    with (
        postgres.writer(context, settings.writer_wait_seconds),
        postgres.database(settings.entities()) as db,
        rehearsal(db, context.run.run_id) if is_dry_run(context) else nullcontext(),  # counted, not kept
    ):
        for manifest in extra_manifests(settings.export_dir):
            entity = extra_entity(manifest.bubble_type)
            records = iter_records(settings.export_dir, entity.name, manifest.export_id)
            started = datetime.now(UTC)
            watermark = datetime.fromisoformat(manifest.max_modified) if manifest.max_modified else None
            result, rejects, read = migrate_verbatim(
                db,
                entity,
                records,
                run_id=context.run.run_id,
                job_name=context.run.job_name,
                watermark=watermark,
                started=started,
            )
            counts[manifest.bubble_type] = {"exported": read, "kept": result.loaded, "rejected": len(rejects)}
            context.log.info(f"{entity.name}: kept {result.loaded} of {read} records ({len(rejects)} rejected)")
    yield dg.MaterializeResult(
        asset_key=BUBBLE_RECORDS,
        metadata={"dagster/row_count": sum(c["kept"] for c in counts.values()), "types": dg.MetadataValue.json(counts)},
    )
    yield check_result(RECORDS_KEPT_CHECK, RECORDS_KEPT_CHECK.evaluate(counts), BUBBLE_RECORDS)


TABLE_ASSETS = [build_table_asset(name) for name in ENTITIES]
VERBATIM_ASSETS = [bubble_records]
