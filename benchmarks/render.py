"""The report as a table for the terminal (servers side by side) and as the JSON file of every figure."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from benchmarks.ceilings.dlt_rest_api import MISSING as DLT_MISSING
from benchmarks.report import DltFailed, MigrationFigures, Report, ServerReport
from culturebridge_migration.settings import BY_VARIABLE

LABEL = 30
STAGE_COLUMNS = (10, 12, 14)  # seconds, records/s, records/min
STEP_COLUMN = 14
COMPARE_LABEL = 46
FAILED_MARK = "!"


def write_json(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(report), indent=2, default=str) + "\n")


def _n(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}x"


def render_table(report: Report) -> str:
    sections = (_header, _stages, _steps, _checks, _hashing, _comparisons, _seed, _memory)
    return "\n\n".join(section(report) for section in sections)


def _header(report: Report) -> str:
    args, data, machine = report.arguments, report.data, report.machine
    scale = ", ".join(f"{name} {args[name]:,}" for name in ("users", "bookings", "payments", "posts", "comments"))
    lines = [
        f"CultureBridge migration benchmark: {data.records:,} records ({scale}, resources {args['resources']:,}), "
        f"{machine.cpu_count} CPUs, repeat {args['repeat']} (medians), via {args['via']}",
        f"data generated in {data.generate_seconds:.1f}s (not counted); load average before/after: "
        f"{machine.load_average_before} / {machine.load_average_after}",
    ]
    for s in report.servers:
        lines.append(
            f"{s.server.name}: PostgreSQL {s.server.version}, {s.server.description}; success: {s.migration.success}"
        )
    return "\n".join(lines)


def _server_heading(report: Report, width: int, label: str = "", label_width: int = LABEL) -> str:
    return f"{label:<{label_width}}" + "".join(f"{s.server.name:>{width}}" for s in report.servers)


def _stages(report: Report) -> str:
    width = sum(STAGE_COLUMNS)
    s, r, m = STAGE_COLUMNS
    lines = [
        _server_heading(report, width),
        f"{'stage':<{LABEL}}" + f"{'seconds':>{s}}{'records/s':>{r}}{'records/min':>{m}}" * len(report.servers),
    ]

    def row(label: str, figure: Callable[[MigrationFigures], tuple[float, float | None]]) -> None:
        cells = ""
        for server in report.servers:
            seconds, rate = figure(server.migration)
            cells += f"{seconds:>{s}.2f}{_n(rate):>{r}}{_n(rate * 60 if rate else None):>{m}}"
        lines.append(f"{label:<{LABEL}}{cells}")

    def per(count: float, seconds: float) -> float | None:
        return count / seconds if seconds else None

    row("export", lambda f: (f.stages["export"].seconds, f.stages["export"].records_per_second))
    row("  of which hash (at once)", lambda f: (f.parts.hash, None))
    row("load", lambda f: (f.stages["load"].seconds, f.stages["load"].records_per_second))
    row("  of which read export", lambda f: (f.parts.read, per(f.records, f.parts.read)))
    row("  of which map", lambda f: (f.parts.map, per(f.records, f.parts.map)))
    row("  of which database (rows)", lambda f: (f.parts.database, f.database_rows_per_second))
    row("  of which checks (rows)", lambda f: (f.validation.seconds, f.validation.records_per_second))
    row("reports", lambda f: (f.stages["reports"].seconds, f.stages["reports"].records_per_second))
    row("orchestration (Dagster)", lambda f: (f.orchestration_seconds, None))
    row("  of which before the run", lambda f: (f.startup_seconds, None))
    row("after the export's end", lambda f: (f.after_export_seconds, None))
    row("total", lambda f: (f.total_seconds, f.records_per_second))
    latency, workers = (
        report.arguments.get("latency") or 0,
        report.arguments.get("page_workers") or BY_VARIABLE["MIGRATION_PAGE_WORKERS"].default,
    )
    for server in report.servers if latency else ():
        f = server.migration
        floor = f.requests / workers * latency  # Bubble's bound: every request waits `latency`, `workers` at a time
        lines.append(
            f"{server.server.name}: request floor {f.requests:,} requests / {workers} in flight x {latency:g} s = "
            f"{floor:.1f} s; total {_x(f.total_seconds / floor if floor else None)} it"
        )
    return "\n".join(lines)


def _steps(report: Report) -> str:
    names = sorted({step for s in report.servers for step in s.migration.steps})
    lines = [_server_heading(report, STEP_COLUMN, "step (seconds)")]
    for name in names:
        lines.append(
            f"{name:<{LABEL}}" + "".join(f"{_n(s.migration.steps.get(name), 2):>{STEP_COLUMN}}" for s in report.servers)
        )
    return "\n".join(lines)


def _checks(report: Report) -> str:
    """Every check's own seconds (its result metadata), marked when it failed."""
    names = sorted({check for s in report.servers for check in s.migration.checks})
    width = max([LABEL, *(len(n) + 2 for n in names)])
    lines = [_server_heading(report, STEP_COLUMN, f"check (seconds; {FAILED_MARK}: failed)", width)]
    for name in names:
        cells = ""
        for server in report.servers:
            check = server.migration.checks.get(name)
            cell = "-" if check is None else _n(check.seconds, 3) + ("" if check.passed else FAILED_MARK)
            cells += f"{cell:>{STEP_COLUMN}}"
        lines.append(f"{name:<{width}}{cells}")
    return "\n".join(lines)


def _hashing(report: Report) -> str:
    h, users = report.hashing, report.migration.entities["users"]
    return (
        f"hashing: {h.plain_passwords:,} plain passwords in {h.seconds:.2f}s on {h.threads} threads "
        f"= {_n(h.hashes_per_second, 1)} hashes/s (inside the users export: "
        f"{users.export_seconds:.2f}s; the export reported {h.reported_by_export:,} hashed)"
    )


def _compare(label: str, ours: float | None, ref: float | None, ratio: float | None, digits: int = 0) -> str:
    return f"{label:<{COMPARE_LABEL}}{_n(ours, digits):>14}{_n(ref, digits):>14}{_x(ratio):>10}"


def _on(report: Report, server: ServerReport) -> str:
    """A label's suffix naming the server, when there is more than one."""
    return f" [{server.server.name}]" if len(report.servers) > 1 else ""


def _comparisons(report: Report) -> str:
    c = report.ceilings
    lines = [f"{'comparison':<{COMPARE_LABEL}}{'ours':>14}{'reference':>14}{'ours/ref':>10}"]
    for server in report.servers:
        cp, on = server.copy, _on(report, server)
        lines.append(_compare("load rows/s vs raw COPY" + on, cp.load_rows_per_second, cp.rows_per_second, cp.ratio))
        if cp.into_schema:
            lines.append(
                _compare(
                    "database rows/s vs raw COPY" + on,
                    cp.database_rows_per_second,
                    cp.rows_per_second,
                    cp.database_ratio,
                )
            )
            schema = cp.into_schema
            lines.append(
                _compare(
                    "  vs COPY into the schema" + on,
                    cp.database_rows_per_second,
                    schema.rows_per_second,
                    schema.database_ratio,
                )
            )
    bc, se = c.bcrypt, c.sequential_export
    lines.append(
        _compare(
            f"bcrypt/s vs {bc.cores} cores x 1-core",
            bc.pool_hashes_per_second,
            bc.ceiling_hashes_per_second,
            bc.ratio,
            1,
        )
    )
    lines.append(
        _compare(
            f"export/s vs sequential {se.entity}", se.our_records_per_second, se.sequential_records_per_second, se.ratio
        )
    )
    for server in report.servers:
        lines += _dlt_lines(report, server)
    return "\n".join(lines)


def _dlt_lines(report: Report, server: ServerReport) -> list[str]:
    label, d = "export+load/s vs dlt rest_api" + _on(report, server), server.dlt
    if d is None:
        why = "skipped (--no-dlt)" if report.arguments["no_dlt"] else DLT_MISSING.removeprefix("dlt: ")
        return [f"{label:<{COMPARE_LABEL}}{why}"]
    if isinstance(d, DltFailed):
        return [f"{label:<{COMPARE_LABEL}}  failed: {d.error.splitlines()[0][:80]}"]
    lines = [_compare(label, d.our_export_load_records_per_second, d.records_per_second, d.ratio)]
    if not d.complete:
        lines.append(f"{'':<{COMPARE_LABEL}}  dlt INCOMPLETE: {d.rows:,} of {d.expected_rows:,} rows")
    return lines


def _seed(report: Report) -> str:
    lines = [f"{'vs the seed figures (per minute)':<{COMPARE_LABEL}}{'ours':>14}{'seed':>14}{'ours/seed':>10}"]
    for server in report.servers:
        for name, s in server.seed.items():
            lines.append(_compare(name + _on(report, server), s.ours_per_minute, s.seed_per_minute, s.ratio))
    return "\n".join(lines)


def _memory(report: Report) -> str:
    lines = []
    for server in report.servers:
        peak, on = server.peak_rss_mb, _on(report, server)
        processes = (
            ""
            if peak.migration_processes is None
            else f", all its processes at once: {peak.migration_processes:,.0f} MB"
        )
        where = "this process" if server.migration.via == "process" else "the CLI's largest process"
        lines.append(
            f"peak RSS of the migration{on}: {where} {peak.migration:,.0f} MB{processes}; "
            f"the Bubble server's: {_n(peak.bubble_server)} MB"
        )
    lines.append(
        f"this process after the ceilings too: {report.peak_rss_mb_at_end.benchmark_process:,.0f} MB; "
        f"the data generator's: {report.data.generator_peak_rss_mb:,.0f} MB"
    )
    return "\n".join(lines)
