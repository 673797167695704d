"""The whole graph through Dagster, against a real PostgreSQL and the local Bubble server, on the bundled sample."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import bcrypt
import dagster as dg
import psycopg
import pytest

from culturebridge_migration.defs.exports import EXPORT_ASSETS
from culturebridge_migration.defs.jobs import rollback_migration, validate_migration
from culturebridge_migration.defs.phase2 import TABLE_ASSETS
from culturebridge_migration.defs.reports import REPORT_ASSETS
from culturebridge_migration.defs.resources import BubbleResource, MigrationSettings, PostgresResource
from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.loading.database import connect, ensure_schema
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.reporting.report import ERRORS_CSV_COLUMNS, REPORT_JSON_KEYS
from culturebridge_migration.sources.sample_data import SampleData, generate_sample

KEY = "graph-test-key"
ALL_ASSETS = [*EXPORT_ASSETS, *TABLE_ASSETS, *REPORT_ASSETS]
WARN_CHECKS = {
    "clients_have_profiles": "client_without_profile",
    "coaches_have_profiles": "coach_without_profile",
    "confirmed_bookings_have_payment": "confirmed_booking_without_payment",
}


@pytest.fixture(scope="module")
def sample() -> SampleData:
    return generate_sample()


@pytest.fixture
def bubble_server(sample: SampleData):
    data = {ENTITIES[name].bubble_type: records for name, records in sample.records.items()}
    with FakeBubble(data, api_key=KEY) as server:
        yield server


def resources(database_url: str, tmp_path: Path, bubble: BubbleResource) -> dict:
    return {
        "postgres": PostgresResource(database_url=database_url),
        "bubble": bubble,
        "settings": MigrationSettings(
            export_dir=str(tmp_path / "exports"), report_dir=str(tmp_path / "reports"), sample_seed=7, sample_size=50
        ),
    }


def api(server: FakeBubble) -> BubbleResource:
    return BubbleResource(api_url=server.url, api_key=KEY, max_retries=2)


def run(res: dict, instance: dg.DagsterInstance, selection: list | None = None) -> dg.ExecuteInJobResult:
    return dg.materialize(selection or ALL_ASSETS, resources=res, instance=instance, raise_on_error=False)


def table_rows(conn: psycopg.Connection, table: str) -> list[tuple]:
    return conn.execute(f"SELECT * FROM public.{table} ORDER BY bubble_id").fetchall()


def checksums(database_url: str) -> dict[str, str]:
    with psycopg.connect(database_url) as conn:
        return {
            e.table: hashlib.sha256(repr(table_rows(conn, e.table)).encode()).hexdigest() for e in ENTITIES.values()
        }


@pytest.fixture
def migrated(database_url: str, tmp_path: Path, bubble_server: FakeBubble):
    instance = dg.DagsterInstance.ephemeral()
    res = resources(database_url, tmp_path, api(bubble_server))
    result = run(res, instance)
    return result, res, instance


def test_full_migration_loads_every_good_record_and_rejects_every_planted_one(
    migrated, sample: SampleData, database_url: str
) -> None:
    result, _, _ = migrated
    assert result.success
    planted = Counter(p.entity for p in sample.planted)
    with psycopg.connect(database_url) as conn:
        for name, entity in ENTITIES.items():
            count = conn.execute(f"SELECT count(*) FROM public.{entity.table}").fetchone()[0]
            assert count == len(sample.records[name]) - planted[name], name
        rejects = set(conn.execute("SELECT entity, bubble_id, column_name, reason FROM migration.rejects"))
    assert rejects == {(p.entity, p.bubble_id, p.column, p.reason) for p in sample.planted}


def test_checks_report_the_planted_warnings_and_pass_the_rest(migrated, sample: SampleData) -> None:
    result, _, _ = migrated
    evaluations = result.get_asset_check_evaluations()
    failed = {e.check_name: e for e in evaluations if not e.passed}
    assert set(failed) == set(WARN_CHECKS)
    for check_name, warning in WARN_CHECKS.items():
        evaluation = failed[check_name]
        assert evaluation.severity == dg.AssetCheckSeverity.WARN
        assert evaluation.metadata["offending_rows"].value == len(sample.warnings[warning])
        assert set(evaluation.metadata["sample_bubble_ids"].value) <= set(sample.warnings[warning])
    expected_checks = {"export_complete", "row_counts", "sample_matches_export"}
    assert expected_checks <= {e.check_name for e in evaluations if e.passed}


def test_export_counts_every_plain_password_it_hashed(migrated, sample: SampleData, tmp_path: Path) -> None:
    from culturebridge_migration.mapping.passwords import bcrypt_cost

    plain = [
        u for u in sample.records["users"] if u.get("Legacy Password") and bcrypt_cost(u["Legacy Password"]) is None
    ]
    manifest = json.loads((tmp_path / "exports" / "users.manifest.json").read_text())
    # Pages hash on several threads at once: the count must add up, not lose updates.
    assert manifest["passwords_hashed"] == len(plain) > 1
    exported = (tmp_path / "exports" / "users.jsonl").read_text()
    assert not any(u["Legacy Password"] in exported for u in plain)


def test_spot_values_are_mapped(migrated, sample: SampleData, database_url: str) -> None:
    accepted = next(
        b for b in sample.records["bookings"] if b.get("Status") == "Accepted" and b["_id"] not in _rejected(sample)
    )
    with psycopg.connect(database_url) as conn:
        status, start = conn.execute(
            "SELECT status, session_start FROM bookings WHERE bubble_id = %s", (accepted["_id"],)
        ).fetchone()
        assert status == "confirmed"
        assert start.utcoffset().total_seconds() == 0 or start.astimezone(UTC) == start
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


def _rejected(sample: SampleData) -> set[str]:
    return {p.bubble_id for p in sample.planted}


def test_reports_are_written_and_agree_with_the_database(migrated, sample: SampleData, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
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
    mapping = json.loads((tmp_path / "exports" / "user_id_mapping.json").read_text())
    assert len(mapping) == len(sample.records["users"]) - sum(p.entity == "users" for p in sample.planted)
    assert (tmp_path / "exports" / "booking_id_mapping.json").exists()


def test_no_file_holds_a_plain_password_or_the_api_key(migrated, sample: SampleData, tmp_path: Path) -> None:
    texts = [p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file()]
    assert texts
    for text in texts:
        assert KEY not in text
        for plain in sample.passwords.values():
            assert plain not in text


def test_second_run_changes_nothing_and_keeps_ids(migrated, database_url: str) -> None:
    _, res, instance = migrated
    before = checksums(database_url)
    again = run(res, instance)
    assert again.success
    assert checksums(database_url) == before
    for materialization in again.get_asset_materialization_events():
        meta = materialization.materialization.metadata
        if "inserted" in meta:
            assert (meta["inserted"].value, meta["updated"].value) == (0, 0)


def test_rollback_job_undoes_a_rerun_then_the_first_run(database_url: str, tmp_path: Path, bubble_server) -> None:
    instance = dg.DagsterInstance.ephemeral()
    res = resources(database_url, tmp_path, api(bubble_server))
    with connect(database_url) as conn:
        ensure_schema(conn, "public", "migration")
    empty = checksums(database_url)
    assert run(res, instance).success
    after_first = checksums(database_url)
    first_user = bubble_server.records("user")[0]
    bubble_server.put("user", {**first_user, "First Name": "Renamed", "Modified Date": "2026-01-01T00:00:00.000Z"})
    assert run(res, instance).success
    assert checksums(database_url) != after_first
    rollback = {"postgres": res["postgres"]}
    assert rollback_migration.execute_in_process(resources=rollback, instance=instance).success
    assert checksums(database_url) == after_first
    assert rollback_migration.execute_in_process(resources=rollback, instance=instance).success
    assert checksums(database_url) == empty


def test_validate_job_runs_only_the_checks_and_catches_an_orphan(migrated, database_url: str) -> None:
    _, res, instance = migrated
    with psycopg.connect(database_url) as conn:
        conn.execute("ALTER TABLE bookings DROP CONSTRAINT bookings_client_id_fkey")
        orphan = conn.execute("SELECT bubble_id FROM bookings ORDER BY id LIMIT 1").fetchone()[0]
        conn.execute("UPDATE bookings SET client_id = -1 WHERE bubble_id = %s", (orphan,))
        conn.execute("UPDATE community_posts SET title = title || ' (edited in Phase 2)'")
    defs = dg.Definitions(assets=[*EXPORT_ASSETS, *TABLE_ASSETS], jobs=[validate_migration], resources=res)
    result = defs.resolve_job_def("validate_migration").execute_in_process(instance=instance, raise_on_error=False)
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


def test_csv_exports_give_the_same_tables_as_the_api(
    migrated, sample: SampleData, tmp_path: Path, new_database, database_url: str
) -> None:
    from culturebridge_migration.sources.bubble_csv import write_csv_export

    csv_dir = tmp_path / "csv"
    write_csv_export(sample.records, csv_dir, tz="Europe/Berlin")
    other_db = new_database()
    res = resources(other_db, tmp_path / "csvrun", BubbleResource(csv_dir=str(csv_dir), csv_timezone="Europe/Berlin"))
    assert run(res, dg.DagsterInstance.ephemeral()).success

    def comparable(url: str, table: str) -> list[tuple]:
        with psycopg.connect(url) as conn:
            columns = [
                c
                for (c,) in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema='public' AND table_name=%s"
                    " AND column_name NOT IN ('id', 'email_verified', 'password_hash') ORDER BY ordinal_position",
                    (table,),
                )
            ]
            rows = conn.execute(f"SELECT {', '.join(columns)} FROM public.{table} ORDER BY bubble_id").fetchall()
        return [
            tuple(v.replace(second=0, microsecond=0) if isinstance(v, datetime) else v for v in row) for row in rows
        ]

    for entity in ENTITIES.values():
        api_rows = comparable(database_url, entity.table)
        csv_rows = comparable(other_db, entity.table)
        assert len(api_rows) == len(csv_rows), entity.table
        assert api_rows == csv_rows, entity.table


def test_an_export_holding_an_id_twice_fails_its_completeness_check(
    sample: SampleData, tmp_path: Path, database_url: str
) -> None:
    from culturebridge_migration.sources.bubble_csv import write_csv_export

    resources_twice = [*sample.records["resources"], dict(sample.records["resources"][0])]
    write_csv_export({**sample.records, "resources": resources_twice}, tmp_path / "csv", tz="UTC")
    res = resources(database_url, tmp_path, BubbleResource(csv_dir=str(tmp_path / "csv"), csv_timezone="UTC"))
    result = dg.materialize(
        EXPORT_ASSETS,
        selection="bubble/resources",
        resources=res,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success  # the check is blocking: nothing downstream may load this export
    (check,) = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed) == ("export_complete", False)
    assert check.metadata["exported"].value == len(resources_twice)
    assert check.metadata["duplicate_ids"].value == 1


def test_failed_error_check_still_writes_reports_then_fails_the_run(
    database_url: str, tmp_path: Path, bubble_server: FakeBubble
) -> None:
    with connect(database_url) as conn:
        ensure_schema(conn, "public", "migration")
        # A Phase 2 schema that lost a constraint, holding an orphan: the check must catch it.
        conn.execute("ALTER TABLE bookings DROP CONSTRAINT bookings_coach_id_fkey")
        conn.execute(
            "INSERT INTO users (bubble_id, email, role, created_at, updated_at) VALUES ('native', 'n@x.io', 'client', now(), now())"
        )
        conn.execute(
            "INSERT INTO bookings (bubble_id, client_id, coach_id, session_start, duration_minutes, status, created_at, updated_at)"
            " SELECT 'orphan-booking', id, -7, now(), 30, 'pending', now(), now() FROM users WHERE bubble_id = 'native'"
        )
    result = run(resources(database_url, tmp_path, api(bubble_server)), dg.DagsterInstance.ephemeral())
    assert not result.success
    orphans = next(e for e in result.get_asset_check_evaluations() if e.check_name == "no_orphaned_bookings")
    assert (orphans.passed, orphans.metadata["sample_bubble_ids"].value) == (False, ["orphan-booking"])
    (summary,) = (tmp_path / "reports").glob("summary_*.txt")
    assert "STATUS: FAILED" in summary.read_text()
    assert "no_orphaned_bookings" in summary.read_text()
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert [e.step_key for e in failures] == ["reports__cutover_readiness"]


def test_incomplete_export_blocks_the_tables(database_url: str, tmp_path: Path, bubble_server: FakeBubble) -> None:
    # Every page of bookings comes back short: the client retries, then gives up with an error.
    bubble_server.add_fault("short_page", times=100, bubble_type="booking")
    result = run(resources(database_url, tmp_path, api(bubble_server)), dg.DagsterInstance.ephemeral())
    assert not result.success
    failed_steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"}
    assert failed_steps == {"bubble_export"}
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    # The other types are exported and kept; no table loads until every export is complete.
    assert materialized == {f"bubble/{name}" for name in ENTITIES if name != "bookings"}
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "type 'booking', page at cursor 0" in str(failure.event_specific_data.error)


def test_types_export_at_once_within_one_bound_on_requests_in_flight(
    database_url: str, tmp_path: Path, sample: SampleData
) -> None:
    data = {ENTITIES[name].bubble_type: records for name, records in sample.records.items()}
    with FakeBubble(data, api_key=KEY, latency=0.05) as fake:
        bubble = BubbleResource(api_url=fake.url, api_key=KEY, page_size=20, page_workers=3)
        result = run(resources(database_url, tmp_path, bubble), dg.DagsterInstance.ephemeral(), EXPORT_ASSETS)
        requests = sorted((r for r in fake.requests if r.bubble_type), key=lambda r: r.at)
    assert result.success
    # Bubble limits requests per app: one bound for all the types, never one per type.
    assert max(r.in_flight for r in requests) == 3
    overlapping = {
        frozenset((a.bubble_type, b.bubble_type)) for a, b in itertools.pairwise(requests) if b.at - a.at < 0.05
    }
    assert any(len(pair) == 2 for pair in overlapping), "pages of different types were never in flight together"


def test_reports_of_a_blocked_run_are_written_by_the_sensor_job(
    database_url: str, tmp_path: Path, bubble_server: FakeBubble
) -> None:
    from culturebridge_migration.defs.jobs import migration_reports, reports_after_failed_run
    from culturebridge_migration.defs.reports import FOR_RUN_TAG

    instance = dg.DagsterInstance.ephemeral()
    res = resources(database_url, tmp_path, api(bubble_server))
    bubble_server.add_fault("short_page", times=100, bubble_type="payment")
    failed = run(res, instance)
    assert not failed.success and not (tmp_path / "reports").exists()
    (failure_entry,) = instance.all_logs(failed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    failure_event = failure_entry.dagster_event
    context = dg.build_run_status_sensor_context(
        sensor_name=reports_after_failed_run.name,
        dagster_event=failure_event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(failed.run_id),
    ).for_run_failure()
    request = reports_after_failed_run(context)
    assert isinstance(request, dg.RunRequest) and request.tags[FOR_RUN_TAG] == failed.run_id
    defs = dg.Definitions(assets=ALL_ASSETS, jobs=[migration_reports], resources=res)
    job = defs.resolve_job_def("migration_reports")
    assert job.execute_in_process(
        instance=instance, tags=request.tags, raise_on_error=False
    ).get_asset_materialization_events()
    (summary,) = (tmp_path / "reports").glob("summary_*.txt")
    text = summary.read_text()
    assert f"run {failed.run_id}" in text and "STATUS: FAILED" in text
    assert "payments was not loaded in this run" in text
    assert "[FAIL] bubble/payments / export_complete" not in text  # the export raised; no check result was recorded


def test_html_report_shows_the_json_reports_numbers(migrated, tmp_path: Path) -> None:
    import re

    (page,) = (tmp_path / "reports").glob("report_*.html")
    (report_json,) = (tmp_path / "reports").glob("report_*.json")
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
