"""The reports of one run, written from whatever state the run is in.

Three writers, one function: the reports asset at the end of a run; a hook on every export and table
step that fails, before the run ends (without it a failed step would leave nothing to read, since the
reports asset is skipped downstream of it); and a hook on every step that ends after another one
failed, so the files grow as the rest of the run completes. All write the same files (stamped with the
run's start). Phase 2 unreachable still gives reports: what Dagster recorded, and why the rest is missing.
The check outcomes come from what Dagster recorded for the run, so a report and the asset-check
dashboard never disagree.
"""

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from culturebridge_migration.defs.resources import MigrationSettings, PostgresResource
from culturebridge_migration.defs.run_tags import export_config, tagged_dry_run
from culturebridge_migration.loading.database import first_line
from culturebridge_migration.loading.rollback import rollback_script
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.reporting import report as rep
from culturebridge_migration.reporting.files import stamp_of, write_report_files
from culturebridge_migration.reporting.html import render_html
from culturebridge_migration.reporting.timing import RunTiming, StepSpan, run_timing_of
from culturebridge_migration.reporting.verdict import Verdict, classify_run, judge

FOR_RUN_TAG = "culturebridge/report_for_run"
ID_MAPPINGS = {"users": "user_id_mapping.json", "bookings": "booking_id_mapping.json"}
# Check metadata every check carries; the rest is its own details (unmapped fields, missing fields, ...).
_COMMON_METADATA = {"offending_rows", "sample_bubble_ids", "seconds", "outcome", "counts", "skipped", "judged_when"}


@dataclass
class RunReports:
    report: rep.MigrationReport
    texts: dict[str, str]  # report kind -> its text
    paths: dict[str, Path]
    mappings: dict[str, dict[str, int]]
    mappings_dir: Path


def check_records(instance: dg.DagsterInstance, run_id: str) -> list[rep.CheckRecord]:
    events = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    latest: dict[tuple[str, str], rep.CheckRecord] = {}
    for event in events:
        evaluation = event.event_log_entry.dagster_event.event_specific_data
        record = _check_record(run_id, evaluation)
        latest[(record.asset, record.check)] = record
    return list(latest.values())


def _check_record(run_id: str, evaluation: dg.AssetCheckEvaluation) -> rep.CheckRecord:
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    # A check recorded passed with outcome SKIPPED (or an older `skipped` note) did not judge: never a pass.
    skipped = meta.get("skipped") if meta.get("outcome", "SKIPPED") == "SKIPPED" else None
    return rep.CheckRecord(
        asset=evaluation.asset_key.to_user_string(),
        check=evaluation.check_name,
        passed=evaluation.passed,
        severity=evaluation.severity.value,
        offending_rows=meta.get("offending_rows"),  # type: ignore[arg-type]
        sample_bubble_ids=list(meta.get("sample_bubble_ids") or []),  # type: ignore[call-overload]
        description=evaluation.description or "",
        details={k: v for k, v in meta.items() if k not in _COMMON_METADATA},
        run_id=run_id,
        skipped=str(skipped) if skipped else None,
        judged_when=str(meta.get("judged_when") or "") or None,
        counts=str(meta.get("counts", "rows")),
    )


def run_verdict(instance: dg.DagsterInstance, run_id: str) -> Verdict:
    """The gate's verdict: the run's planned checks, their results, and the tables it loaded."""
    materialized = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    keys = {r.event_log_entry.dagster_event.asset_key for r in materialized}
    loaded = sorted(k.to_user_string() for k in keys if k.path[0] == "phase2")
    return judge(run_id, planned_checks(instance, run_id), check_records(instance, run_id), loaded)


# The assets whose checks say whether Phase 2 is fit: the exports, the tables and the files. The reports'
# own checks (reports/passwords: life after cutover) run after the gate and are judged in their own report.
MIGRATION_KEY_PREFIXES = ("bubble", "phase2", "files")


def planned_checks(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The migration checks the run set out to judge ("asset/check"), whatever selected them."""
    planned = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED)
    keys = (r.event_log_entry.dagster_event.event_specific_data for r in planned.records)
    judged = (p for p in keys if p.asset_key.path[0] in MIGRATION_KEY_PREFIXES)
    return list(dict.fromkeys(f"{p.asset_key.to_user_string()}/{p.check_name}" for p in judged))


def run_kind(instance: dg.DagsterInstance, run_id: str) -> rep.RunKind:
    run = instance.get_run_by_id(run_id)
    if run is None:
        return rep.RunKind.NOTHING_TO_JUDGE
    if run.job_name == "rollback_migration":
        return rep.RunKind.ROLLBACK
    export = export_config(run)
    planned = planned_asset_keys(instance, run_id)
    return classify_run(
        dry_run=tagged_dry_run(run.tags),
        incremental=bool(export.get("incremental")),
        census=bool(export.get("census")),
        migrates=any(key.path[0] in MIGRATION_KEY_PREFIXES for key in planned),
        checks=bool(planned_checks(instance, run_id)),
    )


def planned_asset_keys(instance: dg.DagsterInstance, run_id: str) -> set[dg.AssetKey]:
    """The assets a run set out to materialize, whatever selected them (CLI, UI, job, sensor)."""
    planned = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    return {r.event_log_entry.dagster_event.asset_key for r in planned.records}


def _planned_entities(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    planned = planned_asset_keys(instance, run_id)
    return [name for name, e in ENTITIES.items() if dg.AssetKey(["phase2", e.table]) in planned]


def failed_steps(
    instance: dg.DagsterInstance, run_id: str, current: rep.FailedStep | None = None
) -> list[rep.FailedStep]:
    """Every step of the run that failed so far, with its error's first line; `current` is failing right now."""
    failed = {}
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records:
        event = record.event_log_entry.dagster_event
        error = event.event_specific_data.error
        failed[event.step_key] = rep.FailedStep(event.step_key, first_line_of(error.message if error else ""))
    if current is not None:
        failed.setdefault(current.step, current)
    return list(failed.values())


def first_line_of(message: str) -> str:
    # A Failure's message comes first; Dagster adds the traceback after it.
    return message.strip().splitlines()[0].removeprefix("dagster._core.definitions.events.Failure: ") if message else ""


def _run_log(instance: dg.DagsterInstance, run_id: str) -> str:
    lines = []
    for entry in instance.all_logs(run_id):
        if entry.is_dagster_event and entry.dagster_event.event_type_value not in ("STEP_FAILURE", "RUN_FAILURE"):
            continue
        stamp = datetime.fromtimestamp(entry.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{stamp} {logging.getLevelName(entry.level):<7} {entry.step_key or '-'}: {entry.message}")
    return "\n".join(lines) + "\n"


_STEP_EVENTS = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}


def _step_bounds(instance: dg.DagsterInstance, run_id: str) -> tuple[dict[str, float], dict[str, float]]:
    """When each step of the run started, and when those that ended did."""
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    for record in instance.get_records_for_run(run_id, of_type=_STEP_EVENTS).records:
        entry = record.event_log_entry
        step = entry.step_key or ""
        if entry.dagster_event.event_type == dg.DagsterEventType.STEP_START:
            starts[step] = entry.timestamp
        else:
            ends[step] = entry.timestamp
    return starts, ends


def steps_at_work(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    starts, ends = _step_bounds(instance, run_id)
    return set(starts) - set(ends)


def wait_for_the_other_steps(context: dg.AssetExecutionContext, poll_seconds: float = 0.2) -> None:
    """Steps start once the assets they read exist (definitions.py), so a table's checks may still run when
    its table is there: a report waits until every other step of its run that began has ended."""
    own = context.get_step_execution_context().step.key
    while steps_at_work(context.instance, context.run.run_id) - {own}:
        time.sleep(poll_seconds)


def run_timing(instance: dg.DagsterInstance, run_id: str) -> RunTiming:
    """The run's steps from first to last (at cutover: the downtime so far), and the time each stage's steps ran."""
    starts, ends = _step_bounds(instance, run_id)
    now = datetime.now(UTC).timestamp()  # a step still running (this one) runs until the report
    return run_timing_of([StepSpan(step, start, ends.get(step, now)) for step, start in starts.items()])


def bubble_requests(instance: dg.DagsterInstance, run_id: str) -> dict[str, int]:
    """Data API searches per type this run made (export pages and the census's), from the exports' metadata."""
    made = _materialized_counts(instance, run_id, "bubble", "requests")
    return {name: count for name, count in made.items() if count}  # a type asked nothing is not listed


def rejects_by_table(instance: dg.DagsterInstance, run_id: str) -> dict[str, int]:
    """Records each Phase 2 table of this run rejected, from the tables' metadata."""
    return _materialized_counts(instance, run_id, "phase2", "rejected")


def _materialized_counts(instance: dg.DagsterInstance, run_id: str, group: str, name: str) -> dict[str, int]:
    """The metadata count `name` of each asset of `group` this run materialized, by the asset's last name."""
    counts: dict[str, int] = {}
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records:
        materialization = record.event_log_entry.dagster_event.event_specific_data.materialization
        value = materialization.metadata.get(name)
        if materialization.asset_key.path[0] == group and value is not None:
            counts[materialization.asset_key.path[-1]] = int(value.value)
    return counts


def run_stamp(instance: dg.DagsterInstance, run_id: str) -> str:
    record = instance.get_run_record_by_id(run_id)
    started = record.start_time or record.create_timestamp.timestamp() if record else None
    return stamp_of(started)


def write_run_reports(
    instance: dg.DagsterInstance,
    run_id: str,
    postgres: PostgresResource,
    settings: MigrationSettings,
    current: rep.FailedStep | None = None,
) -> RunReports:
    """Gather the run's report (from Phase 2 when it can be read) and write every report file."""
    checks = check_records(instance, run_id)
    facts = {
        "failed_steps": failed_steps(instance, run_id, current),
        "timing": run_timing(instance, run_id),
        "requests": bubble_requests(instance, run_id),
        "run_kind": run_kind(instance, run_id),
        "planned_checks": planned_checks(instance, run_id),
    }
    mappings: dict[str, dict[str, int]] = {}
    try:
        with postgres.database(settings.entities()) as db:
            report = rep.gather(db, run_id, checks, _planned_entities(instance, run_id), **facts)
            rollback = (
                f"-- Run {run_id} was a rehearsal (dry run): it changed nothing, there is nothing to undo.\n"
                if report.rehearsal
                else rollback_script(db, run_id)
            )
            mappings = {name: db.id_mapping(db.entities[name]) for name in ID_MAPPINGS}
    except Exception as exc:  # the reports are what an operator reads when this very thing failed
        report = rep.without_database(run_id, checks, first_line(exc), **facts)
        rollback = f"-- The rollback script of run {run_id} could not be written: {first_line(exc)}\n"
    texts = {
        "summary": rep.render_summary(report),
        "errors": rep.render_errors_csv(report),
        "report_json": rep.render_json(report),
        "html": render_html(report),
        "rollback_script": rollback,
        "run_log": _run_log(instance, run_id),
    }
    paths = write_report_files(settings.report_dir, run_stamp(instance, run_id), texts)
    mappings_dir = Path(settings.export_dir)
    if mappings:
        mappings_dir.mkdir(parents=True, exist_ok=True)
        for name, file_name in ID_MAPPINGS.items():
            (mappings_dir / file_name).write_text(json.dumps(mappings[name], indent=2))
    return RunReports(report, texts, paths, mappings, mappings_dir)


# -- hooks: reports whatever fails --------------------------------------------------------------
@dg.failure_hook(required_resource_keys={"postgres", "settings"}, name="reports_when_a_step_fails")
def reports_when_a_step_fails(context: dg.HookContext) -> None:
    error = context.op_exception
    current = rep.FailedStep(context.step_key or "?", first_line_of(str(error)) if error else "unknown error")
    _write_from_hook(context, current)


@dg.success_hook(required_resource_keys={"postgres", "settings"}, name="reports_again_after_a_failure")
def reports_again_after_a_failure(context: dg.HookContext) -> None:
    """A step that ends after another one failed: the reports so far are written again, more complete."""
    if context.instance.get_records_for_run(context.run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records:
        _write_from_hook(context, None)


def _write_from_hook(context: dg.HookContext, current: rep.FailedStep | None) -> None:
    try:
        written = write_run_reports(
            context.instance, context.run_id, context.resources.postgres, context.resources.settings, current
        )
    except Exception as exc:  # a hook that raises would hide the step's own failure
        context.log.warning(f"The reports of run {context.run_id} could not be written: {exc}")
        return
    context.log.info(f"Reports of run {context.run_id} ({written.report.status}) written to {settings_dir(written)}")


def settings_dir(written: RunReports) -> str:
    return str(next(iter(written.paths.values())).parent) if written.paths else "?"


REPORT_HOOKS = {reports_when_a_step_fails, reports_again_after_a_failure}
