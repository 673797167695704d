"""Bubble's search cap handled in windows of Created Date, without HTTP: pages go in, records come out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from culturebridge_migration.mapping.values import format_bubble_datetime
from culturebridge_migration.sources.search_windows import SearchCapError, WindowedSearch

Record = Callable[[int, int], dict]


@pytest.fixture
def record(base_time: datetime) -> Record:
    """Record `x{i}`, created `minute` minutes after the base time."""

    def make(i: int, minute: int) -> dict:
        return {"_id": f"x{i}", "Created Date": format_bubble_datetime(base_time + timedelta(minutes=minute))}

    return make


def test_a_search_under_the_cap_is_complete_in_one_window(record: Record) -> None:
    out: list[dict] = []
    search = WindowedSearch("post", 5, out.extend)
    assert search.constraints() == []
    search.take([record(0, 0), record(1, 1)])
    assert search.close_window(2) is True
    assert (search.announced_total, search.count, [r["_id"] for r in out]) == (2, 2, ["x0", "x1"])


def test_a_search_at_the_cap_continues_from_its_last_created_date_a_millisecond_early(
    record: Record, base_time: datetime
) -> None:
    out: list[dict] = []
    search = WindowedSearch("post", 3, out.extend)
    search.take([record(0, 0), record(1, 1), record(2, 2)])
    assert search.close_window(3) is False  # reaching the cap is never taken as complete
    (constraint,) = search.constraints()
    early = (base_time + timedelta(minutes=2, milliseconds=-1)).isoformat(timespec="milliseconds")
    a_millisecond_early = early.replace("+00:00", "Z")  # 00:01:59.999Z
    assert constraint == {"key": "Created Date", "constraint_type": "greater than", "value": a_millisecond_early}
    search.take([record(2, 2), record(3, 3)])  # the next window starts with the record it already has
    assert search.close_window(2) is True
    assert [r["_id"] for r in out] == ["x0", "x1", "x2", "x3"]
    assert (search.announced_total, search.count) == (4, 4)


def test_records_sharing_the_boundary_date_are_handed_on_once(record: Record) -> None:
    out: list[dict] = []
    search = WindowedSearch("post", 4, out.extend)
    search.take([record(0, 0), record(1, 0), record(2, 1), record(3, 1)])
    assert not search.close_window(4)
    search.take([record(2, 1), record(3, 1), record(4, 2)])  # the window starts at minute 1 again
    assert search.close_window(3)
    assert [r["_id"] for r in out] == ["x0", "x1", "x2", "x3", "x4"]
    assert search.announced_total == 5


def test_more_records_on_one_created_date_than_the_cap_cannot_be_windowed(record: Record) -> None:
    search = WindowedSearch("post", 2, lambda records: None)
    search.take([record(0, 0), record(1, 0)])
    assert not search.close_window(2)
    search.take([record(0, 0), record(1, 0)])
    with pytest.raises(SearchCapError, match="more than 2 records share Created Date"):
        search.close_window(2)


def test_a_capped_search_that_returned_nothing_is_an_error_not_an_endless_loop() -> None:
    with pytest.raises(SearchCapError, match="no record with a Created Date"):
        WindowedSearch("post", 2, lambda records: None).close_window(2)


def test_an_id_sent_twice_within_a_window_is_noted_as_a_duplicate(record: Record) -> None:
    search = WindowedSearch("post", 10, lambda records: None)
    search.take([record(0, 0), record(1, 1)])
    search.take([record(1, 1), record(2, 2)])  # page two repeats page one's last record: overlapping pages
    assert search.close_window(3)
    assert (search.count, search.duplicates) == (3, ["x1"])


def test_records_read_again_on_purpose_are_not_duplicates(record: Record) -> None:
    search = WindowedSearch("post", 10, lambda records: None)
    search.take([record(0, 0), record(1, 1)])
    search.take([record(0, 0), record(1, 1), record(2, 2)], rereading=True)  # the search changed: read again
    assert search.close_window(3) and search.duplicates == []


def test_records_without_a_usable_id_or_created_date_pass_through_for_the_mapper_to_reject(record: Record) -> None:
    out: list[dict] = []
    search = WindowedSearch("post", 10, out.extend)
    broken = [{"Title": "no id"}, {"_id": ["a", "b"], "Created Date": "x"}, {"_id": "x9"}]
    search.take([record(0, 0), *broken])
    assert search.close_window(4)
    assert out == [record(0, 0), *broken]
