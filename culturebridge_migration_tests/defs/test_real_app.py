"""A Bubble app this project's generator never made, migrated end to end: nothing of it vanishes.

Extra fields on users, coach profiles and bookings, a ninth type, a NUL in one booking's notes, a user who
signed up with Google, one with no email at all: every value is in PostgreSQL afterwards or named in the
reports, and the run's outcome says what a person must look at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def migrated(real_app: SimpleNamespace, serve: Callable, graph_for: Callable, database_url: str, tmp_path: Path):
    with serve(real_app.data, field_kinds=real_app.field_kinds) as server:
        graph = graph_for(database_url, tmp_path, server)
        yield graph, graph.materialize()


def query(url: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def test_every_value_no_column_maps_is_kept_in_postgresql(migrated) -> None:
    graph, result = migrated
    assert result.success  # only WARN checks fail: unmapped fields are kept and named, not lost
    extras = dict(query(graph.database_url, "SELECT bubble_id, bubble_extra FROM users"))
    assert extras["u1"] == {
        "Nickname": "Annie",
        "Loyalty Points": 40,
        "Badges": ["early"],
        "Home": {"address": "Unter den Linden 1, Berlin", "lat": 52.517, "lng": 13.388},
    }
    assert extras["u2"] == {"Nickname": "Bobo", "Slug": "bo", "authentication": {"Google": {"id": "g-1234"}}}
    coach = dict(query(graph.database_url, "SELECT bubble_id, bubble_extra FROM coach_profiles"))
    assert coach["kp1"] == {"Certifications": ["ICF", "EMCC"], "Intro Video": "//v"} and coach["kp2"] is None
    bookings = dict(query(graph.database_url, "SELECT bubble_id, bubble_extra FROM bookings"))
    assert bookings == {"b1": {"Room": "3B"}, "b2": {"Reminder Sent": True}, "b3": None}


def test_the_google_sign_up_is_migrated_and_the_user_without_email_is_a_reject_saying_so(migrated) -> None:
    graph, _ = migrated
    users = dict(query(graph.database_url, "SELECT bubble_id, email FROM users"))
    assert users == {"u1": "ana@example.com", "u2": "bo@gmail.com", "u4": "cy@example.com"}
    ((reason, message),) = query(
        graph.database_url, "SELECT reason, message FROM migration.rejects WHERE bubble_id = 'u3'"
    )
    assert reason == "missing_required" and "authentication.*.email" in message


def test_the_nul_is_removed_recorded_and_every_booking_loads(migrated) -> None:
    graph, _ = migrated
    assert query(graph.database_url, "SELECT count(*) FROM bookings") == [(3,)]
    assert query(graph.database_url, "SELECT notes FROM bookings WHERE bubble_id = 'b1'") == [
        ("bring the visa papers",)
    ]
    ((original, reason),) = query(
        graph.database_url, "SELECT original, reason FROM migration.value_fixes WHERE bubble_id = 'b1'"
    )
    assert original == "bring the visa\\x00 papers" and "NUL" in reason


def test_the_ninth_type_is_kept_verbatim_and_named_in_the_schema_and_the_reports(migrated) -> None:
    graph, _ = migrated
    kept = dict(
        query(graph.database_url, "SELECT bubble_id, record FROM migration.bubble_records WHERE bubble_type = 'review'")
    )
    assert kept["rv1"]["Text"] == "Great" and kept["rv2"]["Stars"] == 4
    schema = json.loads((graph.folder / "exports" / "bubble_schema.json").read_text())
    assert schema["schema"]["source"] == "meta"
    assert schema["coverage"]["review"]["entity"] is None
    assert schema["coverage"]["user"]["fields"]["Nickname"]["state"] == "unmapped (kept in bubble_extra)"
    (report_json,) = (graph.folder / "reports").glob("report_*.json")
    report = json.loads(report_json.read_text())
    assert report["bubble_types_not_migrated"] == {"review": 2}
    assert report["unmapped_fields"]["users"]["Nickname"]["records"] == 2
    assert set(report["unmapped_fields"]["bookings"]) == {"Room", "Reminder Sent"}
    assert set(report["unmapped_fields"]["coach_profiles"]) == {"Certifications", "Intro Video"}
    (summary,) = (graph.folder / "reports").glob("summary_*.txt")
    text = summary.read_text()
    assert "Nickname" in text and "review" in text and "NUL characters removed" in text
    # A count says what it counts: fields_covered counts fields, not rows.
    assert re.search(r"\[WARN\] phase2/coach_profiles / fields_covered 2 fields, e\.g\. ", text)
    (page,) = (graph.folder / "reports").glob("report_*.html")
    assert "<td>Certifications</td>" in page.read_text() and "<td>review</td>" in page.read_text()


def test_every_unmapped_field_is_named_by_its_tables_check(migrated) -> None:
    _, result = migrated
    covered = {
        e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations() if e.check_name == "fields_covered"
    }
    assert not covered["users"].passed and covered["users"].severity.value == "WARN"
    fields = covered["users"].metadata["unmapped_fields"].value
    assert fields["Nickname"] == {"records": 2, "values": ["Annie", "Bobo"]}
    assert fields["authentication.Google.id"]["records"] == 1
    assert covered["payments"].passed


def test_a_misspelled_field_map_key_fails_the_gate_naming_the_key_and_what_the_records_carry(
    real_app: SimpleNamespace, serve: Callable, graph_for: Callable, database_url: str, tmp_path: Path
) -> None:
    field_map = tmp_path / "field_map.json"
    field_map.write_text(json.dumps({"posts": {"title": "Titel"}}))
    with serve(real_app.data, field_kinds=real_app.field_kinds) as server:
        result = graph_for(database_url, tmp_path, server, field_map=str(field_map)).materialize()
    assert not result.success
    checks = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}
    present = checks[("community_posts", "mapped_fields_present")]
    assert not present.passed
    assert present.metadata["missing_fields"].value == {
        "Titel": {
            "column": "title",
            "records_carry_instead": ["Title"],
            "field_map_line": '{"posts": {"title": "Title"}}',
        }
    }
    assert not checks[("community_posts", "most_records_loaded")].passed  # every post rejected: title missing
    assert not checks[("community_comments", "most_records_loaded")].passed  # and so every comment
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "reports__cutover_readiness"


def test_a_field_map_in_bubbles_id_form_fails_the_gate_on_display_name_records_though_meta_lists_the_id(
    real_app: SimpleNamespace, serve: Callable, graph_for: Callable, database_url: str, tmp_path: Path
) -> None:
    field_map = tmp_path / "field_map.json"
    field_map.write_text(json.dumps({"users": {"first_name": "first_name_text"}}))
    with serve(real_app.data, field_kinds=real_app.field_kinds) as server:
        assert "first_name_text" in json.dumps(server.live_db.meta())  # /meta names the field by its id
        result = graph_for(database_url, tmp_path, server, field_map=str(field_map)).materialize()
    assert not result.success
    checks = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}
    present = checks[("users", "mapped_fields_present")]
    assert not present.passed
    missing = present.metadata["missing_fields"].value["first_name_text"]
    (carried,) = [key for key in missing["records_carry_instead"] if key.lower() == "first name"]
    assert missing["field_map_line"] == json.dumps({"users": {"first_name": carried}})


def test_a_hidden_meta_falls_back_to_the_records_and_says_so(
    real_app: SimpleNamespace, serve: Callable, graph_for: Callable, database_url: str, tmp_path: Path
) -> None:
    with serve(real_app.data, field_kinds=real_app.field_kinds, hide_meta=True) as server:
        graph = graph_for(database_url, tmp_path, server)
        result = graph.materialize()
    assert result.success
    schema = json.loads((tmp_path / "exports" / "bubble_schema.json").read_text())
    assert schema["schema"]["source"] == "records" and "hides /meta" in schema["schema"]["note"]
    assert "Nickname" in schema["coverage"]["user"]["fields"]
    logs = [entry.user_message for entry in graph.instance.all_logs(result.run_id)]
    assert any("/meta is not available" in message for message in logs)


def test_renamed_csv_columns_fail_the_gate_naming_the_keys_and_stay_kept_in_bubble_extra(
    sample, graph_for: Callable, database_url: str, tmp_path: Path, bubble_server
) -> None:
    from culturebridge_migration.defs.resources import BubbleResource
    from culturebridge_migration.sources.bubble_csv import write_csv_export

    files = write_csv_export(sample.records, tmp_path / "csv")
    for name, old, new in (
        ("users", "First Name", "First name"),
        ("coach_profiles", "Hourly Rate", "Hourly rate (USD)"),
    ):
        text = files[name].read_text()
        files[name].write_text(text.replace(f'"{old}"', f'"{new}"', 1))  # the header: a spreadsheet renamed it
    csv_source = BubbleResource(csv_dir=str(tmp_path / "csv"), files_base_url=bubble_server.files_url)
    result = graph_for(database_url, tmp_path, csv_source).materialize()
    assert not result.success
    checks = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}
    users = checks[("users", "mapped_fields_present")].metadata["missing_fields"].value
    assert users["First Name"]["records_carry_instead"] == ["First name"]
    coaches = checks[("coach_profiles", "mapped_fields_present")].metadata["missing_fields"].value
    assert coaches["Hourly Rate"]["records_carry_instead"] == ["Hourly rate (USD)"]
    assert "First name" in checks[("users", "fields_covered")].metadata["unmapped_fields"].value
    kept = query(
        database_url, "SELECT bubble_extra->>'First name' FROM users WHERE bubble_extra ? 'First name' LIMIT 1"
    )
    assert kept and kept[0][0]  # the values are kept, so nothing is lost while the map is fixed
