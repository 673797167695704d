"""End-to-end benchmark of the CultureBridge migration, with ceilings to compare it against.

    python -m benchmarks.run [--via cli|process] [--server embedded|debian|both] [--users 20000 ...]

One invocation: start the PostgreSQL server(s), generate a data set (in a child process), serve it
with the local Bubble server (in another process, as Bubble is), then on each server run the whole
Dagster graph (exports, tables with their checks, reports, gate) on a fresh database, as users do
(`dagster asset materialize` in a subprocess: `--via cli`, the default) or in this process (`--via
process`, for profiling), and read each step's and check's seconds from the run's event log. Then, on
the same data: bcrypt on one core and on the pool, a sequential export of one type, and on each
server's last database a raw COPY of mapped rows and (when dlt is importable) a dlt `rest_api`
pipeline. Figures go to stdout and to a JSON file; benchmarks/README.md says what each one means.

The pieces: `harness` (processes, servers, runs, event logs), `figures` (a run's figures),
`ceilings`, `report` (the typed figures), `render` (table and JSON).
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.ceilings.copy_rows import copy_ceiling
from benchmarks.ceilings.dlt_rest_api import MISSING as DLT_MISSING
from benchmarks.ceilings.dlt_rest_api import dlt_comparison
from benchmarks.ceilings.hashing import bcrypt_ceiling, measure_hashing
from benchmarks.ceilings.sequential_export import sequential_export
from benchmarks.figures import migration_figures, seed_comparison
from benchmarks.harness.bubble import BubbleProcess, bubble_server
from benchmarks.harness.data_set import generate_data_set
from benchmarks.harness.memory import own_peak_rss_mb
from benchmarks.harness.migration import RUNNERS, MigrationTarget
from benchmarks.harness.postgres import fresh_database, postgres_server, server_names
from benchmarks.harness.waiting import GaveUp
from benchmarks.options import parse_args, scale_of
from benchmarks.render import render_table, write_json
from benchmarks.report import (
    Ceilings,
    EndMemory,
    Machine,
    MigrationFigures,
    PeakMemory,
    Report,
    ServerInfo,
    ServerReport,
    medians,
)
from culturebridge_migration.defs.resources import MigrationSettings


@dataclass(frozen=True)
class ServerSession:
    """One server's migrations; the last one's database and folder stay for the ceilings."""

    server: ServerInfo
    last: MigrationTarget
    runs: list[MigrationFigures]
    peak: PeakMemory

    @property
    def migration(self) -> MigrationFigures:
        return medians(self.runs)


def peak_memory(runs: list[MigrationFigures], bubble: BubbleProcess) -> PeakMemory:
    """Right after a server's migrations, before any ceiling."""
    migration = max(r.peak_rss_mb or 0.0 for r in runs)
    samples = [r.processes_peak_rss_mb for r in runs if r.processes_peak_rss_mb is not None]
    processes = max(samples) if samples else None
    server = bubble.peak_rss_mb()
    return PeakMemory(migration, processes, server, max(migration, processes or 0.0) + (server or 0.0))


def migrate_on(
    stack: ExitStack, server_url: str, server: ServerInfo, bubble: BubbleProcess, args: Any
) -> ServerSession:
    """`--repeat` migrations, each on a fresh database and folder."""
    runner, runs = RUNNERS[args.via], []
    for i in range(args.repeat):
        run_stack = stack.enter_context(ExitStack())
        work = Path(run_stack.enter_context(tempfile.TemporaryDirectory(prefix="cb_bench_")))
        target = MigrationTarget(
            bubble.url, run_stack.enter_context(fresh_database(server_url)), work, args.page_workers
        )
        print(f"migration {i + 1}/{args.repeat} on {server.name} via {args.via} ...", flush=True)
        figures = migration_figures(runner(target, args.run_timeout))
        print(
            f"  {figures.total_seconds:.1f}s, {figures.records_per_second:,.0f} records/s, success={figures.success}",
            flush=True,
        )
        runs.append(figures)
        if i < args.repeat - 1:
            run_stack.close()
    return ServerSession(server, target, runs, peak_memory(runs, bubble))


def server_report(session: ServerSession, bubble: BubbleProcess, no_dlt: bool) -> ServerReport:
    """The ceilings that need this server, on its last migration's database and exports."""
    migration, last = session.migration, session.last
    return ServerReport(
        server=session.server,
        migration=migration,
        runs=session.runs,
        copy=copy_ceiling(last.database_url, last.export_dir, migration),
        dlt=None if no_dlt else dlt_comparison(bubble.url, last.database_url, last.work, migration),
        seed=seed_comparison(migration),
        peak_rss_mb=session.peak,
    )


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def main(argv: list[str] | None = None) -> Report:
    args = parse_args(argv, (__doc__ or "").split("\n\n")[0])
    started, load_before = datetime.now(UTC).isoformat(), _load_average()
    with ExitStack() as stack:
        # The servers first: a process forked later (initdb, pg_ctl) would count this one's size as its own peak.
        servers = [
            stack.enter_context(postgres_server(name, timeout=args.startup_timeout, database_url=args.database_url))
            for name in server_names(args.server, args.database_url)
        ]
        for _, info in servers:
            print(f"{info.name}: PostgreSQL {info.version}, {info.description}", flush=True)
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cb_bench_data_")))
        data = generate_data_set(scale_of(args), data_dir, args.startup_timeout)
        print(f"generated {data.records:,} records in {data.generate_seconds:.1f}s", flush=True)
        bubble = stack.enter_context(bubble_server(data_dir, args.latency, args.startup_timeout))
        # Every server's migrations before any ceiling: the mapped rows of the COPY ceiling and dlt would
        # count in this process's peak memory.
        sessions = [migrate_on(stack, url, info, bubble, args) for url, info in servers]
        print("ceilings ...", flush=True)
        first = sessions[0]
        hashing = measure_hashing(
            data.plain_passwords, MigrationSettings().hash_workers, first.runs[-1].passwords_hashed
        )
        bcrypt = bcrypt_ceiling(hashing.hashes_per_second)
        sequential = sequential_export(bubble.url, "bookings", first.migration.stages["export"].records_per_second)
        reports = [server_report(s, bubble, args.no_dlt) for s in sessions]
        if reports[0].dlt is None and not args.no_dlt:
            print(DLT_MISSING, flush=True)
        at_end = EndMemory(own_peak_rss_mb(), bubble.peak_rss_mb())

    head = reports[0]
    report = Report(
        benchmark="culturebridge_migration",
        started_at=started,
        arguments={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "database_url"},
        machine=Machine(
            cpu_count=os.cpu_count() or 1,
            platform=platform.platform(),
            python=platform.python_version(),
            postgres=head.server.version,
            database=head.server.description,
            servers=[r.server for r in reports],
            # Other processes on the machine skew every figure: compare runs with similar load.
            load_average_before=load_before,
            load_average_after=_load_average(),
        ),
        data=data,
        migration=head.migration,
        runs=head.runs,
        hashing=hashing,
        ceilings=Ceilings(head.copy, bcrypt, sequential, head.dlt),
        seed=head.seed,
        peak_rss_mb=head.peak_rss_mb,
        peak_rss_mb_at_end=at_end,
        servers=reports,
    )
    print()
    print(render_table(report))
    write_json(report, args.out)
    print(f"\nwritten to {args.out}")
    return report


def all_succeeded(report: Report) -> bool:
    return all(run.success for server in report.servers for run in server.runs)


if __name__ == "__main__":
    try:
        sys.exit(0 if all_succeeded(main()) else 1)
    except GaveUp as stopped:  # what was waited for says it all: no traceback
        print(f"benchmark stopped: {stopped}", file=sys.stderr)
        sys.exit(2)
