"""Reports of a migration run, as assets downstream of every table, and the cutover gate after them.

The check outcomes come from what Dagster recorded for the run, so a report and the asset-check
dashboard never disagree. Reports are written for a run whose checks failed too: that is when
they matter. When a blocking check (an incomplete export) stops the graph before the tables, the
`reports_after_failed_run` sensor runs the `migration_reports` job for that run.
"""

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from culturebridge_migration.defs.phase2 import table_key
from culturebridge_migration.defs.resources import MigrationSettings, PostgresResource
from culturebridge_migration.loading.rollback import rollback_script
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.reporting import report as rep
from culturebridge_migration.reporting.html import render_html

REPORTS_GROUP = "reports"
FOR_RUN_TAG = "culturebridge/report_for_run"
ID_MAPPINGS = {"users": "user_id_mapping.json", "bookings": "booking_id_mapping.json"}

SUMMARY = dg.AssetKey(["reports", "summary"])
ERRORS = dg.AssetKey(["reports", "errors"])
REPORT_JSON = dg.AssetKey(["reports", "report_json"])
ROLLBACK = dg.AssetKey(["reports", "rollback_script"])
RUN_LOG = dg.AssetKey(["reports", "run_log"])
MAPPINGS = dg.AssetKey(["reports", "id_mappings"])
HTML = dg.AssetKey(["reports", "html"])

_TABLE_KEYS = [table_key(name) for name in ENTITIES]
_DESCRIPTIONS = {
    SUMMARY: "Per entity exported / loaded / rejected / seconds, every check's outcome, and SUCCESS or FAILED.",
    ERRORS: "One CSV row per rejected record: entity, Bubble id, field, value (passwords masked), reason.",
    REPORT_JSON: "The summary and every reject, machine-readable (shape documented in reporting/report.py).",
    ROLLBACK: 'SQL that undoes this run: psql "$DATABASE_URL" -f rollback_<stamp>.sql',
    RUN_LOG: "The run's log lines, as Dagster recorded them.",
    HTML: "One self-contained HTML page with charts: records, rejects by reason, check outcomes, durations.",
    MAPPINGS: "user_id_mapping.json and booking_id_mapping.json (Bubble id -> Phase 2 id) in the export folder.",
}


def reported_run(context: dg.AssetExecutionContext) -> str:
    """The run a report is about: this one, or the failed run the sensor asked about."""
    return context.run.tags.get(FOR_RUN_TAG, context.run.run_id)


def check_records(instance: dg.DagsterInstance, run_id: str) -> list[rep.CheckRecord]:
    events = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    latest: dict[tuple[str, str], rep.CheckRecord] = {}
    for event in events:
        evaluation = event.event_log_entry.dagster_event.event_specific_data
        meta = evaluation.metadata
        offending = meta.get("offending_rows") or meta.get("missing")
        ids = meta.get("sample_bubble_ids")
        latest[(evaluation.asset_key.to_user_string(), evaluation.check_name)] = rep.CheckRecord(
            asset=evaluation.asset_key.to_user_string(),
            check=evaluation.check_name,
            passed=evaluation.passed,
            severity=evaluation.severity.value,
            offending_rows=offending.value if offending is not None else None,
            sample_bubble_ids=list(ids.value) if ids is not None else [],
            description=evaluation.description or "",
        )
    return list(latest.values())


def planned_asset_keys(instance: dg.DagsterInstance, run_id: str) -> set[dg.AssetKey]:
    """The assets a run set out to materialize, whatever selected them (CLI, UI, job, sensor)."""
    planned = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    return {r.event_log_entry.dagster_event.asset_key for r in planned.records}


def _planned_entities(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    planned = planned_asset_keys(instance, run_id)
    return [name for name in ENTITIES if table_key(name) in planned]


def _run_log(instance: dg.DagsterInstance, run_id: str) -> str:
    lines = []
    for entry in instance.all_logs(run_id):
        if entry.is_dagster_event and entry.dagster_event.event_type_value not in ("STEP_FAILURE", "RUN_FAILURE"):
            continue
        stamp = datetime.fromtimestamp(entry.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{stamp} {logging.getLevelName(entry.level):<7} {entry.step_key or '-'}: {entry.message}")
    return "\n".join(lines) + "\n"


@dg.multi_asset(
    name="report_files",
    specs=[
        dg.AssetSpec(k, group_name=REPORTS_GROUP, deps=_TABLE_KEYS, kinds={"file"}, description=d)
        for k, d in _DESCRIPTIONS.items()
    ],
)
def migration_reports(context: dg.AssetExecutionContext, postgres: PostgresResource, settings: MigrationSettings):
    run_id = reported_run(context)
    stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
    folder = Path(settings.report_dir)
    folder.mkdir(parents=True, exist_ok=True)
    checks = check_records(context.instance, run_id)
    with postgres.database(settings.entities()) as db:
        report = rep.gather(db, run_id, checks, _planned_entities(context.instance, run_id))
        rollback = rollback_script(db, run_id)
        mappings = {name: db.id_mapping(db.entities[name]) for name in ID_MAPPINGS}
    files = {
        SUMMARY: (folder / f"summary_{stamp}.txt", rep.render_summary(report)),
        ERRORS: (folder / f"errors_{stamp}.csv", rep.render_errors_csv(report)),
        REPORT_JSON: (folder / f"report_{stamp}.json", rep.render_json(report)),
        ROLLBACK: (folder / f"rollback_{stamp}.sql", rollback),
        RUN_LOG: (folder / f"run_log_{stamp}.log", _run_log(context.instance, run_id)),
        HTML: (folder / f"report_{stamp}.html", render_html(report)),
    }
    for path, content in files.values():
        path.write_text(content, encoding="utf-8")
    export_dir = Path(settings.export_dir)
    export_dir.mkdir(parents=True, exist_ok=True)
    for name, file_name in ID_MAPPINGS.items():
        (export_dir / file_name).write_text(json.dumps(mappings[name], indent=2))
    context.log.info(f"Migration report for run {run_id}: {report.status}; files in {folder}")
    previews = {
        SUMMARY: dg.MetadataValue.md(f"```\n{files[SUMMARY][1]}```"),
        ERRORS: dg.MetadataValue.md(_head(files[ERRORS][1], 15)),
        REPORT_JSON: dg.MetadataValue.json(report.as_json()["totals"] | {"status": report.status}),
        ROLLBACK: dg.MetadataValue.md(f"```sql\n{_head(rollback, 12)}\n```"),
        RUN_LOG: dg.MetadataValue.md(f"```\n{_head(files[RUN_LOG][1], 20)}\n```"),
        HTML: dg.MetadataValue.url(files[HTML][0].resolve().as_uri()),
    }
    for key, (path, _) in files.items():
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "path": dg.MetadataValue.path(str(path.resolve())),
                "status": report.status,
                "report_for_run": run_id,
                "preview": previews[key],
                **({"dagster/row_count": len(report.rejects)} if key == ERRORS else {}),
            },
        )
    yield dg.MaterializeResult(
        asset_key=MAPPINGS,
        metadata={
            **{f"{name}_rows": len(m) for name, m in mappings.items()},
            "path": dg.MetadataValue.path(str(export_dir.resolve())),
        },
    )


def _head(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[:lines])


@dg.asset(
    key=["reports", "cutover_readiness"],
    group_name=REPORTS_GROUP,
    deps=[SUMMARY],
    description="The gate: fails the run when any ERROR check failed, so the exit code tells whether to cut over.",
)
def cutover_readiness(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    run_id = reported_run(context)
    failed = [c for c in check_records(context.instance, run_id) if not c.passed and c.severity == "ERROR"]
    if failed:
        listing = "; ".join(f"{c.asset}/{c.check} ({c.offending_rows} rows)" for c in failed)
        raise dg.Failure(
            f"Not fit for cutover: {len(failed)} ERROR check(s) failed: {listing}. The reports are written; "
            "fix the data or the mapping and run the migration again.",
            metadata={"failed_checks": dg.MetadataValue.json([f"{c.asset}/{c.check}" for c in failed])},
        )
    return dg.MaterializeResult(metadata={"ready": True, "report_for_run": run_id})


REPORT_ASSETS = [migration_reports, cutover_readiness]
