"""How far a copy has got: files and bytes done, the rate, and when it should end."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CopyProgress:
    files_done: int  # finished, whatever the outcome
    files_total: int
    bytes_done: int  # bytes stored by the finished files
    elapsed: float  # seconds since the copy started

    @property
    def files_per_second(self) -> float:
        return self.files_done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def bytes_per_second(self) -> float:
        return self.bytes_done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the rate so far; None before the first file is done."""
        rate = self.files_per_second
        return (self.files_total - self.files_done) / rate if rate > 0 else None

    def describe(self) -> str:
        eta = "?" if self.eta_seconds is None else f"{self.eta_seconds:.0f}s"
        return (
            f"{self.files_done}/{self.files_total} files, {self.bytes_done / 1e6:.1f} MB, "
            f"{self.files_per_second:.1f} files/s, {self.bytes_per_second / 1e6:.2f} MB/s, ETA {eta}"
        )


ProgressCallback = Callable[[CopyProgress], None]


class ProgressTracker:
    """Counts finished files from many worker threads and reports each one to `callback`."""

    def __init__(self, files_total: int, callback: ProgressCallback | None) -> None:
        self.files_total, self.callback = files_total, callback
        self._files_done = self._bytes_done = 0
        self._started = time.monotonic()
        self._lock = threading.Lock()

    def file_done(self, size: int) -> CopyProgress:
        with self._lock:
            self._files_done += 1
            self._bytes_done += size
            progress = CopyProgress(
                self._files_done, self.files_total, self._bytes_done, time.monotonic() - self._started
            )
        if self.callback:
            self.callback(progress)
        return progress
