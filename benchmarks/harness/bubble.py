"""The local Bubble server, in a process of its own as Bubble is: its JSON encoding must not compete
with the client for the interpreter lock, and its memory (the whole data set) is not the migration's.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness.memory import process_peak_rss_mb
from benchmarks.harness.waiting import child_environment, first_matching_line

API_KEY = "benchmark-key"
STARTED_LINE = r" on (http://\S+)"  # "Bubble Data API on http://127.0.0.1:PORT/api/1.1 (...)", flushed


@dataclass(frozen=True)
class BubbleProcess:
    url: str
    pid: int

    def peak_rss_mb(self) -> float | None:
        return process_peak_rss_mb(self.pid)


@contextmanager
def bubble_server(data_dir: Path, latency: float, timeout: float) -> Iterator[BubbleProcess]:
    """`python -m culturebridge_migration.fake_bubble` serving `data_dir` on a free port."""
    command = [sys.executable, "-m", "culturebridge_migration.fake_bubble", "--data-dir", str(data_dir)]
    command += ["--port", "0", "--api-key", API_KEY, "--latency", str(latency)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=child_environment())
    try:
        started = first_matching_line(process, STARTED_LINE, timeout, "the local Bubble server")
        yield BubbleProcess(started.group(1), process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
