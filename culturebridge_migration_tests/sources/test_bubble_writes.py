"""Writes through the Data API client against the local Bubble server: ids back, per-line results, what is
retried and what is not (a create is not idempotent), refusals with Bubble's reason."""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Iterator

import pytest

from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.sources.bubble_api import BubbleClient, BubbleError, BubbleThingMissing
from culturebridge_migration.sources.bubble_writes import (
    BubbleWriteError,
    BubbleWriter,
    BubbleWriteRefused,
    WriteOutcomeUnknown,
)

KEY = "test-key"
POST = {"_id": "1700000000000x1", "Created Date": "2025-01-01T00:00:00.000Z", "Title": "first"}


@pytest.fixture
def fake() -> Iterator[FakeBubble]:
    with FakeBubble({"post": [POST]}, api_key=KEY) as server:
        yield server


def writer(server: FakeBubble, *, bulk_size: int = 1_000, **options: object) -> BubbleWriter:
    options.setdefault("backoff", 0)
    options.setdefault("timeout", 5)
    return BubbleWriter(BubbleClient(server.url, KEY, **options), bulk_size=bulk_size)


def writes(server: FakeBubble) -> list[tuple[str, int]]:
    return [(r.method, r.status) for r in server.requests]


def titles(server: FakeBubble) -> list[str]:
    return sorted(r.get("Title", "") for r in server.records("post"))


# -- create -----------------------------------------------------------------------------------------
def test_create_returns_the_id_bubble_gave_the_new_thing(fake: FakeBubble) -> None:
    new_id = writer(fake).create("post", {"Title": "new", "phase2_id": "17"})
    created = next(r for r in fake.records("post") if r["_id"] == new_id)
    assert (created["Title"], created["phase2_id"]) == ("new", "17")


def test_a_create_bubble_refuses_raises_with_bubbles_reason_and_creates_nothing(fake: FakeBubble) -> None:
    with pytest.raises(BubbleWriteRefused) as refused:
        writer(fake).create("post", {"Title": "new", "Created Date": "2030-01-01T00:00:00.000Z"})
    assert "Created Date" in refused.value.reason and titles(fake) == ["first"]


def test_a_create_rate_limited_before_bubble_processed_it_is_sent_again_and_made_once(fake: FakeBubble) -> None:
    fake.add_fault("429", times=2)
    writer(fake).create("post", {"Title": "new"})
    assert writes(fake) == [("POST", 429), ("POST", 429), ("POST", 201)]
    assert titles(fake) == ["first", "new"]


@pytest.mark.parametrize("fault", ["500", "drop", "non_json"])
def test_a_create_whose_outcome_bubble_did_not_tell_is_never_sent_again(fake: FakeBubble, fault: str) -> None:
    fake.add_fault(fault, times=3)
    with pytest.raises(WriteOutcomeUnknown, match="phase2_id"):
        writer(fake).create("post", {"Title": "new"})
    assert len(fake.requests) == 1


def test_a_create_that_timed_out_may_still_be_made_by_bubble_which_is_why_it_is_not_retried(fake: FakeBubble) -> None:
    fake.add_fault("slow", seconds=0.6)
    with pytest.raises(WriteOutcomeUnknown):
        writer(fake, timeout=0.2).create("post", {"Title": "late"})
    deadline = time.monotonic() + 5
    while "late" not in titles(fake) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert titles(fake) == ["first", "late"] and len(fake.requests) == 1


# -- bulk create ------------------------------------------------------------------------------------
def test_bulk_create_sends_1000_records_a_request_and_answers_each_in_order(fake: FakeBubble) -> None:
    records = [{"Title": f"t{i:04d}"} for i in range(2_500)]
    records[1_200] = {"Title": "bad", "_id": "mine"}  # Bubble refuses this one line, not the request
    results = writer(fake).bulk_create("post", records)
    assert [r.method for r in fake.requests] == ["POST"] * 3
    assert len(results) == 2_500 and not results[1_200].ok and "_id" in results[1_200].error
    ok = [r for r in results if r.ok]
    assert len(ok) == 2_499 and len({r.id for r in ok}) == 2_499
    by_id = {r["_id"]: r["Title"] for r in fake.records("post")}
    assert [by_id[r.id] for r in results[:3]] == ["t0000", "t0001", "t0002"]


def test_a_bulk_create_stopped_midway_says_which_lines_bubble_answered(fake: FakeBubble) -> None:
    fake.rate_limit_per_minute = 2  # the third request, and every later one, is over the plan's limit
    with pytest.raises(BubbleWriteError) as stopped:
        writer(fake, bulk_size=2, max_retries=0).bulk_create("post", [{"Title": f"t{i}"} for i in range(5)])
    assert not isinstance(stopped.value, WriteOutcomeUnknown)  # a 429 is refused before anything is made
    assert [r.ok for r in stopped.value.results] == [True] * 4 and len(titles(fake)) == 5


def test_a_bulk_create_whose_answer_is_cut_is_of_unknown_outcome(fake: FakeBubble) -> None:
    fake.add_fault("truncate")
    with pytest.raises(WriteOutcomeUnknown) as unknown:
        writer(fake).bulk_create("post", [{"Title": "a"}, {"Title": "b"}])
    assert unknown.value.results == [] and len(fake.requests) == 1


def test_bulk_size_is_capped_at_bubbles_1000(fake: FakeBubble) -> None:
    assert writer(fake, bulk_size=5_000).bulk_size == 1_000


# -- patch and delete -------------------------------------------------------------------------------
def test_patch_changes_the_fields_sent_and_is_retried_on_a_server_error(fake: FakeBubble) -> None:
    fake.add_fault("500")
    writer(fake).patch("post", POST["_id"], {"Body": "edited"})
    (thing,) = fake.records("post")
    assert (thing["Title"], thing["Body"]) == ("first", "edited")
    assert writes(fake) == [("PATCH", 500), ("PATCH", 204)]


def test_patch_of_a_thing_bubble_lacks_or_refuses_raises(fake: FakeBubble) -> None:
    with pytest.raises(BubbleThingMissing):
        writer(fake).patch("post", "1700000000000x9", {"Body": "x"})
    with pytest.raises(BubbleWriteRefused):
        writer(fake).patch("post", POST["_id"], {"_id": "1700000000000x9"})


def test_delete_is_true_when_it_deleted_and_false_when_the_thing_was_already_gone(fake: FakeBubble) -> None:
    assert writer(fake).delete("post", POST["_id"]) is True
    assert writer(fake).delete("post", POST["_id"]) is False
    assert fake.records("post") == []


def test_a_bubble_that_cannot_be_reached_stops_a_create_as_sent_nowhere_not_of_unknown_outcome() -> None:
    with socket.socket() as closed:  # a port nobody listens on once the socket is closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    client = BubbleClient(f"http://127.0.0.1:{port}/api/1.1", KEY, backoff=0, max_retries=1, timeout=2)
    with pytest.raises(BubbleError, match="Cannot reach Bubble") as stopped:
        BubbleWriter(client).create("post", {"Title": "new"})
    assert not isinstance(stopped.value, WriteOutcomeUnknown)


def test_a_wrong_api_key_stops_a_write_with_the_clients_message(fake: FakeBubble) -> None:
    with pytest.raises(BubbleError, match="BUBBLE_API_KEY"):
        BubbleWriter(BubbleClient(fake.url, "wrong", backoff=0)).delete("post", POST["_id"])


def test_writes_keep_within_the_clients_request_budget(fake: FakeBubble) -> None:
    client_writer = writer(fake, requests_per_minute=600)  # one request every 0.1 s
    for i in range(3):
        client_writer.create("post", {"Title": f"t{i}"})
    arrivals = [r.at for r in fake.requests]
    assert all(later - earlier >= 0.09 for earlier, later in itertools.pairwise(arrivals))
