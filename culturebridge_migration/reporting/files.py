"""A run's report files, written atomically and one writer at a time, under a stamp of the run's own.

The stamp is the run's start (YYYYMMDD_HHMMSS), not the moment of writing: the reports of one run may
be written more than once (a failing step writes them, a later step or the daemon writes them again,
more complete), and each time they replace the same files instead of adding a second set.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

FILE_NAMES = {
    "summary": "summary_{stamp}.txt",
    "errors": "errors_{stamp}.csv",
    "report_json": "report_{stamp}.json",
    "html": "report_{stamp}.html",
    "rollback_script": "rollback_{stamp}.sql",
    "run_log": "run_log_{stamp}.log",
    "rollback_summary": "rollback_summary_{stamp}.txt",  # a rollback run's own report
    "rollback_report": "rollback_report_{stamp}.json",
    "fallback_summary": "fallback_summary_{stamp}.txt",  # a fallback run's own report
    "fallback_report": "fallback_report_{stamp}.json",
}


def stamp_of(moment: float | None) -> str:
    """YYYYMMDD_HHMMSS (UTC) of a run's start, as a Unix time; now when the run has not started."""
    when = datetime.fromtimestamp(moment, UTC) if moment else datetime.now(UTC)
    return when.strftime("%Y%m%d_%H%M%S")


def report_paths(folder: str | Path, stamp: str) -> dict[str, Path]:
    return {kind: Path(folder) / name.format(stamp=stamp) for kind, name in FILE_NAMES.items()}


@contextmanager
def _one_writer(folder: Path) -> Iterator[None]:
    with (folder / ".reports.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also when the process dies
        yield


def write_report_files(folder: str | Path, stamp: str, contents: Mapping[str, str]) -> dict[str, Path]:
    """Write each report (kind -> text); a reader never sees half a file. Errors name the path."""
    folder = Path(folder)
    paths = report_paths(folder, stamp)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with _one_writer(folder):
            for kind, text in contents.items():
                tmp = paths[kind].with_name(f".{paths[kind].name}.{uuid.uuid4().hex}.tmp")
                tmp.write_text(text, encoding="utf-8")
                os.replace(tmp, paths[kind])
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot write the reports in {folder}: {exc.strerror or exc}") from None
    return {kind: paths[kind] for kind in contents}
