"""One asset per table whose rows link files Bubble hosts: the files copied into storage the team owns.

Downstream of its table: the step finds the table's Bubble file URLs, copies those not held yet and
points the rows at the copies (`files.table_files`). Its checks: `files_copied` (ERROR: a file
Bubble still serves was not copied) and `files_missing_at_bubble` (WARN: Bubble no longer has it).
"""

import time
from collections.abc import Callable, Iterator

import dagster as dg

from culturebridge_migration.defs.checks import check_result, check_spec
from culturebridge_migration.defs.phase2 import PRIORITY_TAG, table_key
from culturebridge_migration.defs.resources import BubbleResource, FilesResource, MigrationSettings, PostgresResource
from culturebridge_migration.defs.run_reports import REPORT_HOOKS
from culturebridge_migration.defs.run_tags import is_dry_run
from culturebridge_migration.files.progress import CopyProgress
from culturebridge_migration.files.table_files import TableFiles, copy_table_files
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.mapping.file_links import url_columns
from culturebridge_migration.validation.file_checks import FILE_CHECKS, FilesInputs

FILES_GROUP = "files"
FILE_ENTITIES = [name for name, entity in ENTITIES.items() if url_columns(entity)]


def files_key(entity_name: str) -> dg.AssetKey:
    return dg.AssetKey(["files", ENTITIES[entity_name].table])


def build_files_asset(entity_name: str) -> dg.AssetsDefinition:
    entity, key = ENTITIES[entity_name], files_key(entity_name)
    columns = ", ".join(url_columns(entity))

    @dg.multi_asset(
        name=f"files_{entity.table}",
        specs=[
            dg.AssetSpec(
                key,
                group_name=FILES_GROUP,
                kinds={"file"},
                deps=[table_key(entity_name)],
                description=f"Every file Bubble hosts that `{entity.table}` links ({columns}), copied into the files "
                "storage (MIGRATION_FILES_URL or MIGRATION_FILES_DIR); the rows then link the copies.",
            )
        ],
        check_specs=[check_spec(check, key) for check in FILE_CHECKS],
        can_subset=True,
        pool="bubble_files",
        op_tags={PRIORITY_TAG: "-1"},  # no table waits for the copies: the loads go first
        hooks=REPORT_HOOKS,
    )
    def _files(
        context: dg.AssetExecutionContext,
        postgres: PostgresResource,
        bubble: BubbleResource,
        files: FilesResource,
        settings: MigrationSettings,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        clock, dry_run = time.perf_counter(), is_dry_run(context)
        current = settings.entities()[entity_name]
        with (
            postgres.writer(context, settings.writer_wait_seconds),
            postgres.database(settings.entities()) as db,
            bubble.file_addresses() as addresses,
            files.copier(
                addresses, _progress(context, f"copy {entity.table} files"), demo=postgres.database_url is None
            ) as copier,
        ):
            outcome = copy_table_files(
                db,
                current,
                copier,
                files.matcher(),
                run_id=context.run.run_id,
                job_name=context.run.job_name,
                dry_run=dry_run,
            )
        _log(context, outcome, files.describe(), dry_run)
        yield dg.MaterializeResult(asset_key=key, metadata=_metadata(outcome, time.perf_counter() - clock, dry_run))
        inputs = FilesInputs(outcome, dry_run)
        yield from (check_result(check, check.evaluate(inputs), key) for check in FILE_CHECKS)

    return _files


def _progress(context: dg.AssetExecutionContext, label: str) -> Callable[[CopyProgress], None]:
    last = [0.0]

    def log(progress: CopyProgress) -> None:
        now = time.monotonic()
        if now - last[0] >= 2.0 or progress.files_done == progress.files_total:
            last[0] = now
            context.log.info(f"{label}: {progress.describe()}")

    return log


def _log(context: dg.AssetExecutionContext, outcome: TableFiles, storage: str, dry_run: bool) -> None:
    s = outcome.summary
    if dry_run:
        context.log.info(f"{outcome.entity}: {outcome.to_copy} files to copy (rehearsal: none downloaded)")
        return
    context.log.info(
        f"{outcome.entity}: {outcome.references} file links; {s.copied} files copied "
        f"({s.bytes_copied / 1e6:.1f} MB), {s.held} already held, {s.missing} missing at Bubble, {s.failed} failed; "
        f"{outcome.relinked} rows now link the copies in {storage}"
    )


def _metadata(outcome: TableFiles, seconds: float, dry_run: bool) -> dict[str, object]:
    s = outcome.summary
    metadata: dict[str, object] = {
        "file_links": outcome.references,
        "copied": s.copied,
        "already_held": s.held,
        "missing_at_bubble": s.missing,
        "failed": s.failed,
        "bytes_copied": s.bytes_copied,
        "rows_relinked": outcome.relinked,
        "seconds": round(seconds, 3),
    }
    if dry_run:
        metadata["to_copy"] = outcome.to_copy
        metadata["dry_run"] = "rehearsal: nothing was downloaded or relinked"
    return metadata


FILE_ASSETS = [build_files_asset(name) for name in FILE_ENTITIES]
