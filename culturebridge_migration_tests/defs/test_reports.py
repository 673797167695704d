"""The reports and the gate through Dagster, on a real PostgreSQL and the local Bubble server: a verdict only on
evidence, three outcomes, the run's kind, and true figures."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from culturebridge_migration.defs.reports import REPORT_ASSETS

pytestmark = pytest.mark.integration


def latest(graph, pattern: str) -> Path:
    return sorted((graph.folder / "reports").glob(pattern))[-1]


def gate_event(result: dg.ExecuteInJobResult) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE" and "readiness" in e.step_key)
    return str(failure.event_specific_data.error)


def test_the_reports_alone_on_a_database_no_migration_touched_give_no_verdict(graph) -> None:
    result = graph.materialize(REPORT_ASSETS)
    assert not result.success  # exit 1: never "fit" without evidence
    assert "VERDICT: NO VERDICT on run" in gate_event(result)
    summary = latest(graph, "summary_*.txt").read_text()
    assert summary.startswith("No migration to judge — run ")
    assert "VERDICT: NO VERDICT" in summary and "[PASS]" not in summary
    assert json.loads(latest(graph, "report_*.json").read_text())["verdict"] == "NO VERDICT"


def test_a_full_run_says_so_and_reads_the_checks_that_did_not_judge_as_skipped(graph) -> None:
    result = graph.materialize()
    assert result.success
    summary = latest(graph, "summary_*.txt").read_text()
    assert summary.startswith("Full migration — run ")
    assert "VERDICT: FIT" in summary
    assert "[PASS] phase2/bookings / deletions_proved" not in summary
    assert "[SKIPPED] phase2/bookings / deletions_proved: MIGRATION_DELETED_RECORDS=report: nothing" in summary
    assert "[SKIPPED] phase2/users / fixes_applied: no fixes file" in summary
    # Over which records: the export each table's checks judged, whose run, how much of the type.
    assert "  phase2/users: export " in summary
    assert f"of run {result.run_id} (307 records, the whole type); Phase 2's users as this step loaded it" in summary
    report = json.loads(latest(graph, "report_*.json").read_text())
    assert report["run_kind"] == "full_migration"
    outcomes = {(c["asset"], c["check"]): c["outcome"] for c in report["checks"]}
    assert outcomes[("phase2/bookings", "deletions_proved")] == "SKIPPED"
    assert outcomes[("phase2/bookings", "row_counts")] == "PASS"
    judged = {c["details"].get("judged") for c in report["checks"] if c["asset"] == "phase2/bookings"}
    assert len(judged) == 1 and f"of run {result.run_id}" in judged.pop()
    assert set(report["planned_checks"]) == {f"{a}/{c}" for a, c in outcomes}
    # The UI's check metadata says the same, for every check of every asset.
    evaluations = result.get_asset_check_evaluations()
    assert {e.metadata["outcome"].value for e in evaluations} == {"PASS", "FAIL", "SKIPPED"}
    assert all(e.metadata["counts"].value for e in evaluations)
    evaluation = next(e for e in evaluations if e.check_name == "deletions_proved")
    assert evaluation.metadata["outcome"].value == "SKIPPED" and evaluation.metadata["judged_when"].value
    gate = next(
        m for m in result.get_asset_materialization_events() if m.asset_key.path == ["reports", "cutover_readiness"]
    )
    assert gate.materialization.metadata["verdict"].value == "FIT"
    assert gate.materialization.metadata["checks"].value["phase2/bookings/deletions_proved"] == "SKIPPED"


def test_a_table_loaded_with_its_checks_left_out_gives_no_verdict(graph) -> None:
    result = graph.materialize(selection=dg.AssetSelection.all().without_checks())
    assert not result.success
    assert "has no check result" in gate_event(result)


def test_one_report_can_be_selected_alone_and_the_files_are_written_whole(graph) -> None:
    result = graph.materialize(REPORT_ASSETS, selection="reports/summary")  # once: a subset error, a traceback
    assert result.success
    keys = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert keys == {"reports/summary"}
    assert latest(graph, "summary_*.txt").read_text().startswith("No migration to judge — run ")
    assert latest(graph, "report_*.json").exists()  # one report, one set of files
