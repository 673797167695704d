"""The report of a run rendered as text, CSV, JSON and HTML from one `MigrationReport`: pure, no database."""

from __future__ import annotations

import csv
import io
import json
import re
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.mapping.mapper import map_records
from culturebridge_migration.reporting import report_json as shape
from culturebridge_migration.reporting.html import render_html
from culturebridge_migration.reporting.report import (
    ERRORS_CSV_COLUMNS,
    REPORT_JSON_KEYS,
    CheckRecord,
    FailedStep,
    MigrationReport,
    render_errors_csv,
    render_json,
    render_summary,
    without_database,
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
    "created_at": "2025-11-05T14:03:22.120Z",
}


def report(*checks: CheckRecord, missing: list[str] | None = None) -> MigrationReport:
    """Two loaded tables, each judged: `checks`, and the bookings' row counts."""
    judged = [*checks, BOOKINGS_COUNTED]
    return MigrationReport(
        "run-1",
        "2026-12-01T10:00:00+00:00",
        [entity("users", 10, 9, 1), entity("bookings", 20, 20, 0)],
        judged,
        [REJECT],
        missing or [],
        planned_checks=[c.key for c in judged],
    )


PASSED = CheckRecord("phase2/users", "row_counts", True, "ERROR")
WARNED = CheckRecord("phase2/client_profiles", "clients_have_profiles", False, "WARN", 2, ["1x1", "1x2"])
FAILED = CheckRecord("phase2/bookings", "no_orphaned_bookings", False, "ERROR", 1, ["2x1"])
BOOKINGS_COUNTED = CheckRecord("phase2/bookings", "row_counts", True, "ERROR")


def test_a_run_with_only_warnings_succeeds_and_a_failed_error_check_fails_it() -> None:
    assert report(PASSED, WARNED).status == "SUCCESS"
    failed = report(PASSED, WARNED, FAILED)
    assert failed.status == "FAILED"
    assert failed.status_reasons == ["ERROR check no_orphaned_bookings on phase2/bookings failed (1 rows)"]


def test_a_table_planned_but_never_loaded_fails_the_run() -> None:
    assert report(PASSED, missing=["payments"]).status_reasons == ["payments was not loaded in this run"]


def test_each_check_outcome_is_pass_warn_or_fail_the_same_in_every_writer() -> None:
    assert [c.outcome for c in (PASSED, WARNED, FAILED)] == ["PASS", "FAIL", "FAIL"]
    assert [c.label for c in (PASSED, WARNED, FAILED)] == ["pass", "warn", "fail"]
    summary = render_summary(report(PASSED, WARNED, FAILED))
    assert "[PASS] phase2/users / row_counts" in summary
    assert "[WARN] phase2/client_profiles / clients_have_profiles 2 rows, e.g. 1x1, 1x2" in summary
    assert "[FAIL] phase2/bookings / no_orphaned_bookings 1 rows, e.g. 2x1" in summary
    html = render_html(report(PASSED, WARNED, FAILED))
    assert [m for m in re.findall(r"<tr class='(\w+)'>", html)] == ["pass", "warn", "fail", "pass"]


def test_summary_totals_add_up() -> None:
    summary = render_summary(report(PASSED))
    assert "STATUS: SUCCESS" in summary
    assert re.search(r"total\s+30\s+29\s+1", summary)
    assert re.search(r"users\s+invalid_email\s+1", summary)


def test_errors_csv_has_one_row_per_reject_in_the_documented_columns() -> None:
    rows = list(csv.DictReader(io.StringIO(render_errors_csv(report(PASSED)))))
    assert tuple(rows[0]) == ERRORS_CSV_COLUMNS
    # The fix column starts empty: the team fills it in and hands the file back.
    assert rows == [{**REJECT, "fix": ""}]


def test_json_report_has_the_documented_shape() -> None:
    document = json.loads(render_json(report(PASSED, FAILED)))
    assert tuple(document) == REPORT_JSON_KEYS
    # Every part, not only the top level, is the typed definition in report_json.py.
    for part, typed in [
        (document["entities"][0], shape.EntityFigures),
        (document["checks"][0], shape.CheckJson),
        (document["timing"], shape.Timing),
        (document["requests"], shape.Requests),
        (document["value_fixes"], shape.ValueFixes),
        (document["totals"], shape.Totals),
        (document["files"], shape.Files),
    ]:
        assert tuple(part) == tuple(typed.__annotations__), typed.__name__
    assert document["totals"] == {"exported": 30, "loaded": 29, "rejected": 1}
    assert document["status"] == "FAILED" and document["rejects"] == [REJECT]
    assert {(c["check"], c["outcome"]) for c in document["checks"]} == {
        ("row_counts", "PASS"),
        ("no_orphaned_bookings", "FAIL"),
    }


def test_html_report_is_one_offline_page_with_the_same_numbers() -> None:
    page = render_html(report(PASSED, WARNED))
    assert not re.search(r"(src|href)=[\"']https?://|<link|<script", page)
    assert page.count("<svg") == 4
    assert 'id="total-exported">30<' in page and 'id="status">SUCCESS<' in page
    row = re.search(r"<tr data-entity='users'>(.*?)</tr>", page).group(1)
    assert dict(re.findall(r"class='(\w+)'>(\d+)<", row)) == {"exported": "10", "loaded": "9", "rejected": "1"}


def test_html_report_gives_the_runs_duration_and_bubble_requests_beside_the_verdict() -> None:
    from dataclasses import replace

    from culturebridge_migration.reporting.timing import RunTiming

    timed = replace(report(PASSED), timing=RunTiming(41.25, {"export": 12.5}), requests={"users": 3, "bookings": 4})
    head = render_html(timed).split("<h2>")[0]  # above the first table: what a person reads first
    assert "Steps from first to last: 41.2 s" in head
    assert "Requests to Bubble&#x27;s Data API: 7 (users 3, bookings 4)" in head


def test_errors_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_text() -> None:
    formula = {**REJECT, "value": '=HYPERLINK("http://x")', "message": "+1 more", "field": "@field", "column": "-c"}
    bad = MigrationReport("run-1", "t", [], [], [formula])
    (row,) = list(csv.DictReader(io.StringIO(render_errors_csv(bad))))
    assert (row["value"], row["message"], row["field"], row["column"]) == (
        '\'=HYPERLINK("http://x")',
        "'+1 more",
        "'@field",
        "'-c",
    )


def test_a_failed_step_is_the_first_reason_the_run_failed() -> None:
    failed = MigrationReport(
        "run-1", "t", [entity("users", 10, 10, 0)], [PASSED], [], failed_steps=[FailedStep("phase2_bookings", "boom")]
    )
    assert failed.status_reasons[0] == "step phase2_bookings failed: boom"
    assert json.loads(render_json(failed))["failed_steps"] == [{"step": "phase2_bookings", "error": "boom"}]


def test_a_report_without_the_database_still_says_why_it_failed() -> None:
    report = without_database("run-1", [PASSED], "Cannot connect to PostgreSQL at host=db", failed_steps=[])
    assert report.status == "FAILED"
    assert "Phase 2 could not be read for this report: Cannot connect to PostgreSQL at host=db" in render_summary(
        report
    )


def test_unmapped_fields_types_not_migrated_and_value_fixes_are_listed_in_every_writer() -> None:
    covered = CheckRecord(
        "phase2/users",
        "fields_covered",
        False,
        "WARN",
        1,
        ["1x1"],
        details={"unmapped_fields": {"Nickname": {"records": 4, "values": ["Ana", "Bo"]}}},
    )
    fix = {
        "entity": "bookings",
        "bubble_id": "2x1",
        "field": "Notes",
        "column": "notes",
        "original": "a\\x00b",
        "stored": "ab",
        "reason": "NUL characters removed: PostgreSQL text cannot hold them",
        "decided_by": "migration",
    }
    full = MigrationReport(
        "run-1", "t", [entity("users", 4, 4, 0)], [covered], [], fixes=[fix], types_not_migrated={"review": 2}
    )
    summary, page, document = render_summary(full), render_html(full), json.loads(render_json(full))
    assert re.search(r"users\s+Nickname\s+4 records, e.g. Ana, Bo", summary)
    assert re.search(r"review\s+2 records", summary)
    assert "NUL characters removed: PostgreSQL text cannot hold them: 1" in summary
    assert "<td>Nickname</td><td class='records'>4</td>" in page and "<td>review</td>" in page
    assert document["unmapped_fields"] == {"users": {"Nickname": {"records": 4, "values": ["Ana", "Bo"]}}}
    assert document["bubble_types_not_migrated"] == {"review": 2}
    assert document["value_fixes"]["count"] == 1 and document["value_fixes"]["items"] == [fix]


def test_files_copied_missing_and_failed_are_totalled_in_every_writer() -> None:
    files = [
        {"entity": "resources", "files": 3, "bytes": 3_000_000, "missing": 1, "failed": 0, "copied_this_run": 2,
         "bytes_this_run": 2_000_000, "records_affected": ["3x7"]},
        {"entity": "users", "files": 5, "bytes": 500_000, "missing": 0, "failed": 2, "copied_this_run": 5,
         "bytes_this_run": 500_000, "records_affected": ["1x1", "1x2"]},
    ]  # fmt: skip
    full = MigrationReport("run-1", "t", [entity("users", 5, 5, 0)], [PASSED], [], files=files)
    summary, page, document = render_summary(full), render_html(full), json.loads(render_json(full))
    assert document["files"]["totals"] == {
        "files": 8, "bytes": 3_500_000, "missing": 1, "failed": 2, "copied_this_run": 7, "bytes_this_run": 2_500_000
    }  # fmt: skip
    assert "Bubble's files: 8 copied (3.5 MB; 7 in this run), 1 links missing at Bubble, 2 failed" in summary
    assert re.search(r"users\s+not copied for: 1x1, 1x2", summary)
    row = re.search(r"<tr data-entity='resources'><td>resources</td>(.*?)</tr>", page).group(1)
    assert dict(re.findall(r"class='(\w+)'>(\d+)<", row)) == {"files": "3", "missing": "1", "failed": "0"}
    assert "3x7" in row


@settings(max_examples=10)  # the HTML page draws its charts each time: few, in the fast tier
@given(data=st.data())
def test_every_writer_renders_the_rejects_of_hostile_records(hostile: SimpleNamespace, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(list(ENTITIES)))
    records = data.draw(hostile.records(name))
    rejects = [r.as_dict() for r in map_records(ENTITIES[name], records, hostile.refs).rejects]
    hostile_report = MigrationReport("run-1", "2026-12-01T10:00:00+00:00", [entity(name, 1, 0, 1)], [], rejects)
    assert len(list(csv.DictReader(io.StringIO(render_errors_csv(hostile_report))))) == len(rejects)
    assert json.loads(render_json(hostile_report))["rejects"] is not None
    assert render_summary(hostile_report) and "<html" in render_html(hostile_report)
