"""Bubble's search cap, handled: one type walked in consecutive windows of Created Date.

One search returns at most 50,000 items, and the cap can be silent, so a search that reaches it is
never taken as complete: the next window starts at the last Created Date seen. That date is shared
by the records at the end of one window and the start of the next, so the new window starts 1 ms
before it and the records it sends again are dropped by _id. Only the current window's ids are
kept, so memory is bounded by the cap however large the type.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta

from culturebridge_migration.mapping.entities import CREATED_KEY, ID_KEY
from culturebridge_migration.mapping.values import format_bubble_datetime, parse_datetime


def record_key(record: dict) -> object:
    """What tells a record from the others: its _id, made hashable (Bubble's ids are text; broken ones may not be)."""
    bubble_id = record.get(ID_KEY)
    if bubble_id is None or isinstance(bubble_id, str):
        return bubble_id
    try:
        return json.dumps(bubble_id, sort_keys=True, default=str)
    except (RecursionError, ValueError):  # nested too deep to write: this record is told apart by itself
        return f"(unreadable _id) {id(record)}"


class SearchCapError(RuntimeError):
    """The type cannot be exported in windows: too many records share one Created Date."""


class WindowedSearch:
    """Hands a type's records to `sink` in Created Date order, each _id once, window after window."""

    def __init__(self, bubble_type: str, search_cap: int, sink: Callable[[list[dict]], None]) -> None:
        self.bubble_type, self.search_cap, self.sink = bubble_type, search_cap, sink
        self.start: datetime | None = None  # the current window's first Created Date; None: the first window
        self.count = 0  # distinct records handed on so far
        self.before_window = 0  # of those, the ones from earlier windows
        self.announced_total = 0
        self._ids: set[object] = set()  # of the current window
        self._carried: set[object] = set()  # of those, the ones the window before it also sent
        self.duplicates: list[object] = []  # ids Bubble sent twice where no search could explain it
        self._last_created: str | None = None  # the last Created Date seen, and the ids that carry it
        self._last_ids: set[object] = set()

    def constraints(self) -> list[dict]:
        """The Created Date constraint of the current window (none for the first)."""
        if self.start is None:
            return []
        value = format_bubble_datetime(self.start - timedelta(milliseconds=1))
        return [{"key": CREATED_KEY, "constraint_type": "greater than", "value": value}]

    def take(self, records: list[dict], rereading: bool = False) -> None:
        """A page of the current window, in Created Date order.

        An id seen before is dropped. It is expected at the start of a window (the records sharing
        its first Created Date) and when the search is read again (`rereading`); anywhere else it is
        a duplicate, noted in `duplicates`.
        """
        fresh = []
        for record in records:
            key = record_key(record)
            created = record.get(CREATED_KEY)
            if created != self._last_created:
                self._last_created, self._last_ids = created, set()
            if key is None:  # no _id to tell it by: handed on as it came, for the mapper to reject
                fresh.append(record)
                continue
            self._last_ids.add(key)
            if key not in self._ids:
                self._ids.add(key)
                fresh.append(record)
            elif not rereading and key not in self._carried:
                self.duplicates.append(key)
        if fresh:
            self.count += len(fresh)
            self.sink(fresh)

    def close_window(self, total: int) -> bool:
        """The current window's search announced `total`. True when the type is done; else moves to the next window."""
        if total < self.search_cap:
            self.announced_total = self.before_window + total
            return True
        if self._last_created is None:
            raise SearchCapError(
                f"type {self.bubble_type!r}: the search reached Bubble's cap but returned no record with a Created Date to continue from"
            )
        start = parse_datetime(self._last_created)
        if self.start is not None and start <= self.start:
            raise SearchCapError(
                f"type {self.bubble_type!r}: more than {self.search_cap} records share Created Date "
                f"{self._last_created}; they cannot be exported through the Data API in windows"
            )
        # Everything kept so far is older than the new window, except the records sharing its first
        # Created Date: those sit at the end of this window and the next one reads them again.
        self.start, self._ids, self._carried = start, set(self._last_ids), set(self._last_ids)
        self.before_window = self.count - len(self._last_ids)
        self._last_created, self._last_ids = None, set()
        return False

    @property
    def last_created(self) -> str | None:
        return None if self.start is None else format_bubble_datetime(self.start)
