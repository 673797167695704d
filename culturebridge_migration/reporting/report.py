"""The migration report of one run: gathered from PostgreSQL and Dagster's check results, rendered as files.

The JSON shape (version 1) is stable; `REPORT_JSON_KEYS` documents it and a test holds it:
{
  "version": 1, "run_id": str, "generated_at": ISO-8601 UTC, "status": "SUCCESS" | "FAILED",
  "status_reasons": [str],
  "entities": [{"entity", "table", "exported", "loaded", "inserted", "updated", "unchanged",
                "rejected", "rejected_by_reason": {reason: n}, "deleted", "seconds"}],
  ("deleted": rows removed because they are gone from Bubble, with deleted_records = delete)
  "checks": [{"asset", "check", "passed", "severity", "offending_rows", "sample_bubble_ids", "description"}],
  "rejects": [{"entity", "bubble_id", "field", "column", "value", "reason", "message"}],
  "totals": {"exported", "loaded", "rejected"}
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

from culturebridge_migration.loading.bookkeeping import read_rejects
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import load_order
from culturebridge_migration.mapping.rejects import REJECT_FIELDS

REPORT_VERSION = 1
REPORT_JSON_KEYS = (
    "version",
    "run_id",
    "generated_at",
    "status",
    "status_reasons",
    "entities",
    "checks",
    "rejects",
    "totals",
)
ERRORS_CSV_COLUMNS = REJECT_FIELDS


@dataclass(frozen=True)
class CheckRecord:
    asset: str
    check: str
    passed: bool
    severity: str
    offending_rows: int | None = None
    sample_bubble_ids: list[str] = field(default_factory=list)
    description: str = ""

    @property
    def outcome(self) -> str:
        """pass, warn (a failed WARN check) or fail (a failed ERROR check)."""
        return "pass" if self.passed else ("fail" if self.severity == "ERROR" else "warn")


@dataclass
class MigrationReport:
    run_id: str
    generated_at: str
    entities: list[dict]
    checks: list[CheckRecord]
    rejects: list[dict]
    missing_entities: list[str] = field(default_factory=list)  # planned in the run but never loaded

    @property
    def status_reasons(self) -> list[str]:
        reasons = [
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

    def as_json(self) -> dict:
        return {
            "version": REPORT_VERSION,
            "run_id": self.run_id,
            "generated_at": self.generated_at,
            "status": self.status,
            "status_reasons": self.status_reasons,
            "entities": self.entities,
            "checks": [asdict(c) for c in self.checks],
            "rejects": self.rejects,
            "totals": self.totals,
        }


def gather(
    db: Phase2Database, run_id: str, checks: list[CheckRecord], expected_entities: list[str] | None = None
) -> MigrationReport:
    entity_rows = db.execute(
        sql.SQL(
            "SELECT entity, exported, loaded, inserted, updated, unchanged, rejected, deleted,"
            " extract(epoch FROM finished_at - started_at)::float FROM {} WHERE run_id = %s"
        ).format(db.bookkeeping("entity_runs")),
        (run_id,),
    ).fetchall()
    order = load_order(db.entities)
    entity_rows.sort(key=lambda r: order.index(r[0]) if r[0] in order else len(order))
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
    return MigrationReport(run_id, datetime.now(UTC).isoformat(timespec="seconds"), entities, checks, rejects, missing)


def render_summary(report: MigrationReport) -> str:
    lines = [
        f"CultureBridge migration report — run {report.run_id}",
        f"Generated {report.generated_at}",
        f"STATUS: {report.status}",
    ]
    lines += [f"  - {reason}" for reason in report.status_reasons]
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
    lines += ["", "Checks:"]
    for c in report.checks:
        outcome = c.outcome.upper()
        extra = f" {c.offending_rows} rows, e.g. {', '.join(c.sample_bubble_ids[:3])}" if not c.passed else ""
        lines.append(f"  [{outcome}] {c.asset} / {c.check}{extra}")
    return "\n".join(lines) + "\n"


def render_errors_csv(report: MigrationReport) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=ERRORS_CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(report.rejects)
    return out.getvalue()


def render_json(report: MigrationReport) -> str:
    return json.dumps(report.as_json(), indent=2, default=str)
