"""One export at a time in an export folder: two runs sharing a folder would mix their files.

The lock is the operating system's (flock on `.export.lock`): it goes with the process that held it,
however that process ended, so a killed run never leaves the folder locked. The file names the run
that holds it, for the message the second run gives.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class FolderBusy(RuntimeError):
    """Another run exports into the folder; the message names it."""


@contextmanager
def export_folder(folder: str | Path, run_id: str, *, wait_seconds: float = 60.0) -> Iterator[None]:
    path = Path(folder) / ".export.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as lock:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    lock.seek(0)
                    holder = lock.read().strip() or "another run"
                    raise FolderBusy(
                        f"{Path(folder).resolve()} is in use by the export of run {holder}: waited {wait_seconds:.0f} s. "
                        "Let it finish, or give this run a folder of its own (MIGRATION_EXPORT_DIR)"
                    ) from None
                time.sleep(0.5)
        lock.seek(0)
        lock.truncate()
        lock.write(run_id)
        lock.flush()
        yield
