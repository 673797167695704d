"""One Bubble budget for every process on this machine that talks to the same app.

Bubble limits an app's requests, not a process's. Under the multiprocess executor a table's load may ask
Bubble by id while the export still pages in another process, and the fallback may write while a sync
reads: each with its own client. So beside each client's own queue (request_slots.py, which decides which
of its requests goes next), a request holds one of the app's slots here, a lock file held with `flock` for
the request's duration: the kernel frees it when a process dies, so a crash never leaks a slot. The
requests per minute are paced by one moment, the next free one, kept in a file and advanced under a lock.

The folder is named after the app's address (host and port), in a folder of the user's in the temporary
folder: every process of this user on this machine shares it (a client with fewer workers than another
uses the first of the slots). Workers on other machines (Kubernetes, Celery) do not: give each its
share through MIGRATION_PAGE_WORKERS and MIGRATION_REQUESTS_PER_MINUTE.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

# While every slot is taken by other processes, how long to wait before trying again: short at first,
# since a request of another process ends within its latency.
RETRY_SECONDS = (0.002, 0.005, 0.01, 0.02)


def budget_folder(api_url: str) -> Path:
    """The app's folder: one per Bubble host and port (live and version-test share the app's capacity)."""
    app = urlsplit(api_url).netloc.lower()
    return (
        Path(tempfile.gettempdir())
        / f"culturebridge-bubble-{os.getuid()}"
        / hashlib.sha256(app.encode()).hexdigest()[:16]
    )


class SharedBudget:
    def __init__(self, folder: Path, slots: int, per_minute: int | None) -> None:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.slots = [folder / f"slot-{i}" for i in range(max(1, slots))]
        self.pace = folder / "next-request"
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._start = itertools.cycle(range(len(self.slots)))  # threads try the slots from different places

    @contextmanager
    def slot(self) -> Iterator[None]:
        fd = self._take()
        try:
            yield
        finally:
            os.close(fd)  # closing the descriptor releases its lock

    def _take(self) -> int:
        for attempt in itertools.count():
            fd = self._free_slot()
            if fd is not None:
                return fd
            time.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
        raise AssertionError("unreachable")

    def _free_slot(self) -> int | None:
        """A descriptor locking a slot nobody holds, or None when every slot is held."""
        first = next(self._start)
        for i in range(len(self.slots)):
            fd = os.open(self.slots[(first + i) % len(self.slots)], os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # an open file of its own: threads exclude each other
                return fd
            except BlockingIOError:
                os.close(fd)
        return None

    def wait(self) -> None:
        """Wait for this request's turn in the app's requests per minute (no wait when there is no limit)."""
        if not self.interval:
            return
        fd = os.open(self.pace, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            now, text = time.time(), os.read(fd, 64).decode(errors="replace")
            try:
                turn = max(now, float(text))
            except ValueError:  # a new file, or one cut short: the budget starts now
                turn = now
            if turn - now > 60.0:  # a moment past a minute ahead is not a queue but a clock that moved back
                turn = now
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, repr(turn + self.interval).encode())
        finally:
            os.close(fd)
        time.sleep(max(0.0, turn - now))
