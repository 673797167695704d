"""Peak resident memory of the processes a benchmark runs (Linux /proc; None where it is not readable)."""

from __future__ import annotations

import os
import re
import resource
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

SAMPLE_SECONDS = 0.5
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def maxrss_mb(usage: Any) -> float:
    """ru_maxrss in MB: kilobytes on Linux, bytes on macOS."""
    unit = 1024 * 1024 if sys.platform == "darwin" else 1024
    return float(usage.ru_maxrss) / unit


def own_peak_rss_mb() -> float:
    return maxrss_mb(resource.getrusage(resource.RUSAGE_SELF))


def process_peak_rss_mb(pid: int) -> float | None:
    """A running process's high-water RSS (VmHWM)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process now running."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name (field 2) may hold spaces and parentheses: split after its last ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    return parents


def tree_rss_mb(root: int) -> float:
    """The summed current RSS of `root` and its descendants."""
    parents = _parents()
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    total = 0.0
    for pid in tree:
        try:
            resident_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # ended between the scan and now
        total += resident_pages * PAGE_MB
    return total


class TreeSampler:
    """Samples the summed RSS of a process tree on a thread, for the peak of processes running at once."""

    def __init__(self, root: int) -> None:
        self._root, self._stop = root, threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss sampler", daemon=True)
        self.peak_mb: float | None = None if not Path("/proc/self/statm").exists() else 0.0

    def _sample(self) -> None:
        while self.peak_mb is not None and not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, tree_rss_mb(self._root))
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
