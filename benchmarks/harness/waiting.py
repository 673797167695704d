"""Waiting on other processes: always with a deadline, and saying what was waited for on giving up.

Children never need PYTHONUNBUFFERED: the one whose output is read (the Bubble server) flushes its
startup line, the pipe is drained by a thread (no line buffering on our side, no full pipe blocking
the child), and every other child writes to a file that is read only after it ended.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
POLL_SECONDS = 0.1
# The variables a user's shell sets for the migration (README's tables) and Dagster's own: a child
# gets only the ones the benchmark gives it. PYTHONUNBUFFERED is dropped so nothing can rely on it.
PROJECT_PREFIXES = ("BUBBLE_", "MIGRATION_", "DAGSTER_")
DROPPED = ("DATABASE_URL", "PYTHONUNBUFFERED")


class GaveUp(RuntimeError):
    """Another process did not do what the benchmark waited for, in time."""


def child_environment(**variables: str) -> dict[str, str]:
    """This process's environment without the project's variables (and PYTHONUNBUFFERED), plus `variables`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(PROJECT_PREFIXES) and k not in DROPPED}
    return clean | variables


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def first_matching_line(process: subprocess.Popen[str], pattern: str, timeout: float, what: str) -> re.Match[str]:
    """The first line of the child's stdout matching `pattern`; the rest of its output is drained and dropped."""
    lines: queue.Queue[str | None] = queue.Queue()

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)  # end of output: the child exited or closed stdout

    threading.Thread(target=drain, name=f"drain {what}", daemon=True).start()
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            try:
                code: int | None = process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None  # it closed its output but runs on
            raise GaveUp(f"{what} ended its output (exit code {code}) before printing {pattern!r}; it printed {seen!r}")
        if match := re.search(pattern, line):
            return match
        seen.append(line.rstrip())
    raise GaveUp(f"gave up after {timeout:g}s waiting for {what} to print {pattern!r}; it printed {seen!r}")


def run_command(
    command: Sequence[str], *, timeout: float, what: str, log: Path, **options: Any
) -> subprocess.CompletedProcess[bytes]:
    """Run a command to its end, its output into `log` (a pipe may be held open by a server it starts)."""
    with log.open("ab") as out:
        try:
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, **options)
        except subprocess.TimeoutExpired:
            raise GaveUp(f"gave up after {timeout:g}s waiting for {what}; its output:\n{log_tail(log)}") from None
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {done.returncode}); its output:\n{log_tail(log)}")
    return done


def wait_for_exit(process: subprocess.Popen[Any], timeout: float, what: str, log: Path) -> tuple[int, Any]:
    """Exit code and resource usage of a child (and of the descendants it waited for); kills its group on timeout.

    `os.wait4` rather than `Popen.wait`: its usage's ru_maxrss is the largest process of the child's tree.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage
        time.sleep(POLL_SECONDS)
    kill_group(process)
    raise GaveUp(f"gave up after {timeout:g}s waiting for {what}; the end of its output:\n{log_tail(log)}")


def kill_group(process: subprocess.Popen[Any]) -> None:
    """End what is left of a child started with `start_new_session=True` and of everything it started."""
    try:
        os.killpg(process.pid, signal.SIGKILL)  # its group: the step processes outlive a killed CLI
    except ProcessLookupError:
        return  # the group is gone: the child and all it started have ended
    if process.returncode is None:
        process.wait(timeout=30)


def call_with_timeout(func: Callable[[], T], timeout: float, what: str) -> T:
    """`func()` on a daemon thread, for library calls that wait on a process without a deadline of their own."""
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["value"] = func()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=call, name=what, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise GaveUp(f"gave up after {timeout:g}s waiting for {what}")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]
