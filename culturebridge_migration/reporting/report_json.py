"""The JSON report's shape, once: these types are what `MigrationReport.as_json` builds and what this file documents.

Version 3. A reader of `report_*.json` can rely on every key below; `REPORT_JSON_KEYS` is the top level in
order. Counts say what they count in their names (records, fields, requests, seconds, bytes).
"""

from __future__ import annotations

from typing import TypedDict

REPORT_VERSION = 3


class EntityFigures(TypedDict):
    """One migrated type in this run (in a rehearsal: what the cutover would do)."""

    entity: str
    table: str
    exported: int  # records in the export
    loaded: int  # records in Phase 2 after the run (inserted + updated + unchanged)
    inserted: int
    updated: int
    unchanged: int
    rejected: int  # records not loaded, each with a reason (see "rejects")
    rejected_by_reason: dict[str, int]
    deleted: int  # Phase 2 rows removed because gone from Bubble (deleted_records = delete)
    seconds: float  # the load of this type


class CheckJson(TypedDict):
    """One check's result in the run. `passed` is what Dagster recorded; `outcome` is what it means."""

    asset: str
    check: str
    outcome: str  # PASS, FAIL or SKIPPED (SKIPPED did not judge: never a pass)
    passed: bool
    severity: str  # ERROR (gates the exit code) or WARN
    offending_rows: int | None  # how many of `counts` offend
    counts: str  # what offending_rows counts: rows, records, fields, corrections, ...
    sample_bubble_ids: list[str]
    description: str
    details: dict[str, object]
    run_id: str  # the run whose result this is
    skipped: str | None  # why it did not judge
    judged_when: str | None  # when a skipped check will judge


class FailedStep(TypedDict):
    step: str
    error: str


class ValueFixes(TypedDict):
    count: int  # values changed before they were stored
    by_reason: dict[str, int]
    items: list[dict[str, object]]  # the first FIXES_LISTED: entity, bubble_id, field, column, original, stored, ...


class Totals(TypedDict):
    exported: int
    loaded: int
    rejected: int


class Timing(TypedDict):
    run_seconds: float | None  # the run's first step's start to its last step's end: at cutover, the downtime
    stages: dict[str, float]  # per stage, the seconds during which one of its own steps ran


class Requests(TypedDict):
    by_type: dict[str, int]  # Data API requests made, per type (export pages and census searches)
    total: int  # 0 for CSV exports: nothing was asked of Bubble


class FileFigures(TypedDict):
    entity: str
    files: int  # distinct files copied
    bytes: int
    missing: int  # links Bubble answers 404
    failed: int  # links whose copy failed
    copied_this_run: int
    bytes_this_run: int
    records_affected: list[str]  # Bubble ids of records still linking Bubble


class Files(TypedDict):
    by_entity: list[FileFigures]
    totals: dict[str, int]  # the sums of the counts above


class ReportJson(TypedDict):
    version: int
    run_id: str
    run_kind: str  # full_migration, incremental_sync, cutover, rehearsal, rollback, validation, no_migration
    generated_at: str  # ISO 8601 UTC
    status: str  # SUCCESS or FAILED
    status_reasons: list[str]
    verdict: str  # FIT, NOT FIT or NO VERDICT (the gate's: exit 0 only on FIT)
    planned_checks: list[str]  # "asset/check" the run set out to judge
    failed_steps: list[FailedStep]
    entities: list[EntityFigures]
    checks: list[CheckJson]
    rejects: list[dict[str, str | None]]  # mapping/rejects.py REJECT_FIELDS, passwords masked
    unmapped_fields: dict[str, dict[str, dict[str, object]]]  # entity -> field -> {records, values}: in bubble_extra
    bubble_types_not_migrated: dict[str, int]  # Bubble type -> records kept verbatim in the migration schema
    value_fixes: ValueFixes
    totals: Totals
    rehearsal: bool  # run_kind == rehearsal: nothing was written
    timing: Timing
    requests: Requests
    files: Files


REPORT_JSON_KEYS: tuple[str, ...] = tuple(ReportJson.__annotations__)
FILE_TOTAL_KEYS: tuple[str, ...] = tuple(
    k for k in FileFigures.__annotations__ if k not in ("entity", "records_affected")
)


class RollbackJson(TypedDict):
    """`rollback_report_*.json`: what a rollback run undid. Phase 2 is now as it was before `undone_run`."""

    version: int
    run_id: str  # the rollback's own run
    run_kind: str  # always "rollback"
    generated_at: str  # ISO 8601 UTC
    undone_run: str  # the migration run it undid
    forced: bool  # undone over what the app changed since (listed in `overwritten`)
    restored: int  # rows the run changed, given their previous values
    recreated: int  # rows the run deleted, back with their ids
    deleted: int  # rows the run inserted, gone
    by_table: dict[str, dict[str, int]]  # table -> the three counts above
    overwritten: list[str]  # with force: what the app had done since, now undone too
