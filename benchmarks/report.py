"""The report: every figure the benchmark writes, as typed results, and the medians of repeated runs.

The field names are the JSON keys of `benchmarks/results.json` (`dataclasses.asdict`); see
benchmarks/README.md for what each one means. Producers: `harness` (servers, runs, their events),
`figures` (a run's figures, the seed comparison), `ceilings`; the only reader is `render`.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


# -- a migration run ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rate:
    seconds: float
    records_per_second: float


@dataclass(frozen=True)
class Parts:
    """Where the stages' seconds went, in step-seconds (parallel steps add up)."""

    hash: float
    read: float
    map: float
    database: float


@dataclass(frozen=True)
class EntityFigures:
    exported: int
    loaded: int
    rejected: int
    export_seconds: float
    load_seconds: float


@dataclass(frozen=True)
class CheckFigures:
    """One asset check's outcome and the seconds its result metadata reports (None: it reports none)."""

    passed: bool
    severity: str
    seconds: float | None


@dataclass(frozen=True)
class MigrationFigures:
    via: str  # "cli" or "process"
    success: bool
    failed_steps: list[str]
    total_seconds: float  # wall seconds the user waits: the whole CLI command, or the dg.materialize call
    run_seconds: float  # the run's own span in the event log, RUN_START to its end
    startup_seconds: float  # total minus the run: starting the CLI, loading the code location
    records: int
    loaded_rows: int
    rejected_rows: int
    records_per_second: float
    stages: dict[str, Rate]
    parts: Parts
    orchestration_seconds: float  # total minus the wall seconds some stage's step ran
    export_load_seconds: float  # wall seconds the export or a load ran (they overlap): what dlt is compared with
    after_export_seconds: float  # from the export step's end to the run's: what is waited for after the last page
    requests: int  # the Data API searches of the export (pages, census), as its metadata counts them
    validation: Rate
    checks_seconds: float  # the table checks' own seconds, summed
    load_rows_per_second: float
    database_rows_per_second: float
    passwords_hashed: int
    entities: dict[str, EntityFigures]
    steps: dict[str, float]
    checks: dict[str, CheckFigures]  # "phase2/users:row_counts" -> its outcome
    peak_rss_mb: float | None  # process: this process's so far; cli: the largest process of the CLI's tree
    processes_peak_rss_mb: float | None  # cli: the peak sum over the CLI's process tree (sampled)


# -- PostgreSQL ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServerInfo:
    name: str  # "embedded", "debian" or "url"
    description: str
    version: str


# -- ceilings -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Hashing:
    plain_passwords: int
    seconds: float
    hashes_per_second: float | None
    threads: int
    reported_by_export: int


@dataclass(frozen=True)
class BcryptCeiling:
    cost: int
    single_core_hashes_per_second: float
    cores: int
    ceiling_hashes_per_second: float
    pool_hashes_per_second: float | None
    ratio: float | None


@dataclass(frozen=True)
class CopyIntoSchema:
    rows: int
    seconds: float
    rows_per_second: float
    foreign_keys: int
    database_ratio: float


@dataclass(frozen=True)
class CopyCeiling:
    rows: int
    seconds: float
    repeats: int
    rows_per_second: float | None
    load_rows_per_second: float
    database_rows_per_second: float
    ratio: float | None
    database_ratio: float | None
    into_schema: CopyIntoSchema | None


@dataclass(frozen=True)
class SequentialExport:
    entity: str
    records: int
    sequential_seconds: float
    sequential_records_per_second: float
    our_records_per_second: float
    ratio: float | None


@dataclass(frozen=True)
class DltFigures:
    version: str
    seconds: float
    phases: dict[str, float]
    rows: int
    expected_rows: int
    complete: bool  # false: a naive offset paginator stopped at Bubble's silent 50,000-item search cap
    records_per_second: float
    rows_by_table: dict[str, int]
    our_export_load_records_per_second: float
    ratio: float | None


@dataclass(frozen=True)
class DltFailed:
    """dlt was installed but its pipeline failed: why, so the comparison cannot sink the benchmark."""

    error: str
    records_per_second: None = None


@dataclass(frozen=True)
class Ceilings:
    copy: CopyCeiling
    bcrypt: BcryptCeiling
    sequential_export: SequentialExport
    dlt: DltFigures | DltFailed | None  # None: not installed, or --no-dlt


@dataclass(frozen=True)
class SeedComparison:
    seed_per_minute: int
    ours_per_minute: float | None
    ratio: float | None


# -- memory, machine, data ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PeakMemory:
    """MB after the migrations, before the ceilings. PostgreSQL is not counted."""

    migration: float
    migration_processes: float | None
    bubble_server: float | None
    total: float


@dataclass(frozen=True)
class EndMemory:
    """MB after the ceilings too (the mapped rows of the COPY ceiling, dlt)."""

    benchmark_process: float
    bubble_server: float | None


@dataclass(frozen=True)
class DataSet:
    generate_seconds: float
    records: int
    by_entity: dict[str, int]
    plain_passwords: int
    generator_peak_rss_mb: float


@dataclass(frozen=True)
class Machine:
    cpu_count: int
    platform: str
    python: str
    postgres: str  # the first server's version
    database: str  # the first server's description
    servers: list[ServerInfo]
    load_average_before: list[float] | None
    load_average_after: list[float] | None


# -- the report ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServerReport:
    """Everything measured on one PostgreSQL server: its migrations and the ceilings that need a database."""

    server: ServerInfo
    migration: MigrationFigures  # medians of `runs`
    runs: list[MigrationFigures]
    copy: CopyCeiling
    dlt: DltFigures | DltFailed | None
    seed: dict[str, SeedComparison]
    peak_rss_mb: PeakMemory


@dataclass(frozen=True)
class Report:
    """The first server's figures at the top level (as before `--server both`); every server's in `servers`."""

    benchmark: str
    started_at: str
    arguments: dict[str, Any]
    machine: Machine
    data: DataSet
    migration: MigrationFigures
    runs: list[MigrationFigures]
    hashing: Hashing
    ceilings: Ceilings
    seed: dict[str, SeedComparison]
    peak_rss_mb: PeakMemory
    peak_rss_mb_at_end: EndMemory
    servers: list[ServerReport]


# -- medians ------------------------------------------------------------------------------------------
def medians(values: list[T]) -> T:
    """The median of every number at the same place in equally shaped results (of integers, the lower
    median); `success` only if all succeeded.

    Lists (of step names) are the union when they differ; other values come from the first.
    """
    return _median(values)  # type: ignore[no-any-return]


def _median(values: list[Any]) -> Any:
    first = values[0]
    if dataclasses.is_dataclass(first) and not isinstance(first, type):
        merged = {f.name: _median([getattr(v, f.name) for v in values]) for f in dataclasses.fields(first)}
        return type(first)(**merged)
    if isinstance(first, dict):
        return {k: _median([v[k] for v in values if k in v]) for k in first}
    if isinstance(first, bool):
        return all(values)
    if isinstance(first, int | float) or first is None:
        numbers = [v for v in values if isinstance(v, int | float)]
        if not numbers:
            return None
        # Counts stay counts: the lower median of integers is one of them.
        return (
            statistics.median_low(numbers) if all(isinstance(v, int) for v in numbers) else statistics.median(numbers)
        )
    if isinstance(first, list):
        return first if all(v == first for v in values) else sorted(set().union(*values))
    return first
