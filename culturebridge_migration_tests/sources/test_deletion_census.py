"""The deletion census against the local Bubble server: deletions found by counting windows, not by a full export."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.mapping.values import format_bubble_datetime, parse_datetime
from culturebridge_migration.sources.bubble_api import BubbleClient, BubbleError
from culturebridge_migration.sources.deletion_census import (
    CensusResult,
    KnownRecord,
    created_constraints,
    take_census,
)

KEY = "census-key"
PAGE = 100
Things = Callable[..., list[dict]]


@pytest.fixture
def things(base_time: datetime) -> Things:
    """Posts `first` to `first + n`, created `minutes_apart` from the base time on, modified 400 days later."""

    def make(n: int, *, first: int = 0, minutes_apart: float = 1.0) -> list[dict]:
        return [
            {
                "_id": f"{1700000000000 + i}x{i:018d}",
                "Created Date": format_bubble_datetime(base_time + timedelta(minutes=i * minutes_apart)),
                "Modified Date": format_bubble_datetime(base_time + timedelta(days=400, minutes=i)),
                "Title": f"thing {i}",
            }
            for i in range(first, first + n)
        ]

    return make


def known(records: list[dict]) -> list[KnownRecord]:
    return [(parse_datetime(r["Created Date"]), r["_id"]) for r in records]


def ids(records: list[dict]) -> set[str]:
    return {r["_id"] for r in records}


def client(fake: FakeBubble, **kwargs) -> BubbleClient:
    kwargs.setdefault("backoff", 0)
    kwargs.setdefault("timeout", 10)
    kwargs.setdefault("search_cap", fake.search_cap)
    return BubbleClient(fake.url, KEY, **kwargs)


def census(fake: FakeBubble, records: list[dict], bubble_type: str = "post", **kwargs) -> CensusResult:
    return take_census(client(fake, **kwargs), bubble_type, known(records))


def full_export_requests(live: int) -> int:
    return max(1, math.ceil(live / PAGE))


def test_a_type_without_deletions_costs_one_request_with_no_constraint(things: Things) -> None:
    data = {"post": things(1_000), "comment": things(30), "user": things(5_000)}
    with FakeBubble(data, api_key=KEY) as fake:
        results = {bubble_type: census(fake, records, bubble_type) for bubble_type, records in data.items()}
        log = list(fake.requests)
    assert all(not r.gone and not r.unknown and r.premise_held for r in results.values())
    assert [r.requests for r in results.values()] == [1, 1, 1]
    assert sorted(r.bubble_type for r in log) == ["comment", "post", "user"]
    # The root has no Created Date constraint: records outside the known range are counted too.
    assert all(r.constraints == [] and r.cursor == 0 for r in log)


@pytest.mark.parametrize(
    "deleted",
    [[0], [1_000], [1_999], [0, 1_000, 1_999]],
    ids=["oldest", "middle", "newest", "all three"],
)
def test_deletions_in_the_oldest_a_middle_and_the_newest_window_are_found(deleted: list[int], things: Things) -> None:
    records = things(2_000)
    with FakeBubble({"post": records}, api_key=KEY) as fake:
        for i in deleted:
            fake.delete("post", records[i]["_id"])
        result = census(fake, records)
        asked = len(fake.requests)
    assert result.gone == {records[i]["_id"] for i in deleted}
    assert not result.unknown
    assert result.requests == asked
    assert result.windows_paged >= len(deleted)


def test_a_rejected_record_counts_as_known_so_a_deletion_beside_it_is_found(things: Things) -> None:
    records = things(1_000)
    rejected, doomed = records[500], records[501]  # the migration rejected 500; 501 is deleted in Bubble
    loaded = [r for r in records if r is not rejected]
    with FakeBubble({"post": records}, api_key=KEY) as fake:
        fake.delete("post", doomed["_id"])
        # Bubble now holds as many records as were loaded: only counting the reject shows a difference.
        assert client(fake).count("post") == len(loaded)
        result = take_census(client(fake), "post", known(loaded) + known([rejected]))
    assert result.gone == {doomed["_id"]}
    assert not result.unknown


def test_a_deletion_beside_a_record_imported_with_an_old_created_date_is_found(
    things: Things, base_time: datetime
) -> None:
    records = things(1_000)
    doomed = records[300]
    imported = {  # a data import sets an old Created Date; it is in the incremental export, so it is known
        **things(1, first=300)[0],
        "_id": "1800000000000x000000000000000001",
        "Created Date": format_bubble_datetime(parse_datetime(doomed["Created Date"]) + timedelta(seconds=20)),
        "Modified Date": format_bubble_datetime(base_time + timedelta(days=500)),
    }
    with FakeBubble({"post": records}, api_key=KEY) as fake:
        fake.delete("post", doomed["_id"])
        fake.put("post", imported)
        assert client(fake).count("post") == len(records)  # Bubble's total did not change
        result = census(fake, [*records, imported])
    assert result.gone == {doomed["_id"]}
    assert not result.unknown


@pytest.mark.parametrize("deleted", [[300], [230, 300]], ids=["beside the group", "in and beside it"])
def test_records_sharing_a_created_date_across_the_split_point_are_never_cut_apart(
    deleted: list[int], things: Things, base_time: datetime
) -> None:
    records = things(400)
    shared = format_bubble_datetime(base_time + timedelta(minutes=199))
    for record in records[199:260]:  # the median record (200) shares its Created Date with 60 others
        record["Created Date"] = shared
    with FakeBubble({"post": records}, api_key=KEY) as fake:
        for i in deleted:
            fake.delete("post", records[i]["_id"])
        result = census(fake, records)
    # Cut at the median itself, record 199 would count in the lower half while Bubble puts it in the upper
    # one, where the extra record would hide the deletion of 300.
    assert result.gone == {records[i]["_id"] for i in deleted}
    assert not result.unknown


def test_a_window_whose_records_all_share_one_created_date_is_paged(things: Things) -> None:
    records = things(250, minutes_apart=0)
    with FakeBubble({"post": records}, api_key=KEY) as fake:
        for i in (10, 240):
            fake.delete("post", records[i]["_id"])
        result = census(fake, records)
        limits = sorted(r.limit for r in fake.requests if r.path.endswith("/obj/post"))  # the searches
    assert result.gone == {records[10]["_id"], records[240]["_id"]}
    assert limits == [1, PAGE, PAGE, PAGE]  # counted once, then read in three pages
    assert (result.windows_counted, result.windows_paged, result.records_read) == (1, 1, 248)


def test_a_type_beyond_the_search_cap_is_split_into_windows_below_it(things: Things) -> None:
    records = things(1_000)
    with FakeBubble({"post": records}, api_key=KEY, search_cap=250) as fake:
        untouched = census(fake, records)
        unconstrained = [r for r in fake.requests if not r.constraints]
        fake.delete("post", records[100]["_id"])
        fake.delete("post", records[900]["_id"])
        swept = census(fake, records)
    assert not untouched.gone and not untouched.unknown
    assert untouched.requests > 1
    assert not unconstrained  # a window of more known records than the cap is split without asking its count
    assert swept.gone == {records[100]["_id"], records[900]["_id"]}


def test_a_count_at_the_search_cap_is_never_taken_as_matching(things: Things) -> None:
    records = things(260)
    with FakeBubble({"post": records}, api_key=KEY, search_cap=250) as fake:
        assert client(fake).count("post") == 250  # the cap is silent: 260 records, 250 announced
        result = census(fake, records[:250])  # as many known records as the capped count
    assert result.unknown == ids(records[250:])
    assert not result.gone and not result.premise_held


def test_a_window_at_the_search_cap_that_cannot_be_split_is_never_settled_by_its_count(things: Things) -> None:
    records = things(251, minutes_apart=0)  # more records at one Created Date than one search returns
    with (
        FakeBubble({"post": records}, api_key=KEY, search_cap=250) as fake,
        pytest.raises(BubbleError, match="share Created Date"),
    ):
        census(fake, records[:250])  # the capped count equals the known records


def test_a_window_beyond_the_search_cap_is_read_on_past_it(things: Things) -> None:
    records = things(600)
    with FakeBubble({"post": records}, api_key=KEY, search_cap=250) as fake:
        fake.delete("post", records[599]["_id"])
        result = census(fake, records[:50] + records[599:])  # one small window holds 550 unknown records
    assert result.gone == {records[599]["_id"]}
    assert result.unknown == ids(records[50:599])


def test_an_unknown_live_record_is_reported_unknown_and_calls_nothing_gone(things: Things) -> None:
    records = things(1_000)
    newcomer = {**things(1, first=5_000)[0], "_id": "1900000000000x000000000000000001"}
    with FakeBubble({"post": records}, api_key=KEY) as fake:
        fake.put("post", newcomer)  # created after the incremental export
        result = census(fake, records[:400] + records[401:])  # and 400 the caller left out
    assert result.unknown == {records[400]["_id"], newcomer["_id"]}
    assert not result.gone
    assert not result.premise_held


def test_a_live_record_known_with_a_wrong_created_date_is_never_called_gone(things: Things) -> None:
    records = things(1_000)
    misdated, doomed = records[100], records[800]
    with FakeBubble({"post": records}, api_key=KEY) as fake:
        fake.delete("post", doomed["_id"])
        wrong = [(parse_datetime(records[790]["Created Date"]) + timedelta(seconds=1), misdated["_id"])]
        result = take_census(client(fake), "post", known(records[:100] + records[101:]) + wrong)
    assert result.gone == {doomed["_id"]}  # the misdated record's window lacks it, but Bubble showed it elsewhere
    assert not result.unknown


def test_a_created_date_moved_in_bubble_beside_a_deletion_deletes_nothing_live_and_finds_the_deletion(
    things: Things,
) -> None:
    """A data fix moved A's Created Date into B's window, and B was deleted: the two windows' counts cancel."""
    records = things(1_000)
    moved, doomed = records[100], records[800]
    with FakeBubble({"post": records}, api_key=KEY) as fake:
        fake.put("post", {**moved, "Created Date": doomed["Created Date"]})
        fake.delete("post", doomed["_id"])
        result = census(fake, records)
        log = list(fake.requests)
    assert result.gone == {doomed["_id"]}  # found by reading every record, since the counts could not be trusted
    assert result.alive_elsewhere == {moved["_id"]}  # asked for by id before anything was called gone
    assert result.swept
    assert any(r.path.endswith(f"/obj/post/{moved['_id']}") for r in log)


def test_every_record_called_gone_is_first_asked_for_by_id(things: Things) -> None:
    records = things(1_000)
    doomed = [records[5], records[500]]
    with FakeBubble({"post": records}, api_key=KEY) as fake:
        for record in doomed:
            fake.delete("post", record["_id"])
        result = census(fake, records)
        asked = {r.path.rsplit("/", 1)[-1] for r in fake.requests if "/obj/post/" in r.path}
    assert result.gone == ids(doomed) and asked == ids(doomed)
    assert not result.swept and not result.alive_elsewhere


def test_a_deletion_while_a_window_is_read_makes_it_read_again_not_a_false_gone(things: Things) -> None:
    records = things(250, minutes_apart=0)  # one window that cannot be split: read in three pages
    first_gone, doomed = records[200], records[5]
    with FakeBubble({"post": records}, api_key=KEY) as fake:
        fake.delete("post", first_gone["_id"])
        fake.add_fault("slow", cursor=100, seconds=0.5)

        def delete_after_the_first_page() -> None:
            deadline = time.monotonic() + 10
            while not any(r.limit == PAGE and r.cursor == 0 for r in list(fake.requests)):
                if time.monotonic() > deadline:
                    return
                time.sleep(0.005)
            fake.delete("post", doomed["_id"])  # every later offset shifts by one

        deleter = threading.Thread(target=delete_after_the_first_page)
        deleter.start()
        result = census(fake, records, workers=4)
        deleter.join()
    # Read as it came, page 100 would start one record late and call records[100] gone.
    assert result.gone == {first_gone["_id"], doomed["_id"]}
    # The count, the pages twice, then each record called gone asked for by id.
    assert (result.windows_paged, result.requests) == (1, 1 + 3 + 3 + 2)


def test_a_few_deletions_in_tens_of_thousands_of_records_cost_a_small_fraction_of_a_full_export(things: Things) -> None:
    records = things(40_000, minutes_apart=0.5)
    deleted = [7_321, 29_004]
    with FakeBubble({"post": records}, api_key=KEY) as fake:
        for i in deleted:
            fake.delete("post", records[i]["_id"])
        result = census(fake, records)
        log = list(fake.requests)
    full_export = full_export_requests(len(records) - len(deleted))
    levels = math.ceil(math.log2(len(records) / PAGE))
    assert result.gone == {records[i]["_id"] for i in deleted}
    # The module's bound: a count a level on each deletion's path (the other half's total is derived),
    # the two halves at the bottom read, each deletion confirmed by id.
    assert len(log) == result.requests <= 1 + len(deleted) * (levels + 2) + len(deleted)
    assert result.requests <= full_export / 10
    assert result.records_read <= 2 * len(deleted) * PAGE
    assert sum(r.limit == 1 for r in log) == result.windows_counted


def test_deletions_scattered_everywhere_cost_no_more_than_a_full_export(things: Things) -> None:
    records = things(3_000)
    deleted = records[::10]  # e.g. every cancelled booking deleted: one in ten, all over the type
    with FakeBubble({"post": records}, api_key=KEY) as fake:
        for record in deleted:
            fake.delete("post", record["_id"])
        result = census(fake, records)
    assert result.gone == ids(deleted)
    # A few counts more, and each deletion confirmed by id.
    assert result.requests <= full_export_requests(len(records) - len(deleted)) + 5 + len(deleted)


def test_a_window_bubble_announces_empty_is_settled_without_reading_it(things: Things) -> None:
    records = things(2_000)
    with FakeBubble({"post": records}, api_key=KEY) as fake:
        for record in records[:1_000]:  # an old half deleted in one cleanup
            fake.delete("post", record["_id"])
        result = census(fake, records)
    assert result.gone == ids(records[:1_000])
    # The root, then one half counted (the other's total is the root's minus it); then each of the 1,000
    # asked for by id before it is called gone.
    assert (result.requests, result.records_read) == (2 + 1_000, 0)


def test_sibling_windows_are_counted_concurrently(things: Things) -> None:
    records = things(2_000)
    with FakeBubble({"post": records}, api_key=KEY, latency=0.05) as fake:
        fake.delete("post", records[1_234]["_id"])
        result = census(fake, records, workers=4)
        in_flight = max(r.in_flight for r in fake.requests)
    assert result.gone == {records[1_234]["_id"]}
    assert in_flight > 1


def test_a_lower_bound_is_written_as_greater_than_one_millisecond_before() -> None:
    start, end = parse_datetime("2025-11-05T14:03:22.120Z"), parse_datetime("2025-11-06T00:00:00.000Z")
    assert created_constraints(start, end) == [
        {"key": "Created Date", "constraint_type": "greater than", "value": "2025-11-05T14:03:22.119Z"},
        {"key": "Created Date", "constraint_type": "less than", "value": "2025-11-06T00:00:00.000Z"},
    ]
    assert created_constraints(None, None) == []


def test_a_record_known_with_two_created_dates_is_refused_before_any_request(
    things: Things, base_time: datetime
) -> None:
    record = things(1)[0]
    with FakeBubble({"post": [record]}, api_key=KEY) as fake:
        twice = [*known([record]), (base_time + timedelta(days=3), record["_id"])]
        with pytest.raises(ValueError, match="two Created Dates"):
            take_census(client(fake), "post", twice)
        assert not fake.requests


def test_a_record_known_in_another_zone_and_to_the_microsecond_is_the_same_bubble_moment(things: Things) -> None:
    """Phase 2 hands back its timestamps in the session's zone and to the microsecond; the export, Bubble's."""
    records = things(300)
    paris = ZoneInfo("Europe/Paris")
    from_phase2 = [
        (created.astimezone(paris) + timedelta(microseconds=456), bubble_id) for created, bubble_id in known(records)
    ]
    with FakeBubble({"post": records[1:]}, api_key=KEY) as fake:
        result = take_census(client(fake), "post", [*from_phase2, *known(records[150:])])
    assert (result.known, result.gone, result.unknown) == (300, {records[0]["_id"]}, frozenset())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 2_500),
    # 0: one Created Date for all (below the cap: more cannot be read); 0.00001: two or so a millisecond
    minutes_apart=st.sampled_from([0.0, 0.00001, 0.5, 1.0]),
    picks=st.lists(st.floats(0, 1, exclude_max=True), max_size=25),
)
def test_the_census_finds_exactly_the_deleted_records_wherever_they_are(
    things: Things, n: int, minutes_apart: float, picks: list[float]
) -> None:
    assume(minutes_apart > 0 or n < 1_000)
    records = things(n, minutes_apart=minutes_apart)
    deleted = {records[int(p * n)]["_id"] for p in picks}
    with FakeBubble({"post": records}, api_key=KEY, search_cap=1_000) as fake:
        for bubble_id in deleted:
            fake.delete("post", bubble_id)
        result = census(fake, records)
    assert (result.gone, result.unknown, result.swept) == (deleted, frozenset(), False)
