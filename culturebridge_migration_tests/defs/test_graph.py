"""The whole graph through Dagster, against a real PostgreSQL and the local Bubble server, on the bundled sample.

Read-only tests share one migration of the sample (module scope); tests that change Phase 2 or Bubble
migrate on a database of their own.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import bcrypt
import dagster as dg
import psycopg
import pytest

from culturebridge_migration.definitions import ALL_ASSETS
from culturebridge_migration.defs.exports import EXPORT_ASSETS
from culturebridge_migration.defs.jobs import rollback_migration, validate_migration
from culturebridge_migration.defs.phase2 import TABLE_ASSETS
from culturebridge_migration.defs.resources import BubbleResource
from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.fake_bubble.sample import sample_files
from culturebridge_migration.loading.database import connect
from culturebridge_migration.loading.phase2_db import Schemas
from culturebridge_migration.loading.schema_evolution import ensure_schema
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.reporting.report import ERRORS_CSV_COLUMNS, REPORT_JSON_KEYS
from culturebridge_migration.sources.sample_data import SampleData

pytestmark = pytest.mark.integration
WARN_CHECKS = {
    "clients_have_profiles": "client_without_profile",
    "coaches_have_profiles": "coach_without_profile",
    "confirmed_bookings_have_payment": "confirmed_booking_without_payment",
}


class Migrated:
    """One migration of the sample, and where it left everything."""

    def __init__(self, graph, result: dg.ExecuteInJobResult) -> None:
        self.graph, self.result = graph, result
        self.database_url, self.folder = graph.database_url, graph.folder


@pytest.fixture(scope="module")
def migrated(sample: SampleData, module_database: str, tmp_path_factory, graph_for: Callable) -> Migrated:
    """The sample migrated once; its tests only read."""
    data = {ENTITIES[name].bubble_type: records for name, records in sample.records.items()}
    with FakeBubble(data, files=sample_files(sample), api_key="test-api-key") as server:
        graph = graph_for(module_database, tmp_path_factory.mktemp("migrated"), server)
        return Migrated(graph, graph.materialize())


def _rejected(sample: SampleData) -> set[str]:
    return {p.bubble_id for p in sample.planted}


def test_full_migration_loads_every_good_record_and_rejects_every_planted_one(
    migrated: Migrated, sample: SampleData
) -> None:
    assert migrated.result.success
    planted = Counter(p.entity for p in sample.planted)
    with psycopg.connect(migrated.database_url) as conn:
        for name, entity in ENTITIES.items():
            count = conn.execute(f"SELECT count(*) FROM public.{entity.table}").fetchone()[0]
            assert count == len(sample.records[name]) - planted[name], name
        rejects = set(conn.execute("SELECT entity, bubble_id, column_name, reason FROM migration.rejects"))
    assert rejects == {(p.entity, p.bubble_id, p.column, p.reason) for p in sample.planted}


def test_checks_report_the_planted_warnings_and_pass_the_rest(migrated: Migrated, sample: SampleData) -> None:
    evaluations = migrated.result.get_asset_check_evaluations()
    failed = {e.check_name: e for e in evaluations if not e.passed}
    assert set(failed) == set(WARN_CHECKS)
    for check_name, warning in WARN_CHECKS.items():
        evaluation = failed[check_name]
        assert evaluation.severity == dg.AssetCheckSeverity.WARN
        assert evaluation.metadata["offending_rows"].value == len(sample.warnings[warning])
        assert set(evaluation.metadata["sample_bubble_ids"].value) <= set(sample.warnings[warning])
    expected_checks = {"export_complete", "row_counts", "sample_matches_export"}
    assert expected_checks <= {e.check_name for e in evaluations if e.passed}


def test_every_table_check_result_carries_its_own_seconds(migrated: Migrated) -> None:
    tables = [e for e in migrated.result.get_asset_check_evaluations() if e.asset_key.path[0] == "phase2"]
    assert tables and all(e.metadata["seconds"].value >= 0 for e in tables)


def test_export_counts_every_plain_password_it_hashed(migrated: Migrated, sample: SampleData) -> None:
    from culturebridge_migration.mapping.passwords import bcrypt_cost

    plain = [
        u for u in sample.records["users"] if u.get("Legacy Password") and bcrypt_cost(u["Legacy Password"]) is None
    ]
    manifest = json.loads((migrated.folder / "exports" / "users.manifest.json").read_text())
    # Pages hash on several threads at once: the count must add up, not lose updates.
    assert manifest["passwords_hashed"] == len(plain) > 1
    exported = (migrated.folder / "exports" / "users.jsonl").read_text()
    assert not any(u["Legacy Password"] in exported for u in plain)


def test_spot_values_are_mapped(migrated: Migrated, sample: SampleData) -> None:
    accepted = next(
        b for b in sample.records["bookings"] if b.get("Status") == "Accepted" and b["_id"] not in _rejected(sample)
    )
    with psycopg.connect(migrated.database_url) as conn:
        status, start = conn.execute(
            "SELECT status, session_start FROM bookings WHERE bubble_id = %s", (accepted["_id"],)
        ).fetchone()
        assert status == "confirmed"
        assert start == datetime.fromisoformat(accepted["Session Start"])  # the instant Bubble sent
        profile = next(
            p for p in sample.records["client_profiles"] if p["_id"] not in _rejected(sample) and p.get("Goals")
        )
        goals, quiz = conn.execute(
            "SELECT goals, quiz_answers FROM client_profiles WHERE bubble_id = %s", (profile["_id"],)
        ).fetchone()
        assert goals == profile["Goals"]
        assert quiz == json.loads(profile["Quiz Answers"])
        hashes = dict(conn.execute("SELECT bubble_id, password_hash FROM users WHERE password_hash IS NOT NULL"))
        resets = conn.execute("SELECT count(*) FROM users WHERE password_reset_required").fetchone()[0]
        users = conn.execute("SELECT count(*) FROM users").fetchone()[0]
    verified = [
        uid
        for uid, plain in sample.passwords.items()
        if uid in hashes and bcrypt.checkpw(plain.encode(), hashes[uid].encode())
    ]
    assert len(verified) == len(hashes) >= 3
    assert all(h.startswith(("$2b$12$", "$2a$12$", "$2y$12$")) or int(h[4:6]) >= 12 for h in hashes.values())
    assert resets == users - len(hashes)


def test_reports_are_written_and_agree_with_the_database(migrated: Migrated, sample: SampleData) -> None:
    reports = migrated.folder / "reports"
    (summary,) = reports.glob("summary_*.txt")
    (errors,) = reports.glob("errors_*.csv")
    (report_json,) = reports.glob("report_*.json")
    assert (reports / summary.name.replace("summary_", "rollback_").replace(".txt", ".sql")).exists()
    assert "STATUS: SUCCESS" in summary.read_text()
    with errors.open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0].keys()) == ERRORS_CSV_COLUMNS
    assert len(rows) == len(sample.planted)
    report = json.loads(report_json.read_text())
    assert tuple(report) == REPORT_JSON_KEYS
    assert report["totals"]["rejected"] == len(sample.planted)
    assert {(c["check"], c["passed"]) for c in report["checks"] if not c["passed"]} == {(c, False) for c in WARN_CHECKS}
    mapping = json.loads((migrated.folder / "exports" / "user_id_mapping.json").read_text())
    assert len(mapping) == len(sample.records["users"]) - sum(p.entity == "users" for p in sample.planted)
    assert (migrated.folder / "exports" / "booking_id_mapping.json").exists()


def test_no_file_holds_a_plain_password_or_the_api_key(migrated: Migrated, sample: SampleData) -> None:
    texts = [p.read_text(errors="ignore") for p in migrated.folder.rglob("*") if p.is_file()]
    assert texts
    for text in texts:
        assert "test-api-key" not in text
        for plain in sample.passwords.values():
            assert plain not in text


def test_html_report_shows_the_json_reports_numbers(migrated: Migrated) -> None:
    import re

    (page,) = (migrated.folder / "reports").glob("report_*.html")
    (report_json,) = (migrated.folder / "reports").glob("report_*.json")
    text, report = page.read_text(), json.loads(report_json.read_text())
    assert not re.search(r"(src|href)=[\"']https?://|<link|<script", text)  # opens offline
    assert text.count("<svg") == 4
    for entity in report["entities"]:
        row = re.search(rf"<tr data-entity='{entity['entity']}'>(.*?)</tr>", text).group(1)
        cells = re.findall(r"class='(\w+)'>(\d+)<", row)
        assert dict(cells) == {k: str(entity[k]) for k in ("exported", "loaded", "rejected")}
    for key, value in report["totals"].items():
        assert f'id="total-{key}">{value}<' in text
    assert f'id="status">{report["status"]}<' in text


def test_csv_exports_give_the_same_tables_as_the_api(
    migrated: Migrated,
    sample: SampleData,
    tmp_path: Path,
    database_url: str,
    graph_for: Callable,
    bubble_server: FakeBubble,
) -> None:
    from culturebridge_migration.sources.bubble_csv import write_csv_export

    csv_dir = tmp_path / "csv"
    write_csv_export(sample.records, csv_dir, tz="Europe/Berlin")
    # The files the CSV links are on Bubble's CDN; here the local server stands in for it.
    csv_source = BubbleResource(
        csv_dir=str(csv_dir), csv_timezone="Europe/Berlin", files_base_url=bubble_server.files_url
    )
    assert graph_for(database_url, tmp_path / "csvrun", csv_source).materialize().success
    (csv_report,) = (tmp_path / "csvrun" / "reports").glob("report_*.json")
    assert json.loads(csv_report.read_text())["requests"] == {"by_type": {}, "total": 0}  # nothing asked of Bubble

    def comparable(url: str, table: str) -> list[tuple]:
        with psycopg.connect(url) as conn:
            columns = [
                c
                for (c,) in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema='public' AND table_name=%s"
                    # The CSV export holds no email_confirmed, user_signed_up or password, and names the creator by
                    # email.
                    " AND column_name NOT IN ('id', 'email_verified', 'signed_up', 'password_hash', 'bubble_created_by')"
                    " ORDER BY ordinal_position",
                    (table,),
                )
            ]
            rows = conn.execute(f"SELECT {', '.join(columns)} FROM public.{table} ORDER BY bubble_id").fetchall()
        return [
            tuple(v.replace(second=0, microsecond=0) if isinstance(v, datetime) else v for v in row) for row in rows
        ]

    for entity in ENTITIES.values():
        api_rows = comparable(migrated.database_url, entity.table)
        csv_rows = comparable(database_url, entity.table)
        assert len(api_rows) == len(csv_rows), entity.table
        assert api_rows == csv_rows, entity.table


# -- tests that change Phase 2 or Bubble: a database of their own ---------------------------------
def test_second_run_changes_nothing_and_keeps_ids(graph, checksums: Callable) -> None:
    assert graph.materialize().success
    before = checksums(graph.database_url)
    again = graph.materialize()
    assert again.success
    assert checksums(graph.database_url) == before
    for materialization in again.get_asset_materialization_events():
        meta = materialization.materialization.metadata
        if "inserted" in meta:
            assert (meta["inserted"].value, meta["updated"].value) == (0, 0)


def test_rollback_job_undoes_a_rerun_then_the_first_run(graph, bubble_server: FakeBubble, checksums: Callable) -> None:
    with connect(graph.database_url) as conn:
        ensure_schema(conn, Schemas())
    empty = checksums(graph.database_url)
    assert graph.materialize().success
    after_first = checksums(graph.database_url)
    first_user = bubble_server.records("user")[0]
    bubble_server.put("user", {**first_user, "First Name": "Renamed", "Modified Date": "2026-01-01T00:00:00.000Z"})
    assert graph.materialize().success
    assert checksums(graph.database_url) != after_first
    rerun = graph.instance.get_runs(limit=1)[0].run_id
    rollback = {"postgres": graph.resources["postgres"], "settings": graph.resources["settings"]}
    undo = rollback_migration.execute_in_process(resources=rollback, instance=graph.instance)
    assert undo.success
    assert checksums(graph.database_url) == after_first
    # The rollback writes its own report, saying what kind of run it was and what it undid.
    (summary,) = (graph.folder / "reports").glob("rollback_summary_*.txt")
    assert summary.read_text().startswith(f"Rollback — run {undo.run_id} — undid migration run {rerun}")
    (report,) = (graph.folder / "reports").glob("rollback_report_*.json")
    figures = json.loads(report.read_text())
    assert (figures["run_kind"], figures["undone_run"], figures["restored"]) == ("rollback", rerun, 1)
    assert figures["by_table"]["users"]["restored"] == 1
    assert rollback_migration.execute_in_process(resources=rollback, instance=graph.instance).success
    assert checksums(graph.database_url) == empty


def test_validate_job_runs_only_the_checks_and_catches_an_orphan(graph) -> None:
    assert graph.materialize().success
    with psycopg.connect(graph.database_url) as conn:
        conn.execute("ALTER TABLE bookings DROP CONSTRAINT bookings_client_id_fkey")
        orphan = conn.execute("SELECT bubble_id FROM bookings ORDER BY id LIMIT 1").fetchone()[0]
        conn.execute("UPDATE bookings SET client_id = -1 WHERE bubble_id = %s", (orphan,))
        conn.execute("UPDATE community_posts SET title = title || ' (edited in Phase 2)'")
    defs = dg.Definitions(assets=[*EXPORT_ASSETS, *TABLE_ASSETS], jobs=[validate_migration], resources=graph.resources)
    job = defs.resolve_job_def("validate_migration")
    result = job.execute_in_process(instance=graph.instance, raise_on_error=False)
    assert not result.get_asset_materialization_events()
    failed = {e.check_name: e for e in result.get_asset_check_evaluations() if not e.passed}
    assert failed["no_orphaned_bookings"].metadata["offending_rows"].value == 1
    assert failed["no_orphaned_bookings"].metadata["sample_bubble_ids"].value == [orphan]
    assert failed["no_orphaned_bookings"].severity == dg.AssetCheckSeverity.ERROR
    sample = next(
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "sample_matches_export" and e.asset_key.path[-1] == "community_posts"
    )
    assert not sample.passed and sample.metadata["offending_rows"].value == sample.metadata["sampled"].value > 0


def test_an_export_holding_an_id_twice_fails_its_completeness_check(
    sample: SampleData, tmp_path: Path, database_url: str, graph_for: Callable
) -> None:
    from culturebridge_migration.sources.bubble_csv import write_csv_export

    resources_twice = [*sample.records["resources"], dict(sample.records["resources"][0])]
    write_csv_export({**sample.records, "resources": resources_twice}, tmp_path / "csv", tz="UTC")
    graph = graph_for(database_url, tmp_path, BubbleResource(csv_dir=str(tmp_path / "csv"), csv_timezone="UTC"))
    result = graph.materialize(EXPORT_ASSETS, selection="bubble/resources")
    assert not result.success  # the check is blocking: nothing downstream may load this export
    (check,) = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed) == ("export_complete", False)
    assert check.metadata["exported"].value == len(resources_twice)
    assert check.metadata["duplicate_ids"].value == 1
    # The CLI's executor may start the table on the export's materialization, before the failed check ends
    # the export's step (definitions.py): the load refuses the incomplete export itself.
    load = graph.materialize(selection="phase2/resources")
    failure = next(e for e in load.all_events if e.event_type_value == "STEP_FAILURE")
    assert "The resources export is incomplete" in str(failure.event_specific_data.error)
    assert not load.get_asset_materialization_events()


def test_failed_error_check_still_writes_reports_then_fails_the_run(graph) -> None:
    with connect(graph.database_url) as conn:
        ensure_schema(conn, Schemas())
        # A Phase 2 schema that lost a constraint, holding an orphan: the check must catch it.
        conn.execute("ALTER TABLE bookings DROP CONSTRAINT bookings_coach_id_fkey")
        conn.execute(  # a user the app signed up: no Bubble id
            "INSERT INTO users (bubble_id, email, role, created_at, updated_at)"
            " VALUES (NULL, 'n@x.io', 'client', now(), now())"
        )
        conn.execute(
            "INSERT INTO bookings (bubble_id, client_id, coach_id, session_start, duration_minutes, status,"
            " created_at, updated_at) SELECT 'orphan-booking', id, -7, now(), 30, 'pending', now(), now() FROM users"
            " WHERE bubble_id IS NULL"
        )
    result = graph.materialize()
    assert not result.success
    orphans = next(e for e in result.get_asset_check_evaluations() if e.check_name == "no_orphaned_bookings")
    assert (orphans.passed, orphans.metadata["sample_bubble_ids"].value) == (False, ["orphan-booking"])
    (summary,) = (graph.folder / "reports").glob("summary_*.txt")
    assert "STATUS: FAILED" in summary.read_text()
    assert "no_orphaned_bookings" in summary.read_text()
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert [e.step_key for e in failures] == ["reports__cutover_readiness"]


def test_incomplete_export_blocks_the_tables(graph, bubble_server: FakeBubble) -> None:
    # Every page of bookings comes back short: the client retries, then gives up with an error.
    bubble_server.add_fault("short_page", times=100, bubble_type="booking")
    result = graph.materialize()
    assert not result.success
    failed_steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"}
    assert failed_steps == {"bubble_export"}
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    # The other types are exported and kept. In one process the export's failed step stops every load; under
    # the CLI's executor the complete types' tables load while it runs (test_loads_overlap_export.py).
    assert materialized == {f"bubble/{name}" for name in ENTITIES if name != "bookings"} | {"bubble/extra_types"}
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "type 'booking', page at cursor 0" in str(failure.event_specific_data.error)
    assert "The other types were exported." in str(failure.event_specific_data.error)


def test_when_every_type_fails_the_message_does_not_claim_the_others_were_exported(
    database_url: str, tmp_path: Path, graph_for: Callable
) -> None:
    wrong = BubbleResource(api_url="http://127.0.0.1:9/api/1.1", api_key="k", max_retries=0)
    result = graph_for(database_url, tmp_path, wrong).materialize(EXPORT_ASSETS)
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error)
    assert "Cannot reach Bubble at http://127.0.0.1:9" in message
    assert "No type was exported." in message and "The other types were exported." not in message


def test_a_blocked_run_writes_its_reports_and_the_sensor_job_writes_them_again(
    graph, bubble_server: FakeBubble
) -> None:
    from culturebridge_migration.defs.jobs import migration_reports, reports_after_failed_run
    from culturebridge_migration.defs.reports import FOR_RUN_TAG

    bubble_server.add_fault("short_page", times=100, bubble_type="payment")
    failed = graph.materialize()
    assert not failed.success
    (summary,) = (graph.folder / "reports").glob("summary_*.txt")  # written by the failing export step itself
    text = summary.read_text()
    assert "STATUS: FAILED" in text and "step bubble_export failed: Export failed for payments" in text
    (failure_entry,) = graph.instance.all_logs(failed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name=reports_after_failed_run.name,
        dagster_event=failure_entry.dagster_event,
        dagster_instance=graph.instance,
        dagster_run=graph.instance.get_run_by_id(failed.run_id),
    ).for_run_failure()
    request = reports_after_failed_run(context)
    assert isinstance(request, dg.RunRequest) and request.tags[FOR_RUN_TAG] == failed.run_id
    defs = dg.Definitions(assets=ALL_ASSETS, jobs=[migration_reports], resources=graph.resources)
    job = defs.resolve_job_def("migration_reports")
    assert job.execute_in_process(
        instance=graph.instance, tags=request.tags, raise_on_error=False
    ).get_asset_materialization_events()
    (again,) = (graph.folder / "reports").glob("summary_*.txt")  # the same run's files, replaced
    text = again.read_text()
    assert again == summary
    assert f"run {failed.run_id}" in text and "STATUS: FAILED" in text
    assert "payments was not loaded in this run" in text
    assert "[FAIL] bubble/payments / export_complete" not in text  # the export raised; no check result was recorded


def test_a_failing_table_step_still_leaves_every_report_saying_which_step_and_why(graph) -> None:
    assert graph.materialize(EXPORT_ASSETS).success
    manifest = graph.folder / "exports" / "bookings.manifest.json"
    manifest.write_text(manifest.read_text().replace('"export_id": "', '"export_id": "not-'))
    result = graph.materialize(TABLE_ASSETS)
    assert not result.success
    failed = {e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"}
    assert failed == {"phase2_bookings"}
    reports = graph.folder / "reports"
    for pattern in ("summary_*.txt", "errors_*.csv", "report_*.json", "report_*.html"):
        assert len(list(reports.glob(pattern))) == 1, pattern
    (report_json,) = reports.glob("report_*.json")
    report = json.loads(report_json.read_text())
    assert report["status"] == "FAILED"
    assert report["failed_steps"][0]["step"] == "phase2_bookings"
    assert "was not written by the export its manifest describes" in report["failed_steps"][0]["error"]
    # The steps that ended after the failure are in the reports too: users, posts, comments, resources...
    assert {"users", "posts", "comments", "resources"} <= {e["entity"] for e in report["entities"]}
