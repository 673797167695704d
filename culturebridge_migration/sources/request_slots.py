"""The requests in flight to Bubble: a fixed number of slots, and when they are scarce, the most urgent next.

Bubble limits requests per app, so every type exporting at once shares one bound. Which waiting request
takes a freed slot decides which type finishes paging first: ranked by the load order (users before
bookings before payments), a table can load while the types after it still page. A waiter of a lower rank
goes before any of a higher one; equal ranks go in the order they came. A freed slot is handed to the next
waiter directly, so no thread wakes for nothing.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class RequestSlots:
    def __init__(self, size: int) -> None:
        self._free = max(1, size)  # while a slot is free, nobody waits: a freed slot goes to a waiter first
        self._waiting: list[tuple[int, int, threading.Event]] = []
        self._arrivals = itertools.count()
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    @contextmanager
    def slot(self, rank: int = 0) -> Iterator[None]:
        self._acquire(rank)
        try:
            yield
        finally:
            self._release()

    def _acquire(self, rank: int) -> None:
        with self._lock:
            if self._free:
                self._free -= 1
                return
            entry = (rank, next(self._arrivals), threading.Event())
            heapq.heappush(self._waiting, entry)
        try:
            entry[2].wait()
        except BaseException:  # interrupted while waiting: leave the line, or give back the slot it was handed
            with self._lock:
                if entry in self._waiting:
                    self._waiting.remove(entry)
                    heapq.heapify(self._waiting)
                    raise
            self._release()
            raise

    def _release(self) -> None:
        with self._lock:
            if self._waiting:
                heapq.heappop(self._waiting)[2].set()  # the slot passes on, still taken
            else:
                self._free += 1
