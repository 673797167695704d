"""Several types exported at once through one client, without Dagster: files, passwords, bounds, failures, stops."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import bcrypt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.mapping.entities import ENTITIES, UNREADABLE_KEY
from culturebridge_migration.sources.bubble_api import BubbleClient
from culturebridge_migration.sources.export_run import (
    ExportFailure,
    ExportPlan,
    ExportProgress,
    TypeExport,
    export_types,
)
from culturebridge_migration.sources.export_store import read_export
from culturebridge_migration.sources.sample_data import SampleData
from culturebridge_migration.sources.source import ApiSource

KEY = "test-api-key"


def source(server: FakeBubble, **options: object) -> ApiSource:
    options.setdefault("backoff", 0)
    return ApiSource(BubbleClient(server.url, KEY, **options), "the local Bubble server")


def run_all(src: ApiSource, plans: list[ExportPlan], folder: Path) -> list:
    return list(export_types(src, plans, folder, "run-1", hash_workers=2, poll_seconds=0.05))


def test_every_type_lands_on_disk_with_its_manifest_and_no_plain_password(
    bubble_server: FakeBubble, sample: SampleData, tmp_path: Path
) -> None:
    events = run_all(source(bubble_server), [ExportPlan(e) for e in ENTITIES.values()], tmp_path)
    exports = {e.entity.name: e for e in events if isinstance(e, TypeExport)}
    assert set(exports) == set(ENTITIES)
    for name in exports:
        manifest = json.loads((tmp_path / f"{name}.manifest.json").read_text())
        assert manifest["exported"] == manifest["announced_total"] == len(sample.records[name])
        assert not (tmp_path / f"{name}.partial.jsonl").exists()  # the checkpoint goes once the export is whole
    users_file = (tmp_path / "users.jsonl").read_text()
    plain = [p for p in sample.passwords.values() if not p.startswith("strong") and not p.startswith("weak")]
    assert plain and not any(p in users_file for p in plain)
    assert exports["users"].manifest.passwords_hashed >= 3


def test_a_user_bubble_did_not_modify_keeps_the_hash_phase2_holds(
    bubble_server: FakeBubble, sample: SampleData, tmp_path: Path
) -> None:
    user = next(u for u in sample.records["users"] if u.get("Legacy Password", "").startswith("legacy-"))
    held = bcrypt.hashpw(b"held", bcrypt.gensalt(12)).decode()
    plan = ExportPlan(ENTITIES["users"], known_hashes={(user["_id"], user["Modified Date"]): held})
    (export,) = [e for e in run_all(source(bubble_server), [plan], tmp_path) if isinstance(e, TypeExport)]
    exported = {r["_id"]: r for r in read_export(tmp_path, "users")[0]}
    assert exported[user["_id"]]["Legacy Password"] == held
    plain = sum(1 for u in sample.records["users"] if u.get("Legacy Password", "").startswith("legacy-"))
    assert export.manifest.passwords_hashed == plain - 1


def test_types_export_at_once_within_one_bound_on_requests_in_flight(
    sample: SampleData, serve: Callable[..., FakeBubble], tmp_path: Path
) -> None:
    data = {ENTITIES[name].bubble_type: records for name, records in sample.records.items()}
    with serve(data, latency=0.05) as fake:
        events = run_all(source(fake, page_size=20, workers=3), [ExportPlan(e) for e in ENTITIES.values()], tmp_path)
        requests = sorted((r for r in fake.requests if r.bubble_type), key=lambda r: r.at)
    assert sum(isinstance(e, TypeExport) for e in events) == len(ENTITIES)
    # Bubble limits requests per app: one bound for all the types, never one per type.
    assert max(r.in_flight for r in requests) == 3
    overlapping = {
        frozenset((a.bubble_type, b.bubble_type)) for a, b in itertools.pairwise(requests) if b.at - a.at < 0.05
    }
    assert any(len(pair) == 2 for pair in overlapping), "pages of different types were never in flight together"
    assert any(isinstance(e, ExportProgress) for e in events)


@pytest.mark.parametrize("order", [("bookings", "posts"), ("posts", "bookings")])
def test_when_requests_are_scarce_the_types_finish_in_the_plans_order(
    order: tuple[str, str], sample: SampleData, serve: Callable[..., FakeBubble], tmp_path: Path
) -> None:
    """In the load order, a type's table can load while the types after it still page."""
    data = {ENTITIES[name].bubble_type: sample.records[name] for name in order}
    with serve(data, latency=0.01) as fake:
        plans = [ExportPlan(ENTITIES[name]) for name in order]
        events = run_all(source(fake, page_size=5, workers=2), plans, tmp_path)
        requests = sorted((r for r in fake.requests if r.bubble_type), key=lambda r: r.at)
    assert [e.entity.name for e in events if isinstance(e, TypeExport)] == list(order)
    first, second = (ENTITIES[name].bubble_type for name in order)
    last_of_first = max(i for i, r in enumerate(requests) if r.bubble_type == first)
    # The second type pages only in the gaps the first leaves (its first page, the wait for the total).
    early = sum(r.bubble_type == second for r in requests[:last_of_first])
    assert early <= 0.1 * sum(r.bubble_type == second for r in requests), early


def test_a_failing_type_is_reported_while_the_others_export(bubble_server: FakeBubble, tmp_path: Path) -> None:
    bubble_server.add_fault("unauthorized", times=50, bubble_type="payment")
    plans = [ExportPlan(ENTITIES["payments"]), ExportPlan(ENTITIES["posts"])]
    events = run_all(source(bubble_server, max_retries=0), plans, tmp_path)
    (failure,) = [e for e in events if isinstance(e, ExportFailure)]
    assert failure.entity.name == "payments" and "BUBBLE_API_KEY" in str(failure.error)
    assert [e.entity.name for e in events if isinstance(e, TypeExport)] == ["posts"]
    assert not (tmp_path / "payments.jsonl").exists()  # a failed type leaves no export to load from


def test_a_caller_that_stops_reading_stops_every_type_at_its_next_page(
    sample: SampleData, serve: Callable[..., FakeBubble], tmp_path: Path
) -> None:
    data = {ENTITIES[name].bubble_type: records for name, records in sample.records.items()}
    with serve(data, latency=0.1) as fake:
        events = export_types(source(fake, page_size=5, workers=2), [ExportPlan(ENTITIES["bookings"])], tmp_path, "r")
        next(e for e in events if isinstance(e, ExportProgress))
        events.close()  # the run was terminated
        asked = len(fake.requests)
        time.sleep(0.5)
        assert len(fake.requests) <= asked + 2  # at most the pages already in flight
    assert not (tmp_path / "bookings.jsonl").exists()
    assert (tmp_path / "bookings.partial.jsonl").exists()  # the next run resumes after the pages it has


# -- the census after an incremental export (cutover) -----------------------------------------------
def known_of(records: list[dict]) -> list[tuple]:
    from culturebridge_migration.mapping.values import parse_datetime

    return [(parse_datetime(r["Created Date"]), r["_id"]) for r in records]


def census_of(src: ApiSource, plan: ExportPlan, folder: Path, **kwargs: object) -> dict:
    from culturebridge_migration.sources.export_run import export_type

    return export_type(src, plan, folder, "run-1", hash_workers=1, **kwargs).manifest.census  # type: ignore[return-value]


def test_a_cutover_export_proves_the_deletions_since_the_last_load_reading_what_phase_2_knows_after_its_pages(
    bubble_server: FakeBubble, tmp_path: Path
) -> None:
    """The census's proof lands in the manifest. What Phase 2 knows is asked for only once the type's pages are
    in (reading 590k known records before the first page held every type back 1.4 s)."""
    from culturebridge_migration.mapping.values import parse_datetime

    posts = bubble_server.records("post")
    since = max(parse_datetime(p["Modified Date"]) for p in posts)
    bubble_server.delete("post", posts[3]["_id"])
    asked_before_reading = []

    def known() -> list[tuple]:
        asked_before_reading.append([r.cursor for r in bubble_server.requests if r.bubble_type == "post"])
        return known_of(posts)

    census = census_of(source(bubble_server), ExportPlan(ENTITIES["posts"], since, census_known=known), tmp_path)
    assert asked_before_reading == [[0]]  # the export's one page, and no census request yet
    assert census["conclusive"] and census["gone"] == [posts[3]["_id"]]


def test_a_record_changed_while_the_cutover_exported_makes_its_census_inconclusive(
    bubble_server: FakeBubble, tmp_path: Path
) -> None:
    from culturebridge_migration.mapping.values import parse_datetime

    posts = bubble_server.records("post")
    since = max(parse_datetime(p["Modified Date"]) for p in posts)
    for post in posts[4:7]:  # three edits for the export to bring, one page each
        bubble_server.put("post", {**post, "Modified Date": "2029-01-01T00:00:00.000Z"})
    bubble_server.delete("post", posts[3]["_id"])
    late = {**posts[9], "_id": "1800000000000x000000000000000077", "Modified Date": "2030-01-01T00:00:00.000Z"}

    def app_still_writing(done: int, total: int) -> None:
        if done == total:  # the export has read its last page; the app writes on
            bubble_server.put("post", late)

    plan = ExportPlan(ENTITIES["posts"], since, census_known=lambda: known_of(posts))
    census = census_of(source(bubble_server, page_size=1), plan, tmp_path, on_progress=app_still_writing)
    assert not census["conclusive"]
    assert "Bubble changed during the cutover" in census["error"]


def test_a_planted_ten_thousand_deep_record_is_exported_as_a_stand_in_and_the_whole_export_stays_complete(
    serve: Callable[..., FakeBubble], sample: SampleData, tmp_path: Path
) -> None:
    posts = [dict(p) for p in sample.records["posts"]]
    planted: dict = {}
    for _ in range(10_000):
        planted = {"a": planted}
    posts[3]["Body"] = planted  # the evening before cutover
    with serve({ENTITIES["posts"].bubble_type: posts}) as server:
        events = run_all(source(server), [ExportPlan(ENTITIES["posts"])], tmp_path)
    assert [e.entity.name for e in events if isinstance(e, TypeExport)] == ["posts"]
    records, manifest = read_export(tmp_path, "posts")
    assert manifest.complete and manifest.exported == len(records) == len(posts)
    (stand_in,) = [r for r in records if UNREADABLE_KEY in r]
    assert stand_in["_id"] == posts[3]["_id"] and stand_in[UNREADABLE_KEY]["field"] == "Body"
    assert UNREADABLE_KEY not in manifest.fields  # the export's note, not a field of the app


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])  # a server per example
@given(data=st.data())
def test_an_export_of_hostile_records_lands_on_disk_whole(
    serve: Callable[..., FakeBubble], hostile: SimpleNamespace, tmp_path_factory, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(list(ENTITIES)))
    records = data.draw(hostile.records(name))
    folder = tmp_path_factory.mktemp("export")
    with serve({ENTITIES[name].bubble_type: records}, files={}) as server:
        events = run_all(source(server, max_retries=0), [ExportPlan(ENTITIES[name])], folder)
    assert [type(e).__name__ for e in events if isinstance(e, TypeExport | ExportFailure)] == ["TypeExport"]
    exported, manifest = read_export(folder, name)
    assert len(exported) == manifest.exported == manifest.unique_ids
