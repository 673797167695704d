"""The block a run ends with: what kind of run, what failed or was skipped, rejects, one duration, the reports, the verdict last."""

from __future__ import annotations

from culturebridge_migration.reporting.closing import closing_block
from culturebridge_migration.reporting.verdict import CheckRecord, RunKind, judge


def check(asset: str, name: str, *, passed: bool = True, severity: str = "ERROR", skipped: str | None = None):
    return CheckRecord(
        asset, name, passed, severity, offending_rows=0 if passed else 3, sample_bubble_ids=["1x1"], skipped=skipped
    )


def block(checks: list[CheckRecord], **options: object) -> list[str]:
    verdict = judge("run-1", [c.key for c in checks], checks, [])
    figures = {
        "kind": RunKind.FULL,
        "run_seconds": 87.24,
        "requests": 25,
        "rejects": {"users": 7, "bookings": 0, "payments": 6},
        "reports": ["migration_reports/summary_1.txt", "migration_reports/report_1.html"],
    }
    return closing_block(verdict, **(figures | options)).splitlines()


def test_the_verdict_is_the_last_line() -> None:
    lines = block([check("phase2/users", "row_counts")])
    assert lines[-1] == "VERDICT: FIT"
    assert lines[0] == "Full migration, run run-1: 87.2 s from first step to last, 25 requests to Bubble's Data API"


def test_failed_and_skipped_checks_are_named_and_a_failed_error_check_is_not_fit() -> None:
    lines = block(
        [
            check("phase2/users", "row_counts", passed=False),
            check("phase2/users", "clients_have_profiles", passed=False, severity="WARN"),
            check("phase2/users", "deletions_proved", skipped="no census"),
        ]
    )
    text = "\n".join(lines)
    assert "[FAIL] phase2/users / row_counts 3 rows" in text
    assert "[WARN] phase2/users / clients_have_profiles 3 rows" in text
    assert "[SKIPPED] phase2/users / deletions_proved: no census" in text
    assert lines[-1].startswith("VERDICT: NOT FIT")


def test_rejects_are_given_per_table_with_their_total_and_the_reports_are_named() -> None:
    text = "\n".join(block([check("phase2/users", "row_counts")]))
    assert "Rejected records: 13 (users 7, payments 6)" in text
    assert "Reports: migration_reports/summary_1.txt, migration_reports/report_1.html" in text


def test_many_skipped_checks_are_counted_not_listed() -> None:
    skipped = [check(f"phase2/t{i}", "fixes_applied", skipped="no fixes file") for i in range(8)]
    lines = block([check("phase2/users", "row_counts"), *skipped])
    assert len(lines) <= 8
    assert "  [SKIPPED] fixes_applied on 8 tables: no fixes file" in lines
