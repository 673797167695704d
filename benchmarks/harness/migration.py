"""One full migration (exports, tables with their checks, reports, gate) on a fresh database, two ways.

`cli`, the users' path: `dagster asset materialize -m culturebridge_migration --select 'not group:files'` in a
subprocess, with the multiprocess executor (its default: a process per step), configured by the
environment variables of README's "Running it against the real Bubble app" and a `DAGSTER_HOME` of
its own in the run's folder (never a `dagster.yaml` at the repository root: the CLI reads
`./dagster.yaml` and `./.env` of its working directory, which is the run's folder too).

`process`, for profiling: `dg.materialize` in this process (steps one at a time), with the same
resources built directly, a fixed sample seed and quiet console logs.

Both read the run's steps and checks from the event log of the instance they ran on.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from benchmarks.harness.bubble import API_KEY
from benchmarks.harness.event_log import RunEvents, read_run_events
from benchmarks.harness.memory import TreeSampler, maxrss_mb, own_peak_rss_mb
from benchmarks.harness.waiting import child_environment, kill_group, log_tail, wait_for_exit
from culturebridge_migration.definitions import ALL_ASSETS
from culturebridge_migration.defs.event_log import EventLogResource
from culturebridge_migration.defs.files import FILE_ASSETS
from culturebridge_migration.defs.resources import BubbleResource, MigrationSettings, PostgresResource
from culturebridge_migration.fake_bubble.files import FILES_PREFIX

# Every record, not the files: copying Bubble's files has a benchmark of its own (`benchmarks.files_copy`),
# and the records' figures stay comparable with dlt, which copies no files.
CLI_COMMAND = ("asset", "materialize", "-m", "culturebridge_migration", "--select", "not group:files")
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass(frozen=True)
class MigrationTarget:
    """Where a migration reads from and writes to: the Bubble server, a fresh database, a fresh folder."""

    bubble_url: str
    database_url: str
    work: Path
    page_workers: int | None  # None: the resource's default

    @property
    def export_dir(self) -> Path:
        return self.work / "exports"

    @property
    def report_dir(self) -> Path:
        return self.work / "reports"


@dataclass(frozen=True)
class MigrationRun:
    via: str
    events: RunEvents
    total_seconds: float
    success: bool
    peak_rss_mb: float | None
    processes_peak_rss_mb: float | None


def run_in_process(target: MigrationTarget, timeout: float) -> MigrationRun:
    """`dg.materialize` of the whole graph here (`timeout` does not apply: nothing to wait on)."""
    instance = dg.DagsterInstance.ephemeral()
    workers = {"page_workers": target.page_workers} if target.page_workers else {}
    resources = {
        "postgres": PostgresResource(database_url=target.database_url),
        "bubble": BubbleResource(api_url=target.bubble_url, api_key=API_KEY, **workers),
        "settings": MigrationSettings(
            export_dir=str(target.export_dir), report_dir=str(target.report_dir), sample_seed=7
        ),
        "event_log": EventLogResource(),
    }
    clock = time.perf_counter()
    result = dg.materialize(
        [a for a in ALL_ASSETS if a not in FILE_ASSETS],
        resources=resources,
        instance=instance,
        raise_on_error=False,
        run_config=QUIET_LOGS,
    )
    total = time.perf_counter() - clock
    events = read_run_events(instance, result.run_id)
    return MigrationRun("process", events, total, result.success, own_peak_rss_mb(), None)


def cli_environment(target: MigrationTarget, dagster_home: Path, **settings: str) -> dict[str, str]:
    """What a user's shell would set for this migration (README, plus `settings`), and nothing else of the project's."""
    variables = {
        "BUBBLE_API_URL": target.bubble_url,
        "BUBBLE_API_KEY": API_KEY,
        "BUBBLE_FILES_URL": target.bubble_url.rsplit("/api/", 1)[0] + FILES_PREFIX,
        "DATABASE_URL": target.database_url,
        # A real Phase 2 links copied files by a URL its users can open (a stand-in host: nothing fetches it).
        "MIGRATION_FILES_PUBLIC_URL": "https://files.culturebridge.test",
        "MIGRATION_EXPORT_DIR": str(target.export_dir),
        "MIGRATION_REPORT_DIR": str(target.report_dir),
        "DAGSTER_HOME": str(dagster_home),
    }
    if target.page_workers:
        variables["MIGRATION_PAGE_WORKERS"] = str(target.page_workers)
    return child_environment(**variables, **settings)


def dagster_executable() -> str:
    """The `dagster` beside this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "dagster"
    found = str(beside) if beside.exists() else shutil.which("dagster")
    if not found:
        raise RuntimeError("no `dagster` command beside this Python or on PATH: pip install -e .")
    return found


def run_with_cli(
    target: MigrationTarget, timeout: float, cli_args: tuple[str, ...] = CLI_COMMAND, **settings: str
) -> MigrationRun:
    """The CLI in a subprocess (its own session, so a timeout ends its step processes too).

    `cli_args`: the dagster command (default: materialize everything); `settings`: more of the README's
    variables. Every run on a target shares its `DAGSTER_HOME`, as one operator's runs do.
    """
    home, log = target.work / "dagster_home", target.work / "dagster_cli.log"
    home.mkdir(parents=True, exist_ok=True)
    command = [dagster_executable(), *cli_args]
    with log.open("wb") as out:
        clock = time.perf_counter()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=target.work,
            env=cli_environment(target, home, **settings),
            start_new_session=True,
        )
        try:
            with TreeSampler(process.pid) as sampler:
                code, usage = wait_for_exit(process, timeout, f"`dagster {' '.join(cli_args[:2])}` (a run)", log)
        finally:
            kill_group(process)  # anything of its group still running
        total = time.perf_counter() - clock
    events, status = _cli_run_events(home, code, log)
    success = code == 0 and status == dg.DagsterRunStatus.SUCCESS
    if not success:
        print(f"the CLI run failed (exit {code}, {status.value}); the end of its log:\n{log_tail(log)}", flush=True)
    return MigrationRun("cli", events, total, success, maxrss_mb(usage), sampler.peak_mb)


def _cli_run_events(home: Path, code: int, log: Path) -> tuple[RunEvents, dg.DagsterRunStatus]:
    """The one run the CLI made in its fresh `DAGSTER_HOME`: its events and final status."""
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        runs = instance.get_runs(limit=1)
        if not runs:
            raise RuntimeError(f"the CLI exited {code} without starting a run; its output:\n{log_tail(log)}")
        return read_run_events(instance, runs[0].run_id), runs[0].status
    finally:
        instance.dispose()


RUNNERS: dict[str, Callable[[MigrationTarget, float], MigrationRun]] = {"cli": run_with_cli, "process": run_in_process}
