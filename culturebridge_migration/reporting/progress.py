"""Progress lines for long steps, so a run's log in the UI shows them moving."""

from __future__ import annotations

import logging
import time


class ProgressLog:
    """Logs `done/total`, rate and ETA at most every `every` seconds (and at the end)."""

    def __init__(self, log: logging.Logger, label: str, unit: str = "records", every: float = 2.0) -> None:
        self.log, self.label, self.unit, self.every = log, label, unit, every
        self.started = self._last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last < self.every and done < total:
            return
        self._last = now
        elapsed = max(now - self.started, 1e-6)
        rate = done / elapsed
        eta = (total - done) / rate if rate and total > done else 0.0
        share = f" ({done / total:.0%})" if total else ""
        self.log.info(f"{self.label}: {done:,}/{total:,} {self.unit}{share}, {rate:,.0f}/s, ETA {eta:,.0f}s")
