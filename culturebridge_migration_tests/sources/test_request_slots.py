"""The requests in flight: never more than the slots, and when they are scarce, the lowest rank next."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from culturebridge_migration.sources import request_slots
from culturebridge_migration.sources.request_slots import RequestSlots


def queue_behind(slots: RequestSlots, ranks: list[int], served: list[int]) -> list[threading.Thread]:
    """Start one waiter per rank, each queued before the next starts; each notes its rank when served."""

    def wait_turn(rank: int) -> None:
        with slots.slot(rank):
            served.append(rank)

    threads = []
    for rank in ranks:
        before = slots.waiting
        thread = threading.Thread(target=wait_turn, args=(rank,))
        thread.start()
        wait_until(lambda before=before: slots.waiting == before + 1)
        threads.append(thread)
    return threads


def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=8))
def test_a_freed_slot_goes_to_the_lowest_rank_waiting_and_equal_ranks_in_arrival_order(ranks: list[int]) -> None:
    slots, served = RequestSlots(1), []
    with slots.slot():
        threads = queue_behind(slots, ranks, served)
    for thread in threads:
        thread.join(5)
    assert served == sorted(ranks)  # sorted() is stable: equal ranks keep their arrival order
    assert slots.waiting == 0


def test_never_more_requests_in_flight_than_slots_and_every_slot_comes_back() -> None:
    slots, lock = RequestSlots(3), threading.Lock()
    in_flight, peak = 0, 0

    def request(rank: int) -> None:
        nonlocal in_flight, peak
        with slots.slot(rank):
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            time.sleep(0.002)
            with lock:
                in_flight -= 1

    threads = [threading.Thread(target=request, args=(i % 4,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert peak == 3
    with slots.slot(), slots.slot(), slots.slot():  # all three are free again: these take them at once
        assert slots.waiting == 0


class Interrupted(Exception):
    pass


class WaitInterruptedBefore(threading.Event):
    def wait(self, timeout: float | None = None) -> bool:
        raise Interrupted


class WaitInterruptedAfter(threading.Event):
    def wait(self, timeout: float | None = None) -> bool:
        super().wait(timeout)  # the slot was handed to it...
        raise Interrupted  # ...and then it was interrupted


@pytest.mark.parametrize("event", [WaitInterruptedBefore, WaitInterruptedAfter])
def test_a_waiter_interrupted_leaves_the_line_and_keeps_no_slot(
    event: type[threading.Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    slots = RequestSlots(1)
    # Only the slots' own events are replaced (Thread.start waits on an Event too).
    monkeypatch.setattr(request_slots, "threading", SimpleNamespace(Event=event))
    outcome: list[str] = []

    def interrupted() -> None:
        with pytest.raises(Interrupted), slots.slot():
            outcome.append("served")  # never: its wait raised

    with slots.slot():
        thread = threading.Thread(target=interrupted)
        thread.start()
        if event is WaitInterruptedAfter:
            wait_until(lambda: slots.waiting == 1)  # then the slot is freed and handed to it
        else:
            thread.join(5)  # it was interrupted while the slot was taken
    thread.join(5)
    assert outcome == [] and slots.waiting == 0
    monkeypatch.undo()
    served: list[int] = []
    with slots.slot():  # the one slot is free again: taken at once, and a waiter queues behind it
        threads = queue_behind(slots, [0], served)
    threads[0].join(5)
    assert served == [0]
