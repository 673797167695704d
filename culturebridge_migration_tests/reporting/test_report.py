"""The report of a run rendered as text, CSV, JSON and HTML from one `MigrationReport`: pure, no database."""

from __future__ import annotations

import csv
import io
import json
import re

from culturebridge_migration.reporting.html import render_html
from culturebridge_migration.reporting.report import (
    ERRORS_CSV_COLUMNS,
    REPORT_JSON_KEYS,
    CheckRecord,
    MigrationReport,
    render_errors_csv,
    render_json,
    render_summary,
)


def entity(name: str, exported: int, loaded: int, rejected: int) -> dict:
    return {
        "entity": name,
        "table": name,
        "exported": exported,
        "loaded": loaded,
        "inserted": loaded,
        "updated": 0,
        "unchanged": 0,
        "rejected": rejected,
        "rejected_by_reason": {"invalid_email": rejected} if rejected else {},
        "deleted": 0,
        "seconds": 1.5,
    }


REJECT = {
    "entity": "users",
    "bubble_id": "1x9",
    "field": "authentication.email.email",
    "column": "email",
    "value": "not-an-email",
    "reason": "invalid_email",
    "message": "fix it in Bubble",
}


def report(*checks: CheckRecord, missing: list[str] | None = None) -> MigrationReport:
    return MigrationReport(
        "run-1",
        "2026-12-01T10:00:00+00:00",
        [entity("users", 10, 9, 1), entity("bookings", 20, 20, 0)],
        list(checks),
        [REJECT],
        missing or [],
    )


PASSED = CheckRecord("phase2/users", "row_counts", True, "ERROR")
WARNED = CheckRecord("phase2/client_profiles", "clients_have_profiles", False, "WARN", 2, ["1x1", "1x2"])
FAILED = CheckRecord("phase2/bookings", "no_orphaned_bookings", False, "ERROR", 1, ["2x1"])


def test_a_run_with_only_warnings_succeeds_and_a_failed_error_check_fails_it() -> None:
    assert report(PASSED, WARNED).status == "SUCCESS"
    failed = report(PASSED, WARNED, FAILED)
    assert failed.status == "FAILED"
    assert failed.status_reasons == ["ERROR check no_orphaned_bookings on phase2/bookings failed (1 rows)"]


def test_a_table_planned_but_never_loaded_fails_the_run() -> None:
    assert report(PASSED, missing=["payments"]).status_reasons == ["payments was not loaded in this run"]


def test_each_check_outcome_is_pass_warn_or_fail_the_same_in_every_writer() -> None:
    assert [c.outcome for c in (PASSED, WARNED, FAILED)] == ["pass", "warn", "fail"]
    summary = render_summary(report(PASSED, WARNED, FAILED))
    assert "[PASS] phase2/users / row_counts" in summary
    assert "[WARN] phase2/client_profiles / clients_have_profiles 2 rows, e.g. 1x1, 1x2" in summary
    assert "[FAIL] phase2/bookings / no_orphaned_bookings 1 rows, e.g. 2x1" in summary
    html = render_html(report(PASSED, WARNED, FAILED))
    assert [m for m in re.findall(r"<tr class='(\w+)'>", html)] == ["pass", "warn", "fail"]


def test_summary_totals_add_up() -> None:
    summary = render_summary(report(PASSED))
    assert "STATUS: SUCCESS" in summary
    assert re.search(r"total\s+30\s+29\s+1", summary)
    assert re.search(r"users\s+invalid_email\s+1", summary)


def test_errors_csv_has_one_row_per_reject_in_the_documented_columns() -> None:
    rows = list(csv.DictReader(io.StringIO(render_errors_csv(report(PASSED)))))
    assert tuple(rows[0]) == ERRORS_CSV_COLUMNS
    assert rows == [REJECT]


def test_json_report_has_the_documented_shape() -> None:
    document = json.loads(render_json(report(PASSED, FAILED)))
    assert tuple(document) == REPORT_JSON_KEYS
    assert document["totals"] == {"exported": 30, "loaded": 29, "rejected": 1}
    assert document["status"] == "FAILED" and document["rejects"] == [REJECT]
    assert {c["check"] for c in document["checks"]} == {"row_counts", "no_orphaned_bookings"}


def test_html_report_is_one_offline_page_with_the_same_numbers() -> None:
    page = render_html(report(PASSED, WARNED))
    assert not re.search(r"(src|href)=[\"']https?://|<link|<script", page)
    assert page.count("<svg") == 4
    assert 'id="total-exported">30<' in page and 'id="status">SUCCESS<' in page
    row = re.search(r"<tr data-entity='users'>(.*?)</tr>", page).group(1)
    assert dict(re.findall(r"class='(\w+)'>(\d+)<", row)) == {"exported": "10", "loaded": "9", "rejected": "1"}
