"""A rollback's own report: which run it undid and what that took, table by table (summary and JSON)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from culturebridge_migration.loading.rollback import RolledBack
from culturebridge_migration.reporting.report_json import REPORT_VERSION, RollbackJson
from culturebridge_migration.reporting.verdict import RunKind


def rollback_json(run_id: str, undone_run: str, done: RolledBack, *, forced: bool) -> RollbackJson:
    return RollbackJson(
        version=REPORT_VERSION,
        run_id=run_id,
        run_kind=RunKind.ROLLBACK.value,
        generated_at=datetime.now(UTC).isoformat(),
        undone_run=undone_run,
        forced=forced,
        **done.counts(),
        by_table=done.by_table,
        overwritten=[c.describe() for c in done.overwritten],
    )


def rollback_texts(report: RollbackJson) -> dict[str, str]:
    """The rollback's report files (kind -> text), the summary's first line saying what kind of run it was."""
    lines = [
        f"{RunKind.ROLLBACK.title} — run {report['run_id']} — undid migration run {report['undone_run']}",
        f"Phase 2 is as it was before run {report['undone_run']}: {report['restored']} rows restored, "
        f"{report['recreated']} recreated (the run had deleted them), {report['deleted']} deleted (it had inserted them).",
        "",
        f"{'table':<24} {'restored':>9} {'recreated':>10} {'deleted':>8}",
        *(
            f"{table:<24} {c['restored']:>9} {c['recreated']:>10} {c['deleted']:>8}"
            for table, c in report["by_table"].items()
        ),
    ]
    if report["forced"]:
        lines += ["", "Forced: what the app had changed since the run was overwritten:"]
        lines += [f"  - {what}" for what in report["overwritten"]] or ["  (nothing)"]
    return {"rollback_summary": "\n".join(lines) + "\n", "rollback_report": json.dumps(report, indent=2) + "\n"}
