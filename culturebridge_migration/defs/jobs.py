"""The jobs operators run (`dagster job execute -m culturebridge_migration -j NAME`) and the sensor that
writes the reports of a run that a blocking check stopped."""

import dagster as dg

from culturebridge_migration.defs.phase2 import TABLE_ASSETS
from culturebridge_migration.defs.reports import FOR_RUN_TAG, REPORTS_GROUP, SUMMARY, planned_asset_keys
from culturebridge_migration.defs.resources import MigrationSettings, PostgresResource
from culturebridge_migration.defs.run_reports import run_stamp
from culturebridge_migration.defs.run_tags import CUTOVER_EXPORT, DRY_RUN_TAG, EXPORT_OP, INCREMENTAL_EXPORT
from culturebridge_migration.loading.rollback import RollbackBlocked, last_run, rollback_run
from culturebridge_migration.reporting.files import write_report_files
from culturebridge_migration.reporting.rollback_report import rollback_json, rollback_texts

full_migration = dg.define_asset_job(
    "full_migration",
    selection=dg.AssetSelection.all(),
    description="Export every Bubble type, load every Phase 2 table, validate, and write the reports.",
)

# A sync brings few records: its steps are small, and a process each (fork, imports, resources) would
# cost more than their work. They run one after another in the run's own process.
SMALL_STEPS = dg.in_process_executor

incremental_sync = dg.define_asset_job(
    "incremental_sync",
    selection=dg.AssetSelection.all(),
    config={"ops": {EXPORT_OP: {"config": INCREMENTAL_EXPORT}}},
    executor_def=SMALL_STEPS,
    description="Only what changed in Bubble since the last successful load of each type (by Modified Date).",
)

incremental_sync_schedule = dg.ScheduleDefinition(
    job=incremental_sync,
    cron_schedule="*/30 * * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,  # turned on deliberately between first migration and cutover
    description="Keeps Phase 2 within half an hour of Bubble until cutover.",
)

# The final sync at cutover (Phase 1 read-only): only what changed, the deletions proved by a census per
# type instead of a full export, every load, every check, the reports and the gate, in one run.
CUTOVER_CONFIG = {"ops": {EXPORT_OP: {"config": CUTOVER_EXPORT}}}

cutover = dg.define_asset_job(
    "cutover",
    selection=dg.AssetSelection.all(),
    config=CUTOVER_CONFIG,
    executor_def=SMALL_STEPS,
    description="Cutover, with Bubble read-only: the changes and the deletions since the last run, loaded, checked "
    "and reported; the reports state the downtime and the requests, the exit code whether to switch.",
)

cutover_rehearsal = dg.define_asset_job(
    "cutover_rehearsal",
    selection=dg.AssetSelection.all(),
    config=CUTOVER_CONFIG,
    executor_def=SMALL_STEPS,
    tags={DRY_RUN_TAG: "true"},
    description="The cutover as a dry run: what it would insert, update, delete and reject per type, its checks "
    "and reports, and how long it takes, without changing Phase 2.",
)

validate_migration = dg.define_asset_job(
    "validate_migration",
    selection=dg.AssetSelection.checks_for_assets(*TABLE_ASSETS),
    description="Only the checks, against what is in Phase 2 now: nothing is exported or loaded.",
)

migration_reports = dg.define_asset_job(
    "migration_reports",
    selection=dg.AssetSelection.groups(REPORTS_GROUP),
    description=f"The reports of the run named by the `{FOR_RUN_TAG}` tag (default: this run).",
)


class RollbackConfig(dg.Config):
    run_id: str | None = None  # the Dagster run id to undo; default: the last one not rolled back
    force: bool = False  # undo even over what the app changed since (the log says what it overwrote)


@dg.op(description="Undo one migration run in one transaction, or refuse and change nothing.")
def rollback_run_op(
    context: dg.OpExecutionContext, config: RollbackConfig, postgres: PostgresResource, settings: MigrationSettings
) -> None:
    with postgres.writer(context, settings.writer_wait_seconds, run_done=True), postgres.database() as db:
        run_id = config.run_id or last_run(db)
        if run_id is None:
            raise dg.Failure("There is no migration run to roll back.")
        try:
            done = rollback_run(db, run_id, force=config.force)
        except RollbackBlocked as exc:
            raise dg.Failure(str(exc)) from None
    context.log.info(
        f"Rolled back run {run_id}: {done.restored} rows restored, {done.recreated} recreated "
        f"(deleted by the run), {done.deleted} deleted (inserted by the run); watermarks and flags put back"
    )
    for conflict in done.overwritten:
        context.log.warning(f"force: overwrote what the app did since the run: {conflict.describe()}")
    report = rollback_json(context.run.run_id, run_id, done, forced=config.force)
    texts = rollback_texts(report)
    paths = write_report_files(settings.report_dir, run_stamp(context.instance, context.run.run_id), texts)
    context.log.info(f"Rollback report: {paths['rollback_summary']}")
    context.add_output_metadata(
        {
            "run_kind": report["run_kind"],
            "undone_run": run_id,
            **done.counts(),
            "by_table": dg.MetadataValue.json(done.by_table),
            "overwritten": dg.MetadataValue.json(report["overwritten"]),
            "summary": dg.MetadataValue.md(f"```\n{texts['rollback_summary']}```"),
            **{kind: dg.MetadataValue.path(str(path)) for kind, path in paths.items()},
        }
    )


@dg.job(description="Undo one migration run (the last one unless run_id is configured).")
def rollback_migration() -> None:
    rollback_run_op()


@dg.run_failure_sensor(
    request_job=migration_reports,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When a migration run fails before its reports (a blocking check stopped it), write them anyway.",
)
def reports_after_failed_run(context: dg.RunFailureSensorContext) -> dg.RunRequest | dg.SkipReason:
    run = context.dagster_run
    if not any(key.path[0] in ("bubble", "phase2") for key in planned_asset_keys(context.instance, run.run_id)):
        return dg.SkipReason(f"run {run.run_id} did not migrate anything")
    materialized = context.instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    if any(r.event_log_entry.dagster_event.asset_key == SUMMARY for r in materialized):
        return dg.SkipReason(f"run {run.run_id} wrote its reports")
    return dg.RunRequest(run_key=run.run_id, tags={FOR_RUN_TAG: run.run_id})


JOBS = [
    full_migration,
    incremental_sync,
    cutover,
    cutover_rehearsal,
    validate_migration,
    migration_reports,
    rollback_migration,
]
SENSORS = [reports_after_failed_run]
SCHEDULES = [incremental_sync_schedule]
