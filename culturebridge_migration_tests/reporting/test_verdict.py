"""The verdict, the three outcomes, the run's kind and its figures, as every writer renders them: pure, no Dagster."""

from __future__ import annotations

import json
import re

from culturebridge_migration.reporting.html import render_html
from culturebridge_migration.reporting.report import (
    CheckRecord,
    MigrationReport,
    RunKind,
    render_json,
    render_summary,
)
from culturebridge_migration.reporting.timing import StepSpan, run_timing_of


def entity(name: str, inserted: int = 3, updated: int = 2, deleted: int = 1, rejected: int = 1) -> dict:
    return {
        "entity": name, "table": name, "exported": inserted + updated + rejected, "loaded": inserted + updated,
        "inserted": inserted, "updated": updated, "unchanged": 0, "rejected": rejected,
        "rejected_by_reason": {"invalid_email": rejected} if rejected else {}, "deleted": deleted, "seconds": 0.5,
    }  # fmt: skip


ROWS = CheckRecord("phase2/users", "row_counts", True, "ERROR", run_id="run-1")
SKIPPED = CheckRecord(
    "phase2/users",
    "mapped_fields_present",
    True,
    "ERROR",
    run_id="run-1",
    skipped="not a whole export of the type (an incremental sync)",
    judged_when="on the next full migration",
)
PLANNED = ["phase2/users/row_counts", "phase2/users/mapped_fields_present"]


def report(*checks: CheckRecord, kind: RunKind = RunKind.FULL, planned: list[str] | None = None) -> MigrationReport:
    return MigrationReport(
        "run-1",
        "2026-12-01T10:00:00+00:00",
        [entity("users")],
        list(checks),
        [],
        run_kind=kind,
        planned_checks=PLANNED if planned is None else planned,
    )


# -- a verdict only on evidence ---------------------------------------------------------------------
def test_a_run_that_planned_no_check_gives_no_verdict_never_fit() -> None:
    nothing = MigrationReport("run-1", "t", [], [], [], run_kind=RunKind.NOTHING_TO_JUDGE, planned_checks=[])
    assert nothing.verdict.word == "NO VERDICT" and not nothing.verdict.fit
    assert nothing.status == "FAILED"
    summary = render_summary(nothing)
    assert "NO VERDICT" in summary and "fit: yes" not in summary.lower()
    assert "no check was planned in run run-1" in summary


def test_a_planned_check_without_a_result_gives_no_verdict() -> None:
    missing = report(ROWS)  # mapped_fields_present was planned and never reported
    assert missing.verdict.word == "NO VERDICT"
    assert missing.verdict.unjudged == ["phase2/users/mapped_fields_present"]
    assert "phase2/users/mapped_fields_present has no result in run run-1" in render_summary(missing)


def test_a_table_the_run_loaded_without_any_check_result_gives_no_verdict() -> None:
    unchecked = report(planned=[])  # the table was loaded, its checks deselected
    assert unchecked.verdict.word == "NO VERDICT"
    assert "phase2/users was loaded in run run-1 and has no check result" in unchecked.verdict.reasons


def test_every_planned_check_with_a_result_is_a_verdict_and_lists_the_run() -> None:
    judged = report(ROWS, SKIPPED)
    assert judged.verdict.word == "FIT" and judged.verdict.fit
    summary = render_summary(judged)
    assert "Checks of run run-1: 2 planned, 1 passed, 0 failed, 1 skipped" in summary


# -- three outcomes -----------------------------------------------------------------------------------
def test_a_skipped_check_reads_skipped_with_why_and_when_in_every_writer_and_never_pass() -> None:
    judged = report(ROWS, SKIPPED, kind=RunKind.CUTOVER)
    assert SKIPPED.outcome == "SKIPPED" and ROWS.outcome == "PASS"
    summary = render_summary(judged)
    assert "[PASS] phase2/users / mapped_fields_present" not in summary
    assert (
        "[SKIPPED] phase2/users / mapped_fields_present: not a whole export of the type (an incremental sync); "
        "judged on the next full migration" in summary
    )
    document = json.loads(render_json(judged))
    outcomes = {c["check"]: c["outcome"] for c in document["checks"]}
    assert outcomes == {"row_counts": "PASS", "mapped_fields_present": "SKIPPED"}
    assert re.findall(r"<tr class='(\w+)'>", render_html(judged)) == ["pass", "skipped"]
    # The cutover's verdict names what it did not judge.
    assert judged.verdict.skipped == ["phase2/users/mapped_fields_present"]
    assert "VERDICT: FIT (1 skipped, judged later: phase2/users/mapped_fields_present)" in summary


# -- the kind of run ----------------------------------------------------------------------------------
def test_every_writer_says_what_kind_of_run_made_the_report() -> None:
    for kind, words in [
        (RunKind.FULL, "Full migration"),
        (RunKind.INCREMENTAL, "Incremental sync"),
        (RunKind.CUTOVER, "Cutover"),
        (RunKind.REHEARSAL, "Rehearsal (rolled back: Phase 2 unchanged)"),
        (RunKind.ROLLBACK, "Rollback"),
    ]:
        made = report(ROWS, SKIPPED, kind=kind)
        assert render_summary(made).splitlines()[0].startswith(f"{words} — run run-1")
        page = render_html(made)
        assert f"<title>{words}" in page and f"<h1>{words}" in page
        assert json.loads(render_json(made))["run_kind"] == kind.value


def test_a_rehearsal_shows_no_success_banner_and_says_what_cutover_would_do_per_type() -> None:
    rehearsal = MigrationReport(
        "run-1", "t", [entity("users", 3, 2, 1, 1), entity("bookings", 5, 0, 4, 0)], [ROWS, SKIPPED], [],
        run_kind=RunKind.REHEARSAL, planned_checks=PLANNED,
    )  # fmt: skip
    page = render_html(rehearsal)
    assert 'id="status">SUCCESS<' not in page and "rolled back" in page.lower()
    summary = render_summary(rehearsal)
    assert "What cutover would do" in summary
    assert re.search(r"users\s+3\s+2\s+1\s+1", summary)
    assert re.search(r"bookings\s+5\s+0\s+4\s+0", summary)


# -- figures that are true ----------------------------------------------------------------------------
def test_a_stage_takes_the_time_its_own_steps_ran_and_the_run_the_wall_time_of_its_steps() -> None:
    spans = [
        StepSpan("bubble_export", 0.0, 10.0),
        StepSpan("phase2_users", 10.0, 20.0),
        StepSpan("files_users", 20.0, 20.5),  # the two file steps ran 0.9 s in all, while tables loaded
        StepSpan("phase2_bookings", 15.0, 40.0),
        StepSpan("files_resources", 39.6, 40.0),
        StepSpan("report_files", 40.0, 41.0),
    ]
    timing = run_timing_of(spans)
    assert timing.run_seconds == 41.0
    assert timing.stages == {"export": 10.0, "load and checks": 30.0, "files": 0.9, "reports": 1.0}


def test_a_failing_check_says_what_it_counts() -> None:
    covered = CheckRecord("phase2/users", "fields_covered", False, "WARN", 1, ["1x1"], counts="fields", run_id="run-1")
    summary = render_summary(report(ROWS, covered, planned=["phase2/users/row_counts", "phase2/users/fields_covered"]))
    assert "[WARN] phase2/users / fields_covered 1 fields, e.g. 1x1" in summary
    assert "1 rows" not in summary


# -- the README says exactly which checks gate -----------------------------------------------------------
def test_the_readme_names_exactly_the_error_checks_that_gate_the_exit_code_and_the_warn_checks_that_do_not() -> None:
    from fnmatch import fnmatch
    from pathlib import Path

    from culturebridge_migration.mapping.entities import ENTITIES
    from culturebridge_migration.validation.checks import (
        EXPORT_COMPLETE_CHECK,
        EXTRA_TYPES_COMPLETE_CHECK,
        RECORDS_KEPT_CHECK,
        table_checks,
    )
    from culturebridge_migration.validation.file_checks import FILE_CHECKS

    checks = [EXPORT_COMPLETE_CHECK, EXTRA_TYPES_COMPLETE_CHECK, RECORDS_KEPT_CHECK, *FILE_CHECKS]
    checks += [c for entity in ENTITIES.values() for c in table_checks(entity)]
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    gate = readme[readme.index("ERROR checks that gate:") : readme.index("- **NOT FIT**")]
    gating, rest = gate.split("A failed WARN check")
    for severity, text in (("ERROR", gating), ("WARN", rest)):
        named = re.findall(r"`([a-z_*]+)`", text)
        actual = {c.name for c in checks if c.severity == severity}
        assert {n for n in actual if not any(fnmatch(n, p) for p in named)} == set(), severity
        assert {p for p in named if not any(fnmatch(n, p) for n in actual)} == set(), severity
