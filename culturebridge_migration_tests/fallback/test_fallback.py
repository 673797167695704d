"""The way back, end to end: migrate, cut over, the Phase 2 app writes, fallback, and Bubble holds it all."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from culturebridge_migration.defs.fallback import fallback, fallback_rehearsal
from culturebridge_migration.defs.jobs import CUTOVER_CONFIG
from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.sources.bubble_api import BubbleClient
from culturebridge_migration.sources.sample_data import generate_sample
from culturebridge_migration_tests.conftest import API_KEY

pytestmark = pytest.mark.integration


def sample_data() -> dict[str, list[dict]]:
    sample = generate_sample(30, bookings=60, payments=20, posts=10, comments=20, resources=5)
    return {ENTITIES[name].bubble_type: records for name, records in sample.records.items()}


@pytest.fixture
def cut_over(database_url: str, tmp_path: Path, serve: Callable, graph_for: Callable):
    """A small sample migrated and cut over (which installs the change capture); yields its server and graph."""
    with serve(sample_data()) as server:
        graph = graph_for(database_url, tmp_path, server)
        assert graph.materialize().success
        assert graph.materialize(run_config=CUTOVER_CONFIG).success
        yield server, graph


def app_writes(database_url: str) -> dict[str, object]:
    """What the Phase 2 app does in its first hour, as the app (not the migration): a sign-up, a booking with
    its payment for the new client, a migrated user's edit, a migrated booking's cancellation, a deletion."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        coach_id, coach_bubble = conn.execute(
            "SELECT id, bubble_id FROM users WHERE role = 'coach' ORDER BY id LIMIT 1"
        ).fetchone()
        user = conn.execute(
            "INSERT INTO users (email, first_name, last_name, role, status, created_at, updated_at)"
            " VALUES ('new.client@example.com', 'Nia', 'Okafor', 'client', 'active', now(), now()) RETURNING id"
        ).fetchone()[0]
        booking = conn.execute(
            "INSERT INTO bookings (client_id, coach_id, session_start, duration_minutes, status, created_at, updated_at)"
            " VALUES (%s, %s, '2027-01-10T15:00:00Z', 60, 'confirmed', now(), now()) RETURNING id",
            (user, coach_id),
        ).fetchone()[0]
        payment = conn.execute(
            "INSERT INTO payments (booking_id, amount, currency, status, created_at, updated_at)"
            " VALUES (%s, 120.50, 'USD', 'succeeded', now(), now()) RETURNING id",
            (booking,),
        ).fetchone()[0]
        edited = conn.execute(
            "UPDATE users SET first_name = 'Renamed' WHERE id = (SELECT min(id) FROM users WHERE role = 'client')"
            " RETURNING bubble_id"
        ).fetchone()[0]
        cancelled = conn.execute(
            "UPDATE bookings SET status = 'cancelled' WHERE id = (SELECT min(b.id) FROM bookings b"
            " WHERE b.status <> 'cancelled' AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.booking_id = b.id))"
            " RETURNING bubble_id"
        ).fetchone()[0]
        deleted = conn.execute(
            "DELETE FROM community_comments WHERE id = (SELECT min(id) FROM community_comments) RETURNING bubble_id"
        ).fetchone()[0]
    return {
        "user": user, "booking": booking, "payment": payment, "coach": coach_bubble,
        "edited": edited, "cancelled": cancelled, "deleted": deleted,
    }  # fmt: skip


def run(job: dg.JobDefinition, graph) -> dg.ExecuteInProcessResult:
    return job.execute_in_process(resources=graph.resources, instance=graph.instance, raise_on_error=False)


def bubble_id_of(database_url: str, table: str, row_id: int) -> str | None:
    with psycopg.connect(database_url) as conn:
        return conn.execute(f"SELECT bubble_id FROM {table} WHERE id = %s", (row_id,)).fetchone()[0]


def with_phase2_id(server: FakeBubble, bubble_type: str, row_id: int) -> list[dict]:
    return [r for r in server.records(bubble_type) if r.get("phase2_id") == str(row_id)]


def check_outcome(result: dg.ExecuteInProcessResult) -> tuple[bool, str]:
    """The fallback's ERROR check as the asset-check dashboard records it: (passed, outcome)."""
    (evaluation,) = [
        e.event_specific_data for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    return evaluation.passed, evaluation.metadata["outcome"].value


def latest(graph, kind: str) -> Path:
    return sorted((graph.folder / "reports").glob(f"{kind}_*"))[-1]


def test_fallback_writes_the_apps_changes_to_bubble_once(cut_over, database_url: str) -> None:
    server, graph = cut_over
    wrote = app_writes(database_url)
    users_before = len(server.records("user"))

    rehearsal = run(fallback_rehearsal, graph)
    assert rehearsal.success
    assert len(server.records("user")) == users_before  # a rehearsal writes nothing
    assert bubble_id_of(database_url, "users", wrote["user"]) is None
    planned = json.loads(latest(graph, "fallback_report").read_text())["planned"]
    assert planned["users"] == {"insert": 1, "update": 1, "delete": 0}
    assert planned["comments"]["delete"] == 1

    assert check_outcome(rehearsal) == (True, "SKIPPED")  # a rehearsal judges nothing: never a PASS
    written = run(fallback, graph)
    assert written.success and check_outcome(written) == (True, "PASS")
    user_id = bubble_id_of(database_url, "users", wrote["user"])
    booking_id = bubble_id_of(database_url, "bookings", wrote["booking"])
    assert user_id and booking_id  # the ids Bubble gave are in Phase 2 (and so in the id maps)
    (user,) = with_phase2_id(server, "user", wrote["user"])
    assert user["_id"] == user_id and user["First Name"] == "Nia"
    (booking,) = with_phase2_id(server, "booking", wrote["booking"])
    assert booking["Client"] == user_id and booking["Coach"] == wrote["coach"]
    (payment,) = with_phase2_id(server, "payment", wrote["payment"])
    assert payment["Booking"] == booking_id and payment["Amount"] == 120.5
    by_id = {r["_id"]: r for r in server.records("user")}
    assert by_id[wrote["edited"]]["First Name"] == "Renamed"
    cancelled = next(r for r in server.records("booking") if r["_id"] == wrote["cancelled"])
    assert cancelled["Status"] == "Cancelled"
    assert wrote["deleted"] not in {r["_id"] for r in server.records("comment")}
    fresh = BubbleClient(server.url, API_KEY)  # what the next export from Bubble reads
    exported = {r["_id"]: r for r in fresh.export("user").records}
    assert exported[user_id]["phase2_id"] == str(wrote["user"]) and exported[wrote["edited"]]["First Name"] == "Renamed"
    assert booking_id in {r["_id"] for r in fresh.export("booking").records}
    summary = latest(graph, "fallback_summary").read_text()
    assert summary.startswith("Fallback") and summary.rstrip().endswith(
        "Bubble holds every change the Phase 2 app made since cutover"
    )

    again = run(fallback, graph)  # nothing left to write: nothing made twice
    assert again.success
    assert len(with_phase2_id(server, "user", wrote["user"])) == 1
    assert len(server.records("user")) == users_before + 1


def test_a_create_whose_answer_was_lost_is_found_again_not_made_twice(cut_over, database_url: str) -> None:
    server, graph = cut_over
    wrote = app_writes(database_url)
    server.add_fault("truncate", bubble_type="user")  # Bubble makes the user; its answer is cut in half

    first = run(fallback, graph)
    assert not first.success
    assert len(with_phase2_id(server, "user", wrote["user"])) == 1  # made, though the run could not know

    assert run(fallback, graph).success
    (user,) = with_phase2_id(server, "user", wrote["user"])
    assert bubble_id_of(database_url, "users", wrote["user"]) == user["_id"]
    assert json.loads(latest(graph, "fallback_report").read_text())["adopted_after_crash"] == 1


def test_a_record_changed_in_bubble_after_cutover_is_a_conflict_not_overwritten(cut_over, database_url: str) -> None:
    server, graph = cut_over
    wrote = app_writes(database_url)
    edited = next(r for r in server.records("user") if r["_id"] == wrote["edited"])
    server.put("user", {**edited, "First Name": "Changed in Bubble", "Modified Date": "2030-01-01T00:00:00.000Z"})

    rehearsal = run(fallback_rehearsal, graph)
    assert not rehearsal.success  # the rehearsal foresees the conflict
    assert check_outcome(rehearsal) == (True, "SKIPPED")  # but it read nothing back: its check did not judge
    result = run(fallback, graph)
    assert not result.success  # not every change is in Bubble: the way back is not clear
    assert next(r for r in server.records("user") if r["_id"] == wrote["edited"])["First Name"] == "Changed in Bubble"
    report = json.loads(latest(graph, "fallback_report").read_text())
    (conflict,) = report["conflicts"]
    assert conflict["bubble_id"] == wrote["edited"] and conflict["bubble"]["First Name"] == "Changed in Bubble"
    assert conflict["phase2"]["First Name"] == "Renamed"
    assert report["written"]["users"]["insert"] == 1  # the rest was written


def test_a_write_bubble_refuses_is_a_dead_letter_and_the_fallback_is_not_complete(
    database_url: str, tmp_path: Path, serve: Callable, graph_for: Callable
) -> None:
    data = sample_data()
    with serve(data) as probe:
        meta = probe.meta()  # the app's fields as /meta lists them: the team never added phase2_id
    with serve(data, meta=meta) as server:
        graph = graph_for(database_url, tmp_path, server)
        assert graph.materialize().success
        assert graph.materialize(run_config=CUTOVER_CONFIG).success
        wrote = app_writes(database_url)

        result = run(fallback, graph)
        assert not result.success and check_outcome(result) == (False, "FAIL")
        report = json.loads(latest(graph, "fallback_report").read_text())
        refused = {(d["entity"], d["row_id"]) for d in report["dead_letters"]}
        assert ("users", wrote["user"]) in refused
        assert any("phase2_id" in d["reason"] for d in report["dead_letters"])
        assert report["read_back"]["missing"]  # the gate read Bubble back and found the sign-up absent
        assert not with_phase2_id(server, "user", wrote["user"])
