"""Reports of a migration run, as assets downstream of every table, and the cutover gate after them.

Reports are written for a run whose checks failed too: that is when they matter. A step that fails
writes them itself (`run_reports`' hooks), since everything downstream of it is skipped; the
`reports_after_failed_run` sensor writes them once more, complete, when the daemon runs.
"""

import dagster as dg

from culturebridge_migration.defs.files import FILE_ENTITIES, files_key
from culturebridge_migration.defs.phase2 import BUBBLE_RECORDS, table_key
from culturebridge_migration.defs.resources import MigrationSettings, PostgresResource
from culturebridge_migration.defs.run_reports import (
    FOR_RUN_TAG,
    bubble_requests,
    planned_asset_keys,
    rejects_by_table,
    run_kind,
    run_stamp,
    run_timing,
    run_verdict,
    wait_for_the_other_steps,
    write_run_reports,
)
from culturebridge_migration.loading.change_capture import install_capture
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.reporting.closing import closing_block
from culturebridge_migration.reporting.files import report_paths
from culturebridge_migration.reporting.verdict import RunKind, Verdict

REPORTS_GROUP = "reports"
__all__ = ["FOR_RUN_TAG", "REPORT_ASSETS", "planned_asset_keys"]

SUMMARY = dg.AssetKey(["reports", "summary"])
ERRORS = dg.AssetKey(["reports", "errors"])
REPORT_JSON = dg.AssetKey(["reports", "report_json"])
ROLLBACK = dg.AssetKey(["reports", "rollback_script"])
RUN_LOG = dg.AssetKey(["reports", "run_log"])
MAPPINGS = dg.AssetKey(["reports", "id_mappings"])
HTML = dg.AssetKey(["reports", "html"])

# After the tables, the types kept verbatim and the files: everything the reports count and judge.
_TABLE_KEYS = [table_key(name) for name in ENTITIES] + [BUBBLE_RECORDS] + [files_key(name) for name in FILE_ENTITIES]
_DESCRIPTIONS = {
    SUMMARY: "Per entity exported / loaded / rejected / seconds, every check's outcome, and SUCCESS or FAILED.",
    ERRORS: "One CSV row per rejected record: entity, Bubble id, field, value (passwords masked), reason.",
    REPORT_JSON: "The summary and every reject, machine-readable (shape typed and documented in reporting/report_json.py).",
    ROLLBACK: 'SQL that undoes this run: psql "$DATABASE_URL" -f rollback_<stamp>.sql',
    RUN_LOG: "The run's log lines, as Dagster recorded them.",
    HTML: "One self-contained HTML page with charts: records, rejects by reason, check outcomes, durations.",
    MAPPINGS: "user_id_mapping.json and booking_id_mapping.json (Bubble id -> Phase 2 id) in the export folder.",
}


def reported_run(context: dg.AssetExecutionContext) -> str:
    """The run a report is about: this one, or the failed run the sensor asked about."""
    return context.run.tags.get(FOR_RUN_TAG, context.run.run_id)


_KEYS = {
    SUMMARY: "summary",
    ERRORS: "errors",
    REPORT_JSON: "report_json",
    ROLLBACK: "rollback_script",
    RUN_LOG: "run_log",
    HTML: "html",
}


@dg.multi_asset(
    name="report_files",
    specs=[
        dg.AssetSpec(k, group_name=REPORTS_GROUP, deps=_TABLE_KEYS, kinds={"file"}, description=d)
        for k, d in _DESCRIPTIONS.items()
    ],
    can_subset=True,  # `--select reports/summary` works: every file is written, the selected ones recorded
)
def migration_reports(context: dg.AssetExecutionContext, postgres: PostgresResource, settings: MigrationSettings):
    run_id = reported_run(context)
    wait_for_the_other_steps(context)  # the last table's checks, which may still be running
    with postgres.writer(context, settings.writer_wait_seconds):  # the run holds Phase 2 to its end
        written = write_run_reports(context.instance, run_id, postgres, settings)
    report, texts = written.report, written.texts
    context.log.info(f"Migration report for run {run_id}: {report.status}; files in {settings.report_dir}")
    previews = {
        SUMMARY: dg.MetadataValue.md(f"```\n{texts['summary']}```"),
        ERRORS: dg.MetadataValue.md(_head(texts["errors"], 15)),
        REPORT_JSON: dg.MetadataValue.json(report.as_json()["totals"] | {"status": report.status}),
        ROLLBACK: dg.MetadataValue.md(f"```sql\n{_head(texts['rollback_script'], 12)}\n```"),
        RUN_LOG: dg.MetadataValue.md(f"```\n{_head(texts['run_log'], 20)}\n```"),
        HTML: dg.MetadataValue.url(written.paths["html"].resolve().as_uri()),
    }
    selected = context.selected_asset_keys
    for key, kind in _KEYS.items():
        if key not in selected:
            continue
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "path": dg.MetadataValue.path(str(written.paths[kind].resolve())),
                "status": report.status,
                "verdict": report.verdict.word,
                "run_kind": report.run_kind.value,
                "report_for_run": run_id,
                "preview": previews[key],
                **({"dagster/row_count": len(report.rejects)} if key == ERRORS else {}),
            },
        )
    if MAPPINGS not in selected:
        return
    yield dg.MaterializeResult(
        asset_key=MAPPINGS,
        metadata={
            **{f"{name}_rows": len(m) for name, m in written.mappings.items()},
            "path": dg.MetadataValue.path(str(written.mappings_dir.resolve())),
        },
    )


def _head(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[:lines])


# The login bridge's progress (defs/passwords.py), before the gate: every step of a run holds Phase 2
# until the gate, its last, lets go.
PASSWORDS = dg.AssetKey(["reports", "passwords"])


@dg.asset(
    key=["reports", "cutover_readiness"],
    group_name=REPORTS_GROUP,
    deps=[SUMMARY, PASSWORDS],
    description="The gate: fails the run unless every check the run planned has a result and no ERROR check failed "
    "(SKIPPED is never a pass), so the exit code tells whether to cut over.",
)
def cutover_readiness(
    context: dg.AssetExecutionContext, postgres: PostgresResource, settings: MigrationSettings
) -> dg.MaterializeResult:
    run_id = reported_run(context)
    with postgres.writer(context, settings.writer_wait_seconds, run_done=True):  # the run's last step lets go
        verdict = run_verdict(context.instance, run_id)
    timing, requests = run_timing(context.instance, run_id), bubble_requests(context.instance, run_id)
    kind = run_kind(context.instance, run_id)
    written = report_paths(settings.report_dir, run_stamp(context.instance, run_id))
    closing = closing_block(
        verdict,
        kind=kind,
        run_seconds=timing.run_seconds,
        requests=sum(requests.values()),
        rejects=rejects_by_table(context.instance, run_id),
        reports=[str(written[k]) for k in ("summary", "html") if written[k].exists()],
    )
    metadata = {
        "verdict": verdict.word,
        "run_kind": kind.value,
        "report_for_run": run_id,
        "checks": dg.MetadataValue.json({c.key: c.outcome for c in verdict.checks}),
        "skipped": dg.MetadataValue.json(verdict.skipped),
        "run_seconds": timing.run_seconds or 0.0,
        "stage_seconds": dg.MetadataValue.json(timing.stages),
        "bubble_requests": sum(requests.values()),
        "outcome": dg.MetadataValue.md(f"```\n{closing}\n```"),
    }
    if not verdict.fit:
        context.log.info(closing)
        raise dg.Failure(_refusal(verdict), metadata=metadata | {"reasons": dg.MetadataValue.json(verdict.reasons)})
    if kind is RunKind.CUTOVER:  # fit: from now on the app writes; record it for the fallback (not a rehearsal)
        with postgres.connection() as conn:
            metadata["capture_installed_on"] = ", ".join(install_capture(Phase2Database(conn, postgres.schemas)))
        context.log.info(f"Change capture installed on {metadata['capture_installed_on']}")
    context.log.info(closing)  # the run's last words: the verdict is the CLI's last line
    return dg.MaterializeResult(metadata={"ready": True, **metadata})


def _refusal(verdict: Verdict) -> str:
    listing = "; ".join(verdict.reasons[:10])
    if verdict.no_evidence:
        return (
            f"VERDICT: NO VERDICT on run {verdict.run_id}: not every check it should judge has a result ({listing}). "
            "Do not cut over on this run: run the migration (or the cutover) and its checks."
        )
    return (
        f"VERDICT: NOT FIT for cutover: {listing}. The reports are written; fix the data or the mapping and run "
        "the migration again."
    )


REPORT_ASSETS = [migration_reports, cutover_readiness]
