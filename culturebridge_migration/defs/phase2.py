"""One asset per Phase 2 table, with its validations as asset checks.

The checks are declared on the table assets themselves and computed at the end of the load, so
every check of a run has its result before anything downstream (reports) reads it. The assets
can be subset: the `validate_migration` job runs only the checks, against Phase 2 as it is now.
None of the table checks is blocking: no table's load is made wrong by another table's failed
check, and the `cutover_readiness` gate turns every failed ERROR check into a failed run after
the reports were written.
"""

from collections.abc import Iterator
from datetime import datetime

import dagster as dg
import psycopg

from culturebridge_migration.defs.exports import export_key
from culturebridge_migration.defs.resources import MigrationSettings, PostgresResource
from culturebridge_migration.loading.migrate import EntityOutcome, migrate_entity
from culturebridge_migration.mapping.entities import ENTITIES, Entity
from culturebridge_migration.mapping.mapper import row_columns
from culturebridge_migration.sources.export_store import ExportManifest, iter_records, read_manifest
from culturebridge_migration.validation import checks
from culturebridge_migration.validation.export_digest import ExportDigest

ROW_COUNTS = "row_counts"
SAMPLE = "sample_matches_export"
DELETED = "deleted_in_bubble"

# Columns every table has beside the mapped fields: (type, description, nullable).
_BOOKKEEPING_COLUMNS = {
    "id": ("bigint", "surrogate key", False),
    "bubble_id": ("text", "Bubble _id (unique)", False),
    "password_reset_required": ("boolean", "no usable password came from Bubble", False),
    "created_at": ("timestamptz", "Bubble Created Date", False),
    "updated_at": ("timestamptz", "Bubble Modified Date", False),
}


def table_key(entity_name: str) -> dg.AssetKey:
    return dg.AssetKey(["phase2", ENTITIES[entity_name].table])


def check_specs(entity: Entity) -> list[dg.AssetCheckSpec]:
    key = table_key(entity.name)
    specs = [
        dg.AssetCheckSpec(ROW_COUNTS, asset=key, description=checks.ROW_COUNTS_DESCRIPTION),
        dg.AssetCheckSpec(SAMPLE, asset=key, description=checks.SAMPLE_DESCRIPTION),
        dg.AssetCheckSpec(DELETED, asset=key, description=checks.DELETED_DESCRIPTION),
    ]
    specs += [
        dg.AssetCheckSpec(rule.name, asset=key, description=f"{rule.description} ({rule.severity})")
        for rule in checks.RULES
        if rule.entity == entity.name
    ]
    return specs


def column_schema(entity: Entity) -> dg.TableSchema:
    """The table's columns as the UI shows them, from the same field table the loader uses."""
    fields = {f.column: f for f in entity.fields}
    columns = []
    for name in ["id", *row_columns(entity)]:
        if name in fields:
            spec = fields[name]
            sql_type, description, nullable = spec.sql_type, f"from Bubble '{spec.source}'", not spec.required
        else:
            sql_type, description, nullable = _BOOKKEEPING_COLUMNS[name]
        columns.append(
            dg.TableColumn(
                name,
                sql_type,
                description=description,
                constraints=dg.TableColumnConstraints(nullable=nullable, unique=name in ("id", "bubble_id")),
            )
        )
    return dg.TableSchema(columns=columns)


def build_table_asset(entity_name: str) -> dg.AssetsDefinition:
    entity = ENTITIES[entity_name]
    key = table_key(entity_name)
    spec = dg.AssetSpec(
        key,
        group_name="phase2",
        kinds={"postgres"},
        deps=[export_key(entity_name), *(table_key(name) for name in entity.upstream)],
        description=f"Phase 2 table `{entity.table}`, upserted by bubble_id from the `{entity.bubble_type}` export.",
        metadata={"dagster/column_schema": column_schema(entity), "dagster/table_name": f"public.{entity.table}"},
    )

    @dg.multi_asset(
        name=f"phase2_{entity.table}", specs=[spec], check_specs=check_specs(entity), can_subset=True, pool="phase2"
    )
    def _table(
        context: dg.AssetExecutionContext, postgres: PostgresResource, settings: MigrationSettings
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        entities = settings.entities()
        current = entities[entity_name]
        try:
            manifest = read_manifest(settings.export_dir, entity_name)
        except FileNotFoundError as exc:
            raise dg.Failure(str(exc)) from None
        # The checks' view of the export, gathered as the load streams it (or read for the checks alone).
        digest = ExportDigest(2 * settings.sample_size, settings.sample_seed)  # rejects are drawn too
        records = digest.watch(iter_records(settings.export_dir, entity_name))
        with postgres.connection() as conn:
            if key in context.selected_asset_keys:
                if not manifest.complete:
                    raise dg.Failure(
                        f"The {entity_name} export is incomplete ({manifest.exported} of {manifest.announced_total} "
                        "announced records): export it again before loading"
                    )
                outcome = migrate_entity(
                    conn,
                    postgres.schemas,
                    entities,
                    current,
                    records,
                    run_id=context.run.run_id,
                    job_name=context.run.job_name,
                    watermark=datetime.fromisoformat(manifest.max_modified) if manifest.max_modified else None,
                    # Only a full export proves a record is gone; an incremental one lists only changes.
                    deleted_records=settings.deleted_records_mode() if manifest.modified_after is None else None,
                )
                _log_outcome(context, outcome)
                yield dg.MaterializeResult(asset_key=key, metadata=_metadata(postgres, current, outcome))
            else:
                digest.consume(records)
            yield from _run_checks(context, conn, postgres, settings, entities, current, digest, manifest)

    return _table


def _run_checks(
    context: dg.AssetExecutionContext,
    conn: psycopg.Connection,
    postgres: PostgresResource,
    settings: MigrationSettings,
    entities: dict[str, Entity],
    entity: Entity,
    export: ExportDigest,
    manifest: ExportManifest,
) -> Iterator[dg.AssetCheckResult]:
    key = table_key(entity.name)
    selected = {k.name for k in context.selected_asset_check_keys if k.asset_key == key}
    schemas = postgres.schemas
    if ROW_COUNTS in selected:
        yield _result(ROW_COUNTS, "ERROR", checks.check_row_counts(conn, schemas, entity, export.count))
    if SAMPLE in selected:
        outcome = checks.check_sample(conn, schemas, entities, entity, export.sample, size=settings.sample_size)
        yield _result(SAMPLE, "ERROR", outcome)
    if DELETED in selected:
        if manifest.modified_after is None:
            mode = settings.deleted_records_mode()
            outcome = checks.check_deleted_in_bubble(conn, schemas, entity, export.ids, mode)
        else:  # an incremental export lists only changes: absence proves nothing
            outcome = checks.Outcome(True, 0, details={"skipped": "incremental export; the next full export sweeps"})
        yield _result(DELETED, "WARN", outcome)
    for rule in checks.RULES:
        if rule.entity == entity.name and rule.name in selected:
            yield _result(rule.name, rule.severity, checks.run_rule(conn, schemas, rule))


def _result(name: str, severity: str, outcome: checks.Outcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity(severity),
        metadata={
            "offending_rows": outcome.offending,
            "sample_bubble_ids": dg.MetadataValue.json(outcome.sample_ids),
            **{k: v if isinstance(v, int | str) else dg.MetadataValue.json(v) for k, v in outcome.details.items()},
        },
    )


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
        "read_seconds": round(outcome.read_seconds, 3),
        "map_seconds": round(outcome.map_seconds, 3),
        "rejects_preview": dg.MetadataValue.md(_rejects_markdown(outcome)),
    }


def _sweep_metadata(outcome: EntityOutcome) -> dict[str, object]:
    sweep = outcome.sweep
    if sweep is None:
        return {"skipped": "incremental export: absence proves nothing"}
    return {"deleted_records": str(sweep.mode), "deleted": len(sweep.deleted), "flagged": len(sweep.flagged)}


def _rejects_markdown(outcome: EntityOutcome, limit: int = 20) -> str:
    if not outcome.rejects:
        return "No rejects."
    lines = ["| Bubble id | column | value | reason | what to do |", "|---|---|---|---|---|"]
    for r in outcome.rejects[:limit]:
        value = (r.value or "").replace("|", "\\|").replace("\n", " ")[:40]
        lines.append(f"| {r.bubble_id} | {r.column} | {value} | {r.reason} | {r.message.replace('|', '/')} |")
    if len(outcome.rejects) > limit:
        lines.append(f"\n… and {len(outcome.rejects) - limit} more in the errors report.")
    return "\n".join(lines)


TABLE_ASSETS = [build_table_asset(name) for name in ENTITIES]
