"""The migration report of one run: gathered from PostgreSQL and Dagster's check results, rendered as files.

The JSON report's shape is typed, and documented, in `report_json.py`; `as_json` builds exactly that.
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
from culturebridge_migration.reporting import report_json as shape
from culturebridge_migration.reporting.report_json import REPORT_JSON_KEYS, REPORT_VERSION
from culturebridge_migration.reporting.timing import RunTiming
from culturebridge_migration.reporting.verdict import CheckRecord, RunKind, Verdict, judge

__all__ = ["REPORT_JSON_KEYS", "CheckRecord", "RunKind", "RunTiming", "Verdict"]

# The last column is for a person: filled in and handed back as MIGRATION_FIXES (mapping/corrections.py).
ERRORS_CSV_COLUMNS = (*REJECT_FIELDS, FIX_COLUMN)
FIXES_LISTED = 200  # the JSON lists this many fixes; the bookkeeping keeps them all


@dataclass(frozen=True)
class FailedStep:
    step: str
    error: str


@dataclass
class MigrationReport:
    run_id: str
    generated_at: str
    entities: list[shape.EntityFigures]
    checks: list[CheckRecord]
    rejects: list[dict]
    missing_entities: list[str] = field(default_factory=list)  # planned in the run but never loaded
    failed_steps: list[FailedStep] = field(default_factory=list)
    fixes: list[dict] = field(default_factory=list)
    types_not_migrated: dict[str, int] = field(default_factory=dict)
    database_error: str | None = None  # Phase 2 could not be read: the report holds what Dagster knows
    timing: RunTiming = field(default_factory=lambda: RunTiming(None))
    requests: dict[str, int] = field(default_factory=dict)  # Data API searches per type
    files: list[shape.FileFigures] = field(default_factory=list)  # per entity: Bubble's files copied, missing, failed
    run_kind: RunKind = RunKind.FULL
    planned_checks: list[str] = field(default_factory=list)  # "asset/check" the run set out to judge

    @property
    def verdict(self) -> Verdict:
        failures = [f"step {f.step} failed: {f.error}" for f in self.failed_steps]
        if self.database_error:
            failures.append(f"Phase 2 could not be read for this report: {self.database_error}")
        failures += [f"{name} was not loaded in this run" for name in self.missing_entities]
        if not self.entities and self.run_kind is not RunKind.VALIDATION:
            failures.append("no table was loaded in this run")
        loaded = [f"phase2/{e['table']}" for e in self.entities]
        return judge(self.run_id, self.planned_checks, self.checks, loaded, failures)

    @property
    def status_reasons(self) -> list[str]:
        return self.verdict.reasons

    @property
    def status(self) -> str:
        return "SUCCESS" if self.verdict.fit else "FAILED"

    @property
    def rehearsal(self) -> bool:
        """A dry run: nothing was written, the figures say what the run would have done."""
        return self.run_kind is RunKind.REHEARSAL

    @property
    def totals(self) -> shape.Totals:
        e = self.entities
        return shape.Totals(
            exported=sum(x["exported"] for x in e),
            loaded=sum(x["loaded"] for x in e),
            rejected=sum(x["rejected"] for x in e),
        )

    @property
    def unmapped_fields(self) -> dict[str, dict[str, dict]]:
        """Per entity, the fields no column maps (from the tables' fields_covered checks)."""
        return {
            c.asset.split("/")[-1]: dict(c.details.get("unmapped_fields", {}))  # type: ignore[call-overload]
            for c in self.checks
            if c.check == "fields_covered" and c.details.get("unmapped_fields")
        }

    @property
    def value_fixes(self) -> shape.ValueFixes:
        return shape.ValueFixes(
            count=len(self.fixes),
            by_reason=dict(Counter(f["reason"] for f in self.fixes)),
            items=self.fixes[:FIXES_LISTED],
        )

    def as_json(self) -> shape.ReportJson:
        return shape.ReportJson(
            version=REPORT_VERSION,
            run_id=self.run_id,
            run_kind=self.run_kind.value,
            generated_at=self.generated_at,
            status=self.status,
            status_reasons=self.status_reasons,
            verdict=self.verdict.word,
            planned_checks=self.planned_checks,
            failed_steps=[shape.FailedStep(step=f.step, error=f.error) for f in self.failed_steps],
            entities=self.entities,
            checks=[check_json(c) for c in self.checks],
            rejects=self.rejects,
            unmapped_fields=self.unmapped_fields,
            bubble_types_not_migrated=self.types_not_migrated,
            value_fixes=self.value_fixes,
            totals=self.totals,
            rehearsal=self.rehearsal,
            timing=shape.Timing(run_seconds=self.timing.run_seconds, stages=self.timing.stages),
            requests=shape.Requests(by_type=self.requests, total=sum(self.requests.values())),
            files=shape.Files(by_entity=self.files, totals=self.file_totals),
        )

    @property
    def file_totals(self) -> dict[str, int]:
        return {k: sum(int(e[k]) for e in self.files) for k in shape.FILE_TOTAL_KEYS}  # type: ignore[literal-required]


def check_json(c: CheckRecord) -> shape.CheckJson:
    return shape.CheckJson(
        asset=c.asset,
        check=c.check,
        outcome=c.outcome,
        passed=c.passed,
        severity=c.severity,
        offending_rows=c.offending_rows,
        counts=c.counts,
        sample_bubble_ids=c.sample_bubble_ids,
        description=c.description,
        details=c.details,
        run_id=c.run_id,
        skipped=c.skipped,
        judged_when=c.judged_when,
    )


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
        shape.EntityFigures(
            entity=name,
            table=db.entities[name].table if name in db.entities else name,
            exported=exported,
            loaded=loaded,
            inserted=inserted,
            updated=updated,
            unchanged=unchanged,
            rejected=rejected,
            rejected_by_reason=dict(sorted(by_reason.get(name, Counter()).items())),
            deleted=deleted,
            seconds=round(seconds, 3),
        )
        for name, exported, loaded, inserted, updated, unchanged, rejected, deleted, seconds in entity_rows
    ]
    loaded_names = {e["entity"] for e in entities}
    missing = [name for name in (expected_entities or []) if name not in loaded_names]
    fixes = [asdict(f) for f in read_fixes(db, run_id)]
    if db.scalar(sql.SQL("SELECT rehearsal FROM {} WHERE run_id = %s").format(db.bookkeeping("runs")), (run_id,)):
        facts["run_kind"] = RunKind.REHEARSAL  # Phase 2's bookkeeping knows it was rolled back
    return MigrationReport(
        run_id,
        now(),
        entities,
        checks,
        rejects,
        missing,
        fixes=fixes,
        types_not_migrated=not_migrated,
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
    verdict = report.verdict
    lines = [
        f"{report.run_kind.title} — run {report.run_id} — CultureBridge migration report",
        verdict.headline(),
        f"Generated {report.generated_at}",
        f"STATUS: {report.status}",
    ]
    lines += [f"  - {reason}" for reason in report.status_reasons]
    lines.append(verdict.tally())
    if report.rehearsal:
        lines += ["REHEARSAL (dry run): Phase 2 was not changed; the figures below are what the run would do."]
    lines += timing_lines(report)
    lines += _rehearsal_lines(report)
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
    lines += ["", f"Checks (results of run {report.run_id}):"]
    lines += [f"  {c.describe()}" for c in report.checks]
    lines += [f"  [NO RESULT] {key}" for key in verdict.unjudged]
    lines += _judged_lines(report)
    return "\n".join(lines) + "\n"


def _judged_lines(report: MigrationReport) -> list[str]:
    """Per table, the records its checks judged (each check result carries it: the export and the table)."""
    judged = {c.asset: c.details["judged"] for c in report.checks if isinstance(c.details.get("judged"), str)}
    if not judged:
        return []
    return ["", "What the checks judged:", *(f"  {asset}: {what}" for asset, what in judged.items())]


def _rehearsal_lines(report: MigrationReport) -> list[str]:
    if not report.rehearsal:
        return []
    keys = ("inserted", "updated", "deleted", "rejected")
    lines = [
        "",
        "What cutover would do, per type:",
        f"{'entity':<18}{'insert':>10}{'update':>10}{'delete':>10}{'reject':>10}",
    ]
    lines += [f"{e['entity']:<18}" + "".join(f"{e[k]:>10}" for k in keys) for e in report.entities]
    return lines


def timing_lines(report: MigrationReport) -> list[str]:
    """The run's one duration (at cutover, the downtime) and its Bubble requests: the summary's and the HTML's."""
    timing, lines = report.timing, []
    if timing.run_seconds is not None:
        stages = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in timing.stages.items())
        lines.append(f"Steps from first to last: {timing.run_seconds:.1f} s; time each stage's own steps ran: {stages}")
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
