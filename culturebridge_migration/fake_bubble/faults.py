"""Switchable faults: what a test arms so the next N matching requests misbehave.

A fault targets either Data API requests (optionally one type, one cursor) or file downloads (one file
or all of them), never both: arming a file fault leaves the Data API untouched and the other way round.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

API_FAULT_KINDS = ("429", "500", "slow", "truncate", "non_json", "short_page", "drop", "unauthorized")
FILE_FAULT_KINDS = ("404", "429", "500", "slow", "drop", "cut")
ALL_FILES = "*"  # the `file=` of a fault that hits every file


@dataclass
class Fault:
    kind: str
    times: int
    bubble_type: str | None = None
    cursor: int | None = None
    params: dict = field(default_factory=dict)
    file: str | None = None  # a file key, ALL_FILES, or None for a Data API fault

    def matches(self, bubble_type: str | None, cursor: int | None) -> bool:
        """Whether this fault hits a Data API request."""
        return self.file is None and self.bubble_type in (None, bubble_type) and self.cursor in (None, cursor)

    def matches_file(self, key: str) -> bool:
        return self.file in (ALL_FILES, key)


class FaultBook:
    """The armed faults, consumed one use at a time by the request threads."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        known = FILE_FAULT_KINDS if fault.file is not None else API_FAULT_KINDS
        if fault.kind not in known:
            target = "file" if fault.file is not None else "Data API"
            raise ValueError(f"unknown {target} fault {fault.kind!r}; known: {', '.join(known)}")
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take_api(self, bubble_type: str | None, cursor: int | None) -> Fault | None:
        return self._take(lambda f: f.matches(bubble_type, cursor))

    def take_file(self, key: str) -> Fault | None:
        return self._take(lambda f: f.matches_file(key))

    def _take(self, hits: Callable[[Fault], bool]) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if hits(fault):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None
