"""The migration report of one run: gathered from PostgreSQL and Dagster's check results, rendered as files.

The JSON shape (version 2) is stable; `REPORT_JSON_KEYS` documents it and a test holds it:
{
  "version": 2, "run_id": str, "generated_at": ISO-8601 UTC, "status": "SUCCESS" | "FAILED",
  "status_reasons": [str],
  "failed_steps": [{"step", "error"}],
  "entities": [{"entity", "table", "exported", "loaded", "inserted", "updated", "unchanged",
                "rejected", "rejected_by_reason": {reason: n}, "deleted", "seconds"}],
  ("deleted": rows removed because they are gone from Bubble, with deleted_records = delete)
  "checks": [{"asset", "check", "passed", "severity", "offending_rows", "sample_bubble_ids", "description",
              "details"}],
  "rejects": [{"entity", "bubble_id", "field", "column", "value", "reason", "message"}],
  "unmapped_fields": {entity: {field: {"records", "values"}}},   (kept verbatim in bubble_extra)
  "bubble_types_not_migrated": {bubble type: records},            (kept verbatim in the migration schema)
  "value_fixes": {"count", "by_reason": {reason: n}, "items": [{"entity", "bubble_id", "field", "column",
                  "original", "stored", "reason", "decided_by"}]},
  "totals": {"exported", "loaded", "rejected"},
  "rehearsal": bool,                      (a dry run: the figures are what the run would have done)
  "timing": {"run_seconds": float | null, "stages": {stage: seconds}},   (at cutover: the downtime so far)
  "requests": {"by_type": {entity: n}, "total": n}    (Data API searches: export pages and census counts)
}
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from psycopg import sql

from culturebridge_migration.files.bookkeeping import file_totals
from culturebridge_migration.loading.bookkeeping import read_fixes, read_rejects
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.corrections import FIX_COLUMN
from culturebridge_migration.mapping.entities import EXTRA_PREFIX, load_order
from culturebridge_migration.mapping.rejects import REJECT_FIELDS

REPORT_VERSION = 2
REPORT_JSON_KEYS = (
    "version",
    "run_id",
    "generated_at",
    "status",
    "status_reasons",
    "failed_steps",
    "entities",
    "checks",
    "rejects",
    "unmapped_fields",
    "bubble_types_not_migrated",
    "value_fixes",
    "totals",
    "rehearsal",
    "timing",
    "requests",
    "files",
)
# The last column is for a person: filled in and handed back as MIGRATION_FIXES (mapping/corrections.py).
ERRORS_CSV_COLUMNS = (*REJECT_FIELDS, FIX_COLUMN)
FIXES_LISTED = 200  # the JSON lists this many fixes; the bookkeeping keeps them all


@dataclass(frozen=True)
class CheckRecord:
    asset: str
    check: str
    passed: bool
    severity: str
    offending_rows: int | None = None
    sample_bubble_ids: list[str] = field(default_factory=list)
    description: str = ""
    details: dict[str, object] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        """pass, warn (a failed WARN check) or fail (a failed ERROR check)."""
        return "pass" if self.passed else ("fail" if self.severity == "ERROR" else "warn")


@dataclass(frozen=True)
class RunTiming:
    run_seconds: float | None  # from the run's start to the report: at cutover, the downtime so far
    stages: dict[str, float] = field(default_factory=dict)  # wall seconds per stage (export, load and checks, ...)


@dataclass(frozen=True)
class FailedStep:
    step: str
    error: str


@dataclass
class MigrationReport:
    run_id: str
    generated_at: str
    entities: list[dict]
    checks: list[CheckRecord]
    rejects: list[dict]
    missing_entities: list[str] = field(default_factory=list)  # planned in the run but never loaded
    failed_steps: list[FailedStep] = field(default_factory=list)
    fixes: list[dict] = field(default_factory=list)
    types_not_migrated: dict[str, int] = field(default_factory=dict)
    database_error: str | None = None  # Phase 2 could not be read: the report holds what Dagster knows
    rehearsal: bool = False  # a dry run: nothing was written, the figures say what would have been
    timing: RunTiming = field(default_factory=lambda: RunTiming(None))
    requests: dict[str, int] = field(default_factory=dict)  # Data API searches per type
    files: list[dict] = field(default_factory=list)  # per entity: Bubble's files copied, missing, failed

    @property
    def status_reasons(self) -> list[str]:
        reasons = [f"step {f.step} failed: {f.error}" for f in self.failed_steps]
        if self.database_error:
            reasons.append(f"Phase 2 could not be read for this report: {self.database_error}")
        reasons += [
            f"ERROR check {c.check} on {c.asset} failed ({c.offending_rows} rows)"
            for c in self.checks
            if not c.passed and c.severity == "ERROR"
        ]
        reasons += [f"{name} was not loaded in this run" for name in self.missing_entities]
        if not self.entities:
            reasons.append("no table was loaded in this run")
        return reasons

    @property
    def status(self) -> str:
        return "FAILED" if self.status_reasons else "SUCCESS"

    @property
    def totals(self) -> dict[str, int]:
        return {k: sum(e[k] for e in self.entities) for k in ("exported", "loaded", "rejected")}

    @property
    def unmapped_fields(self) -> dict[str, dict[str, dict]]:
        """Per entity, the fields no column maps (from the tables' fields_covered checks)."""
        return {
            c.asset.split("/")[-1]: dict(c.details.get("unmapped_fields", {}))  # type: ignore[call-overload]
            for c in self.checks
            if c.check == "fields_covered" and c.details.get("unmapped_fields")
        }

    @property
    def value_fixes(self) -> dict[str, object]:
        return {
            "count": len(self.fixes),
            "by_reason": dict(Counter(f["reason"] for f in self.fixes)),
            "items": self.fixes[:FIXES_LISTED],
        }

    def as_json(self) -> dict:
        return {
            "version": REPORT_VERSION,
            "run_id": self.run_id,
            "generated_at": self.generated_at,
            "status": self.status,
            "status_reasons": self.status_reasons,
            "failed_steps": [asdict(f) for f in self.failed_steps],
            "entities": self.entities,
            "checks": [asdict(c) for c in self.checks],
            "rejects": self.rejects,
            "unmapped_fields": self.unmapped_fields,
            "bubble_types_not_migrated": self.types_not_migrated,
            "value_fixes": self.value_fixes,
            "totals": self.totals,
            "rehearsal": self.rehearsal,
            "timing": asdict(self.timing),
            "requests": {"by_type": self.requests, "total": sum(self.requests.values())},
            "files": {"by_entity": self.files, "totals": self.file_totals},
        }

    @property
    def file_totals(self) -> dict[str, int]:
        keys = ("files", "bytes", "missing", "failed", "copied_this_run", "bytes_this_run")
        return {k: sum(int(e[k]) for e in self.files) for k in keys}


def gather(
    db: Phase2Database,
    run_id: str,
    checks: list[CheckRecord],
    expected_entities: list[str] | None = None,
    **facts: object,
) -> MigrationReport:
    """The report of `run_id` from Phase 2's bookkeeping; `facts` are the report's other fields (failed_steps, ...)."""
    entity_rows = db.execute(
        sql.SQL(
            "SELECT entity, exported, loaded, inserted, updated, unchanged, rejected, deleted,"
            " extract(epoch FROM finished_at - started_at)::float FROM {} WHERE run_id = %s"
        ).format(db.bookkeeping("entity_runs")),
        (run_id,),
    ).fetchall()
    order = load_order(db.entities)
    entity_rows.sort(key=lambda r: order.index(r[0]) if r[0] in order else len(order))
    # Types no table migrates are kept verbatim: listed apart from the tables.
    not_migrated = {r[0].removeprefix(EXTRA_PREFIX): r[1] for r in entity_rows if r[0].startswith(EXTRA_PREFIX)}
    entity_rows = [r for r in entity_rows if not r[0].startswith(EXTRA_PREFIX)]
    rejects = [r.as_dict() for r in read_rejects(db, run_id)]
    by_reason: dict[str, Counter] = {}
    for r in rejects:
        by_reason.setdefault(r["entity"], Counter())[r["reason"]] += 1
    entities = [
        {
            "entity": name,
            "table": db.entities[name].table if name in db.entities else name,
            "exported": exported,
            "loaded": loaded,
            "inserted": inserted,
            "updated": updated,
            "unchanged": unchanged,
            "rejected": rejected,
            "rejected_by_reason": dict(sorted(by_reason.get(name, Counter()).items())),
            "deleted": deleted,
            "seconds": round(seconds, 3),
        }
        for name, exported, loaded, inserted, updated, unchanged, rejected, deleted, seconds in entity_rows
    ]
    loaded_names = {e["entity"] for e in entities}
    missing = [name for name in (expected_entities or []) if name not in loaded_names]
    fixes = [asdict(f) for f in read_fixes(db, run_id)]
    rehearsal = bool(
        db.scalar(sql.SQL("SELECT rehearsal FROM {} WHERE run_id = %s").format(db.bookkeeping("runs")), (run_id,))
    )
    return MigrationReport(
        run_id,
        now(),
        entities,
        checks,
        rejects,
        missing,
        fixes=fixes,
        types_not_migrated=not_migrated,
        rehearsal=rehearsal,
        files=file_totals(db.conn, db.schemas.migration, run_id),
        **facts,  # type: ignore[arg-type]
    )


def without_database(run_id: str, checks: list[CheckRecord], error: str, **facts: object) -> MigrationReport:
    """The report when Phase 2 cannot be read: what Dagster recorded, and why the rest is missing."""
    return MigrationReport(run_id, now(), [], checks, [], database_error=error, **facts)  # type: ignore[arg-type]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- rendering ------------------------------------------------------------------------------------
def render_summary(report: MigrationReport) -> str:
    lines = [
        f"CultureBridge migration report — run {report.run_id}",
        f"Generated {report.generated_at}",
        f"STATUS: {report.status}",
    ]
    lines += [f"  - {reason}" for reason in report.status_reasons]
    if report.rehearsal:
        lines += ["REHEARSAL (dry run): Phase 2 was not changed; the figures below are what the run would do."]
    lines += _timing_lines(report)
    lines += ["", f"{'entity':<18}{'exported':>10}{'loaded':>10}{'rejected':>10}{'seconds':>10}"]
    for e in report.entities:
        lines.append(f"{e['entity']:<18}{e['exported']:>10}{e['loaded']:>10}{e['rejected']:>10}{e['seconds']:>10.2f}")
    t = report.totals
    lines.append(f"{'total':<18}{t['exported']:>10}{t['loaded']:>10}{t['rejected']:>10}")
    gone = [f"{e['entity']} {e['deleted']}" for e in report.entities if e.get("deleted")]
    if gone:
        lines += ["", f"Deleted because gone from Bubble: {', '.join(gone)}"]
    lines += ["", "Rejects by reason:"]
    for e in report.entities:
        for reason, n in e["rejected_by_reason"].items():
            lines.append(f"  {e['entity']:<18}{reason:<22}{n:>6}")
    lines += _unmapped_lines(report) + _not_migrated_lines(report) + _fix_lines(report) + _file_lines(report)
    lines += ["", "Checks:"]
    for c in report.checks:
        extra = f" {c.offending_rows} rows, e.g. {', '.join(c.sample_bubble_ids[:3])}" if not c.passed else ""
        lines.append(f"  [{c.outcome.upper()}] {c.asset} / {c.check}{extra}")
    return "\n".join(lines) + "\n"


def _timing_lines(report: MigrationReport) -> list[str]:
    timing, lines = report.timing, []
    if timing.run_seconds is not None:
        stages = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in timing.stages.items())
        lines.append(f"Run time until this report: {timing.run_seconds:.1f} s ({stages})")
    if report.requests:
        by_type = ", ".join(f"{name} {n}" for name, n in report.requests.items())
        lines.append(f"Requests to Bubble's Data API: {sum(report.requests.values())} ({by_type})")
    return lines


def _unmapped_lines(report: MigrationReport) -> list[str]:
    unmapped = report.unmapped_fields
    if not unmapped:
        return []
    lines = [
        "",
        "Fields no column maps (kept verbatim in each row's bubble_extra; map or ignore them in the field map):",
    ]
    for entity, fields in unmapped.items():
        for name, tally in fields.items():
            values = ", ".join(str(v) for v in tally.get("values", []))
            lines.append(f"  {entity:<18}{name:<30}{tally.get('records', 0):>6} records, e.g. {values}")
    return lines


def _not_migrated_lines(report: MigrationReport) -> list[str]:
    if not report.types_not_migrated:
        return []
    lines = ["", "Bubble types no table migrates (kept verbatim in the migration schema's bubble_records):"]
    lines += [f"  {name:<30}{n:>8} records" for name, n in report.types_not_migrated.items()]
    return lines


def _fix_lines(report: MigrationReport) -> list[str]:
    fixes = report.value_fixes
    if not fixes["count"]:
        return []
    lines = ["", f"Values changed before they were stored ({fixes['count']}; the originals are kept):"]
    lines += [f"  {reason}: {n}" for reason, n in fixes["by_reason"].items()]  # type: ignore[union-attr]
    return lines


def _file_lines(report: MigrationReport) -> list[str]:
    if not report.files:
        return []
    t = report.file_totals
    lines = [
        "",
        f"Bubble's files: {t['files']} copied ({t['bytes'] / 1e6:.1f} MB; {t['copied_this_run']} in this run), "
        f"{t['missing']} links missing at Bubble, {t['failed']} failed",
    ]
    for e in report.files:
        if e["records_affected"]:
            lines.append(f"  {e['entity']:<18}not copied for: {', '.join(e['records_affected'][:5])}")
    return lines


# A spreadsheet runs a cell that starts with one of these as a formula: shown as text instead.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_START) else value


def render_errors_csv(report: MigrationReport) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=ERRORS_CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in row.items()} for row in report.rejects)
    return out.getvalue()


def render_json(report: MigrationReport) -> str:
    return json.dumps(report.as_json(), indent=2, default=str)
