"""The local Bubble database's searches: a Created Date window answered from its index is the same
answer as testing every record, in the same order."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest

from culturebridge_migration.fake_bubble import database
from culturebridge_migration.fake_bubble.database import Database
from culturebridge_migration.mapping.values import format_bubble_datetime, parse_datetime

CREATED = "Created Date"
MODIFIED = "Modified Date"


def bookings(start: datetime, n: int, seed: int = 3) -> list[dict]:
    """Records in random order from `start` on, many sharing a Created Date (ties must keep their insertion order)."""
    rng = random.Random(seed)
    return [
        {"_id": f"{i}x{i}", CREATED: format_bubble_datetime(start + timedelta(seconds=rng.randrange(n // 3)))}
        for i in range(n)
    ]


def window(after: datetime | None, before: datetime | None) -> list[dict]:
    constraints = []
    if after is not None:
        constraints.append({"key": CREATED, "constraint_type": "greater than", "value": format_bubble_datetime(after)})
    if before is not None:
        constraints.append({"key": CREATED, "constraint_type": "less than", "value": format_bubble_datetime(before)})
    return constraints


def expected_in_window(records: list[dict], after: datetime | None, before: datetime | None) -> list[str]:
    """What Bubble answers, by definition: every record in the window, stably sorted by Created Date."""
    inside = [
        r
        for r in records
        if (after is None or parse_datetime(r[CREATED]) > after)
        and (before is None or parse_datetime(r[CREATED]) < before)
    ]
    return [r["_id"] for r in sorted(inside, key=lambda r: parse_datetime(r[CREATED]))]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_created_date_window_is_every_record_inside_it_in_created_order(seed: int, base_time: datetime) -> None:
    records = bookings(base_time, 3_000, seed)
    db = Database({"booking": records})
    rng = random.Random(seed)
    for _ in range(40):
        a, b = sorted(base_time + timedelta(seconds=rng.randrange(-5, 1_005)) for _ in range(2))
        after, before = rng.choice([(a, b), (a, None), (None, b), (None, None), (b, a)])
        found = [r["_id"] for r in db.search("booking", window(after, before), CREATED, False)]
        assert found == expected_in_window(records, after, before)


def test_the_window_follows_a_change_of_the_type(base_time: datetime) -> None:
    records = bookings(base_time, 300)
    db = Database({"booking": records})
    everything = window(base_time - timedelta(days=1), None)
    assert len(db.search("booking", everything, CREATED, False)) == 300
    db.delete("booking", records[0]["_id"])
    db.put("booking", {"_id": "new", CREATED: format_bubble_datetime(base_time - timedelta(hours=1))})
    found = [r["_id"] for r in db.search("booking", everything, CREATED, False)]
    assert found[0] == "new" and records[0]["_id"] not in found and len(found) == 300


def test_a_record_whose_created_date_is_not_a_date_is_still_judged_one_by_one(base_time: datetime) -> None:
    records = [*bookings(base_time, 50), {"_id": "odd", CREATED: "yesterday"}]
    db = Database({"booking": records})
    after = base_time - timedelta(days=1)
    found = {r["_id"] for r in db.search("booking", window(after, None), CREATED, False)}
    assert found == {r["_id"] for r in records[:50]} | {"odd"}  # "yesterday" > "2024-..." as text, as before


def test_searches_arriving_together_after_a_change_build_the_date_index_once(
    base_time: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every census window of a changed type arrives at once; each building the index again made the
    stand-in, not the census, take seconds (eight sorts of 200k records fighting for one interpreter)."""
    records = bookings(base_time, 3_000)
    db = Database({"booking": records})
    db.put("booking", {**records[0], "Title": "changed"})
    builds, build = [], database.DateIndex.of

    def counted(things: list[dict]) -> object:
        builds.append(len(things))
        time.sleep(0.05)  # long enough for the other searches to arrive while it builds
        return build(things)

    monkeypatch.setattr(database.DateIndex, "of", staticmethod(counted))
    start = threading.Barrier(8)

    def search(k: int) -> list[dict]:
        start.wait()
        return db.search("booking", window(base_time + timedelta(seconds=k), None), CREATED, False)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(search, range(8)))
    assert builds == [3_000]
    assert [len(a) for a in answers] == [
        len(expected_in_window(db.records("booking"), base_time + timedelta(seconds=k), None)) for k in range(8)
    ]


@pytest.mark.parametrize("seed", [4, 5])
def test_a_modified_date_window_is_every_record_changed_inside_it_in_created_order(
    seed: int, base_time: datetime
) -> None:
    """The incremental export's search (Modified Date after the watermark, sorted by Created Date), from the index."""
    rng = random.Random(seed)
    records = [
        {**r, MODIFIED: format_bubble_datetime(base_time + timedelta(seconds=rng.randrange(2_000)))}
        for r in bookings(base_time, 3_000, seed)
    ]
    db = Database({"booking": records})
    db.search("booking", [], CREATED, False)  # the index is built
    for _ in range(30):
        a, b = sorted(base_time + timedelta(seconds=rng.randrange(-5, 2_005)) for _ in range(2))
        after, before = rng.choice([(a, b), (a, None), (None, b), (b, a)])
        constraints = [{**c, "key": MODIFIED} for c in window(after, before)]
        found = [r["_id"] for r in db.search("booking", constraints, CREATED, False)]
        changed = [r for r in records if (after is None or parse_datetime(r[MODIFIED]) > after)]
        changed = [r for r in changed if before is None or parse_datetime(r[MODIFIED]) < before]
        assert found == [r["_id"] for r in sorted(changed, key=lambda r: parse_datetime(r[CREATED]))]


def test_a_record_without_a_modified_date_is_judged_one_by_one(base_time: datetime) -> None:
    records = [*bookings(base_time, 50), {"_id": "odd", CREATED: format_bubble_datetime(base_time)}]
    records = [{**r, MODIFIED: r[CREATED]} if r["_id"] != "odd" else r for r in records]
    db = Database({"booking": records})
    after = [{"key": MODIFIED, "constraint_type": "greater than", "value": format_bubble_datetime(base_time)}]
    found = {r["_id"] for r in db.search("booking", after, CREATED, False)}
    assert found == {r["_id"] for r in records[:50] if parse_datetime(r[MODIFIED]) > base_time}


def test_a_changed_type_is_indexed_again_in_the_background_once_its_writes_stop(
    base_time: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a database keeps its indexes on write: the first search after a burst of changes (the cutover's)
    does not wait for the type to be sorted again."""
    records = bookings(base_time, 3_000)
    db = Database({"booking": records})
    built_by, build = [], database.DateIndex.of

    def recorded(things: list[dict]) -> object:
        built_by.append(threading.current_thread())
        return build(things)

    monkeypatch.setattr(database.DateIndex, "of", staticmethod(recorded))
    for record in records[:20]:
        db.put("booking", {**record, "Title": "changed"})
    deadline = time.monotonic() + 10
    while not built_by and time.monotonic() < deadline:
        time.sleep(0.05)
    found = db.search("booking", window(base_time, None), CREATED, False)
    assert len(built_by) == 1 and built_by[0] is not threading.current_thread()
    assert [r["_id"] for r in found] == expected_in_window(db.records("booking"), base_time, None)
