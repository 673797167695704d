"""Between the first migration and cutover: incremental syncs follow Bubble's edits, additions and deletions."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from culturebridge_migration.defs.jobs import rollback_migration
from culturebridge_migration.defs.resources import MigrationSettings
from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.loading.database import connect
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.loading.rollback import rollback_run
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.mapping.values import parse_datetime
from culturebridge_migration.sources.sample_data import generate_sample

pytestmark = pytest.mark.integration
INCREMENTAL = {"ops": {"bubble_export": {"config": {"incremental": True}}}}


@pytest.fixture
def migrated(database_url: str, tmp_path: Path, serve: Callable, graph_for: Callable):
    """A small sample, migrated once; yields its Bubble server and graph."""
    sample = generate_sample(60)
    data = {ENTITIES[name].bubble_type: records for name, records in sample.records.items()}
    with serve(data) as server:
        graph = graph_for(database_url, tmp_path, server)
        assert graph.materialize().success
        yield server, graph


def sync(graph) -> dg.ExecuteInJobResult:
    return graph.materialize(run_config=INCREMENTAL)


def changed_since(server: FakeBubble, bubble_type: str, export_manifest: dict) -> int:
    since = parse_datetime(export_manifest["modified_after"])
    return sum(parse_datetime(r["Modified Date"]) > since for r in server.records(bubble_type))


def manifest(tmp_path: Path, entity: str) -> dict:
    return json.loads((tmp_path / "exports" / f"{entity}.manifest.json").read_text())


def test_sync_without_changes_writes_nothing(migrated, database_url: str, tmp_path: Path, checksums: Callable) -> None:
    server, graph = migrated
    before = checksums(database_url)
    result = sync(graph)
    assert result.success
    assert checksums(database_url) == before
    # Bubble was asked only for what changed after the watermark (minus the clock-skew overlap).
    bookings = manifest(tmp_path, "bookings")
    assert bookings["exported"] == changed_since(server, "booking", bookings) < len(server.records("booking")) // 10
    with psycopg.connect(database_url) as conn:
        run_id = result.run_id
        written = conn.execute("SELECT count(*) FROM migration.row_changes WHERE run_id = %s", (run_id,)).fetchone()[0]
    assert written == 0


def test_sync_brings_over_exactly_the_edits_and_additions(
    migrated, database_url: str, tmp_path: Path, later_date: str
) -> None:
    server, graph = migrated
    user = next(u for u in server.records("user") if u.get("Role") == "Coach" and "@" in str(u))
    server.put("user", {**user, "First Name": "Edited", "Modified Date": later_date})
    booking = server.records("booking")[0]
    new_booking = {
        **booking,
        "_id": "1799999999999x000000000000000001",
        "Created Date": later_date,
        "Modified Date": later_date,
    }
    server.put("booking", new_booking)
    result = sync(graph)
    assert result.success
    for entity, bubble_type in (("users", "user"), ("bookings", "booking")):
        exported = manifest(tmp_path, entity)
        assert exported["exported"] == changed_since(server, bubble_type, exported) >= 1
    with psycopg.connect(database_url) as conn:
        assert (
            conn.execute("SELECT first_name FROM users WHERE bubble_id = %s", (user["_id"],)).fetchone()[0] == "Edited"
        )
        assert (
            conn.execute("SELECT count(*) FROM bookings WHERE bubble_id = %s", (new_booking["_id"],)).fetchone()[0] == 1
        )
        changes = conn.execute(
            "SELECT table_name, action FROM migration.row_changes WHERE run_id = %s ORDER BY 1", (result.run_id,)
        ).fetchall()
        watermark = conn.execute("SELECT modified_until FROM migration.watermarks WHERE entity = 'users'").fetchone()[0]
    assert changes == [("bookings", "insert"), ("users", "update")]
    assert watermark == datetime.fromisoformat(later_date)  # the newest Modified Date it loaded


def test_full_export_reports_records_deleted_in_bubble(migrated, database_url: str) -> None:
    server, graph = migrated
    gone = server.records("post")[0]["_id"]  # a post that was loaded
    comments_on_it = [c["_id"] for c in server.records("comment") if c.get("Post") == gone]
    for comment in comments_on_it:
        server.delete("comment", comment)
    server.delete("post", gone)
    result = graph.materialize()
    deleted = {
        e.asset_key.to_user_string(): e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "deleted_in_bubble"
    }
    assert not deleted["phase2/community_posts"].passed
    assert deleted["phase2/community_posts"].metadata["sample_bubble_ids"].value == [gone]
    assert deleted["phase2/community_posts"].severity == dg.AssetCheckSeverity.WARN
    assert deleted["phase2/users"].passed
    with psycopg.connect(database_url) as conn:  # report only: the row stays until a person decides
        assert conn.execute("SELECT count(*) FROM community_posts WHERE bubble_id = %s", (gone,)).fetchone()[0] == 1


def loaded_ids(database_url: str, table: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        return {bubble_id for (bubble_id,) in conn.execute(f"SELECT bubble_id FROM {table}")}


def flags(database_url: str) -> dict[str, str]:
    with psycopg.connect(database_url) as conn:
        return dict(conn.execute("SELECT bubble_id, reason FROM migration.deleted_in_bubble"))


def deleted_check(result: dg.ExecuteInJobResult, asset: str) -> dg.AssetCheckEvaluation:
    return next(
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "deleted_in_bubble" and e.asset_key.to_user_string() == asset
    )


def test_flag_mode_keeps_records_gone_from_bubble_and_lists_them_until_they_return(migrated, database_url: str) -> None:
    server, graph = migrated
    graph = graph.with_settings(deleted_records="flag")
    resource = next(r for r in server.records("resource") if r["_id"] in loaded_ids(database_url, "resources"))
    server.delete("resource", resource["_id"])
    result = graph.materialize()
    assert resource["_id"] in loaded_ids(database_url, "resources")
    assert flags(database_url) == {resource["_id"]: "deleted in Bubble"}
    check = deleted_check(result, "phase2/resources")
    assert not check.passed
    assert check.metadata["flagged"].value == 1

    server.put("resource", resource)  # restored in Bubble: the flag goes
    result = graph.materialize()
    assert flags(database_url) == {}
    assert deleted_check(result, "phase2/resources").passed


def test_delete_mode_removes_gone_rows_children_first_and_rollback_brings_them_back(
    migrated, database_url: str, checksums: Callable
) -> None:
    server, graph = migrated
    graph = graph.with_settings(deleted_records="delete")
    before = checksums(database_url)
    resource = next(r for r in server.records("resource") if r["_id"] in loaded_ids(database_url, "resources"))
    loaded_comments = loaded_ids(database_url, "community_comments")
    post = next(
        p["_id"]
        for p in server.records("post")
        if any(c.get("Post") == p["_id"] and c["_id"] in loaded_comments for c in server.records("comment"))
    )
    comments = [c["_id"] for c in server.records("comment") if c.get("Post") == post]
    for comment in comments:
        server.delete("comment", comment)
    server.delete("post", post)
    server.delete("resource", resource["_id"])

    first = graph.materialize()
    assert resource["_id"] not in loaded_ids(database_url, "resources")
    assert not set(comments) & loaded_ids(database_url, "community_comments")
    # The post's comments still pointed at it when posts loaded: kept and flagged, not broken.
    assert post in loaded_ids(database_url, "community_posts")
    assert flags(database_url) == {post: "deleted in Bubble, kept: still referenced by community_comments.post_id"}
    assert deleted_check(first, "phase2/community_posts").metadata["sample_bubble_ids"].value == [post]
    assert deleted_check(first, "phase2/resources").passed
    proved = [e for e in first.get_asset_check_evaluations() if e.check_name == "deletions_proved"]
    assert proved and all(e.passed and e.metadata["outcome"].value == "PASS" for e in proved)  # each asked by id

    second = graph.materialize()
    assert post not in loaded_ids(database_url, "community_posts")
    assert flags(database_url) == {}
    with connect(database_url) as conn:
        db = Phase2Database(conn)
        deleted = dict(db.execute("SELECT entity, deleted FROM migration.entity_runs WHERE deleted > 0"))
        assert rollback_run(db, second.run_id).counts() == {"restored": 0, "recreated": 1, "deleted": 0}
        assert rollback_run(db, first.run_id).recreated == 1 + len(loaded_comments & set(comments))
    assert deleted == {"resources": 1, "comments": len(loaded_comments & set(comments)), "posts": 1}
    assert checksums(database_url) == before


def test_a_record_a_full_export_missed_but_bubble_still_has_is_never_deleted(migrated, database_url: str) -> None:
    server, graph = migrated
    graph = graph.with_settings(deleted_records="delete")
    resource = next(r for r in server.records("resource") if r["_id"] in loaded_ids(database_url, "resources"))
    server.delete("resource", resource["_id"])
    assert graph.materialize(selection="bubble/resources").success  # a whole export, without it
    server.put("resource", resource)  # yet Bubble has it (a page shifted while the export read, say)

    result = graph.materialize(selection="phase2/resources")
    assert resource["_id"] in loaded_ids(database_url, "resources")
    assert flags(database_url) == {}
    proved = next(e for e in result.get_asset_check_evaluations() if e.check_name == "deletions_proved")
    assert not proved.passed
    assert proved.severity == dg.AssetCheckSeverity.ERROR
    assert proved.metadata["sample_bubble_ids"].value == [resource["_id"]]


def test_unknown_deleted_records_setting_names_the_choices() -> None:
    with pytest.raises(dg.Failure, match="MIGRATION_DELETED_RECORDS to one of: report, flag, delete"):
        MigrationSettings(deleted_records="purge").deleted_records_mode()


def test_an_export_file_its_manifest_does_not_describe_is_refused_and_deletes_nothing(
    migrated, database_url: str, tmp_path: Path, checksums: Callable, later_date: str
) -> None:
    server, graph = migrated
    graph = graph.with_settings(deleted_records="delete")
    full_manifest = (tmp_path / "exports" / "users.manifest.json").read_text()
    user = server.records("user")[0]
    server.put("user", {**user, "First Name": "Changed", "Modified Date": later_date})
    assert graph.materialize(selection="bubble/users", run_config=INCREMENTAL).success  # a one-record file
    # The next manifest write failed: the old full manifest now sits beside the incremental file.
    (tmp_path / "exports" / "users.manifest.json").write_text(full_manifest)
    before = checksums(database_url)
    result = graph.materialize(selection="phase2/users")
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "was not written by the export its manifest describes" in str(failure.event_specific_data.error)
    assert checksums(database_url) == before
    assert flags(database_url) == {}


def test_a_sync_rolled_back_is_brought_back_whole_by_the_next_sync(
    migrated, database_url: str, checksums, later_date: str
) -> None:
    server, graph = migrated
    # Users without a legacy password: bcrypt salts each hash anew, so a re-synced one would differ.
    users = [u for u in server.records("user") if "Legacy Password" not in u][:30]
    for i, user in enumerate(users):
        server.put("user", {**user, "First Name": f"Synced {i}", "Modified Date": later_date})
    first = sync(graph)
    assert first.success
    synced = checksums(database_url)
    with connect(database_url) as conn:
        undone = rollback_run(Phase2Database(conn), first.run_id)
    assert undone.restored == 30
    assert checksums(database_url) != synced
    again = sync(graph)
    assert again.success
    assert checksums(database_url) == synced  # the watermark went back with the rollback: Bubble was asked again
    with psycopg.connect(database_url) as conn:
        names = {n for (n,) in conn.execute("SELECT first_name FROM users WHERE first_name LIKE 'Synced %'")}
    assert len(names) == 30


def writer_holder(database_url: str) -> str | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT run_id FROM migration.writer WHERE steps_left > 0").fetchone()
    return row[0] if row else None


def test_a_rollback_started_while_a_sync_runs_waits_for_it_then_undoes_it_whole(
    migrated, database_url: str, checksums, later_date: str
) -> None:
    server, graph = migrated
    before = checksums(database_url)
    for i, comment in enumerate(server.records("comment")[:40]):
        server.put("comment", {**comment, "Content": f"Edited {i}", "Modified Date": later_date})
    for user in [u for u in server.records("user") if "Legacy Password" not in u][:20]:
        server.put("user", {**user, "Last Name": "Synced", "Modified Date": later_date})
    runs: dict[str, dg.ExecuteInJobResult] = {}
    sync_thread = threading.Thread(target=lambda: runs.setdefault("sync", sync(graph)))
    sync_thread.start()
    deadline = time.monotonic() + 60
    while writer_holder(database_url) is None and time.monotonic() < deadline:  # the sync is under way
        time.sleep(0.05)
    holder = writer_holder(database_url)
    assert holder is not None
    rollback = {"postgres": graph.resources["postgres"], "settings": graph.resources["settings"]}
    undone = rollback_migration.execute_in_process(resources=rollback, instance=graph.instance, raise_on_error=False)
    sync_thread.join(120)
    assert runs["sync"].success and runs["sync"].run_id == holder
    assert undone.success
    # The rollback ran after the sync's last step: it undid all of it (users and comments), not half.
    assert checksums(database_url) == before
    with psycopg.connect(database_url) as conn:
        rolled_back = conn.execute("SELECT rolled_back_at FROM migration.runs WHERE run_id = %s", (holder,)).fetchone()
        changed = dict(
            conn.execute(
                "SELECT table_name, count(*) FROM migration.row_changes WHERE run_id = %s GROUP BY 1", (holder,)
            ).fetchall()
        )
    assert rolled_back[0] is not None
    assert changed == {"users": 20, "community_comments": 40}
