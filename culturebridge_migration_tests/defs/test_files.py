"""Bubble's files through the graph: copied once and byte-identical, rows relinked, 404s reported, undoable."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from culturebridge_migration.defs.files import FILES_GROUP, files_key
from culturebridge_migration.defs.jobs import rollback_migration
from culturebridge_migration.defs.run_tags import DRY_RUN_TAG
from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.fake_bubble.files import file_key
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.sources.sample_data import generate_sample
from culturebridge_migration.validation.file_checks import FILES_COPIED, FILES_MISSING
from culturebridge_migration_tests.conftest import FILES_PUBLIC_URL, Graph

pytestmark = pytest.mark.integration
WITHOUT_FILES = dg.AssetSelection.all() - dg.AssetSelection.groups(FILES_GROUP)
ONLY_FILES = dg.AssetSelection.groups(FILES_GROUP)


@pytest.fixture
def served(serve: Callable) -> Iterator[FakeBubble]:
    """A small sample on the local server, with a generated file for every link; one photo deleted at Bubble."""
    sample = generate_sample(80, bookings=40, payments=10, posts=10, comments=10, resources=40)
    data = {ENTITIES[name].bubble_type: records for name, records in sample.records.items()}
    with serve(data) as server:
        yield server


@pytest.fixture
def graph(database_url: str, tmp_path: Path, served: FakeBubble, graph_for: Callable) -> Graph:
    return graph_for(database_url, tmp_path, served)


def downloads(server: FakeBubble) -> list[str]:
    """The keys of the files the server sent a body for."""
    return [r.file for r in server.file_requests() if r.method == "GET" and r.status == 200 and r.file]


def linked(database_url: str, table: str, column: str) -> dict[str, str]:
    with psycopg.connect(database_url) as conn:
        query = f"SELECT bubble_id, {column} FROM {table} WHERE {column} IS NOT NULL"
        return dict(conn.execute(query).fetchall())


def bookkeeping(database_url: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT entity, bubble_id, original_url, storage_key, public_url, sha256, status, reason"
            " FROM migration.files ORDER BY entity, bubble_id"
        ).fetchall()


def check(result: dg.ExecuteInJobResult, asset: str, name: str) -> dg.AssetCheckEvaluation:
    (evaluation,) = [
        e for e in result.get_asset_check_evaluations() if e.asset_key == files_key(asset) and e.check_name == name
    ]
    return evaluation


def a_photo(server: FakeBubble) -> tuple[str, str]:
    """A user's Bubble id and photo URL."""
    user = next(u for u in server.records("user") if u.get("Profile Photo"))
    return user["_id"], user["Profile Photo"]


def test_every_linked_file_is_copied_once_byte_identical_and_the_rows_link_the_copies(
    graph: Graph, served: FakeBubble
) -> None:
    store = served.files  # the server's file store (not a dict)
    served_bytes = {key: store.get(key).content for key in store.keys()}  # noqa: SIM118
    assert graph.materialize().success
    sent = downloads(served)
    assert sorted(sent) == sorted(set(sent)), "each file is downloaded once"
    rows = bookkeeping(graph.database_url)
    assert rows and {status for *_, status, _ in rows} == {"copied"}
    for _, _, original, key, public, digest, _, _ in rows:
        stored = (graph.folder / "files" / key).read_bytes()
        assert stored == served_bytes[file_key(original)]
        assert digest == hashlib.sha256(stored).hexdigest()
        assert public == f"{FILES_PUBLIC_URL}/{key}"
    links = {**linked(graph.database_url, "users", "profile_photo_url")}
    links |= linked(graph.database_url, "resources", "file_url")
    copies = {(bubble_id, public) for _, bubble_id, _, _, public, *_ in rows}
    assert {(i, url) for i, url in links.items() if url.startswith("https://files.")} == copies
    assert set(sent) == {file_key(original) for _, _, original, *_ in rows}


def test_a_file_bubble_no_longer_has_is_reported_and_the_run_still_succeeds(graph: Graph, served: FakeBubble) -> None:
    bubble_id, photo = a_photo(served)
    served.delete_file(photo)
    result = graph.materialize()
    assert result.success
    missing, copied = check(result, "users", FILES_MISSING), check(result, "users", FILES_COPIED)
    assert not missing.passed and missing.severity == dg.AssetCheckSeverity.WARN
    assert missing.metadata["sample_bubble_ids"].value == [bubble_id]
    assert copied.passed
    assert linked(graph.database_url, "users", "profile_photo_url")[bubble_id] == f"https:{photo}"
    (row,) = [r for r in bookkeeping(graph.database_url) if r[1] == bubble_id]
    assert row[6] == "missing" and "404" in row[7]
    (report,) = (graph.folder / "reports").glob("report_*.json")
    users = next(e for e in json.loads(report.read_text())["files"]["by_entity"] if e["entity"] == "users")
    assert (users["missing"], users["records_affected"]) == (1, [bubble_id])


def test_a_file_bubble_keeps_failing_fails_files_copied(graph: Graph, served: FakeBubble) -> None:
    bubble_id, photo = a_photo(served)
    served.add_fault("500", times=100, file=photo, status=503)
    result = graph.materialize()
    failed = check(result, "users", FILES_COPIED)
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.metadata["sample_bubble_ids"].value == [bubble_id]
    assert linked(graph.database_url, "users", "profile_photo_url")[bubble_id] == f"https:{photo}"


def test_a_second_run_downloads_nothing_and_the_rows_keep_linking_the_copies(
    graph: Graph, served: FakeBubble, checksums: Callable
) -> None:
    assert graph.materialize().success
    first, after_first = len(downloads(served)), checksums(graph.database_url)
    again = graph.materialize()
    assert again.success
    assert len(downloads(served)) == first
    assert checksums(graph.database_url) == after_first
    relinked = again.asset_materializations_for_node("files_users")[0].metadata["rows_relinked"].value
    assert relinked == 0


def test_rolling_back_the_files_run_puts_bubbles_urls_back_exactly(
    graph: Graph, served: FakeBubble, checksums: Callable
) -> None:
    assert graph.materialize(selection=WITHOUT_FILES).success
    before = checksums(graph.database_url)
    assert graph.materialize(selection=ONLY_FILES).success
    assert checksums(graph.database_url) != before
    rollback = {"postgres": graph.resources["postgres"], "settings": graph.resources["settings"]}
    assert rollback_migration.execute_in_process(resources=rollback, instance=graph.instance).success
    assert checksums(graph.database_url) == before
    assert bookkeeping(graph.database_url), "the copies and their bookkeeping stay for the next run"


def test_a_rehearsal_counts_the_files_to_copy_and_downloads_nothing(
    graph: Graph, served: FakeBubble, checksums: Callable
) -> None:
    assert graph.materialize(selection=WITHOUT_FILES).success
    before = checksums(graph.database_url)
    rehearsal = graph.materialize(selection=ONLY_FILES, tags={DRY_RUN_TAG: "true"})
    assert rehearsal.success
    assert downloads(served) == []
    assert checksums(graph.database_url) == before
    photos = {url for url in linked(graph.database_url, "users", "profile_photo_url").values()}
    to_copy = rehearsal.asset_materializations_for_node("files_users")[0].metadata["to_copy"].value
    assert to_copy == len(photos) > 0


def test_a_file_two_records_link_is_downloaded_once_and_counted_once_in_the_report(
    graph: Graph, served: FakeBubble
) -> None:
    resource = next(r for r in served.records("resource") if r.get("File"))
    served.put("resource", {**resource, "_id": "1700000000000x000000000000000042"})
    assert graph.materialize().success
    assert downloads(served).count(file_key(resource["File"])) == 1
    resource_keys = {key for entity, _, _, key, *_ in bookkeeping(graph.database_url) if entity == "resources"}
    with psycopg.connect(graph.database_url) as conn:
        links = conn.execute("SELECT count(*) FROM migration.files WHERE entity = 'resources'").fetchone()[0]
        distinct = conn.execute(
            "SELECT count(DISTINCT original_url) FROM migration.files WHERE entity = 'resources'"
        ).fetchone()[0]
    assert links == distinct + 1  # the twin's link is a row of its own
    (report,) = (graph.folder / "reports").glob("report_*.json")
    resources = next(e for e in json.loads(report.read_text())["files"]["by_entity"] if e["entity"] == "resources")
    assert resources["files"] == resources["copied_this_run"] == distinct
    assert (
        resources["bytes"]
        == resources["bytes_this_run"]
        == sum((graph.folder / "files" / key).stat().st_size for key in resource_keys)
    )
