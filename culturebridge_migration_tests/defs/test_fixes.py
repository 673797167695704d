"""The team's corrections through the graph: an errors CSV filled in and handed back fixes its rejects."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import psycopg
import pytest

pytestmark = pytest.mark.integration


def errors_csv(graph) -> list[dict]:
    (path,) = sorted((graph.folder / "reports").glob("errors_*.csv"))[-1:]
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_a_filled_in_errors_csv_turns_its_rejects_into_corrected_rows_and_names_what_it_could_not_apply(
    graph, tmp_path: Path
) -> None:
    assert graph.materialize().success
    rows = errors_csv(graph)
    assert "fix" in rows[0]  # the column a person fills in
    (rescheduled,) = [r for r in rows if r["entity"] == "bookings" and r["value"] == "Rescheduled"]
    rescheduled["fix"] = "pending"
    stale = {**rescheduled, "bubble_id": "1700000000000x000000000000000404", "fix": "pending"}
    fixed = tmp_path / "errors_fixed.csv"
    with fixed.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([*rows, stale])
    result = graph.with_settings(fixes=str(fixed)).materialize()
    assert result.success  # a correction that found nothing is a WARN, not a lost run
    with psycopg.connect(graph.database_url) as conn:
        status = conn.execute("SELECT status FROM bookings WHERE bubble_id = %s", (rescheduled["bubble_id"],))
        assert status.fetchone() == ("pending",)
        decided = conn.execute(
            "SELECT original, stored, decided_by FROM migration.value_fixes WHERE run_id = %s AND bubble_id = %s",
            (result.run_id, rescheduled["bubble_id"]),
        ).fetchall()
    assert decided == [("Rescheduled", "pending", "fixes file errors_fixed.csv")]
    assert not [r for r in errors_csv(graph) if r["bubble_id"] == rescheduled["bubble_id"]]  # no longer a reject
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    applied = checks[("phase2/bookings", "fixes_applied")]
    assert not applied.passed
    assert applied.metadata["sample_bubble_ids"].value == [stale["bubble_id"]]
