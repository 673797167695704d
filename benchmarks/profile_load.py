"""Profile the load stage of one or more entities, without Dagster: where do the seconds go?

Generates a data set, writes it as export files (JSON Lines, as the export assets do), starts an
embedded PostgreSQL (or Debian's with --server debian, or uses --database-url), creates the schema, then for every entity in load
order times: reading the export, mapping, and each SQL statement of the load (COPY, row history,
upsert, id map, rejects), then the table's asset checks. A second pass loads the same files again
(nothing changed), the incremental path. `--profile pyinstrument` wraps the first pass.

    .venv/bin/python -m benchmarks.profile_load --users 5000 --bookings 50000 --payments 50000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.harness.postgres import fresh_database, postgres_server, server_names
from benchmarks.options import STARTUP_TIMEOUT, add_scale_arguments
from culturebridge_migration.loading import loader, migrate
from culturebridge_migration.loading.deletions import DeletedRecords
from culturebridge_migration.loading.phase2_db import Phase2Database, Schemas
from culturebridge_migration.loading.schema_evolution import ensure_schema
from culturebridge_migration.mapping.entities import ENTITIES, load_order
from culturebridge_migration.sources.export_store import ExportManifest, read_export, write_export
from culturebridge_migration.sources.sample_data import generate_sample
from culturebridge_migration.validation.checks import CheckInputs, staged_export, table_checks
from culturebridge_migration.validation.export_digest import ExportDigest

PHASES: dict[str, float] = {}


def timed(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        clock = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            PHASES[name] = PHASES.get(name, 0.0) + time.perf_counter() - clock

    return wrapper


class TimedConnection(psycopg.Connection):
    """A connection that adds up the seconds spent in each kind of statement."""

    timings: dict[str, float]

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        clock = time.perf_counter()
        try:
            return super().execute(query, params, **kwargs)
        finally:
            text = query.as_string(self) if hasattr(query, "as_string") else str(query)
            key = " ".join(text.split()[:6])[:70]
            self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - clock


def write_files(args: argparse.Namespace, folder: Path) -> dict[str, int]:
    sample = generate_sample(
        args.users,
        bookings=args.bookings,
        payments=args.payments,
        posts=args.posts,
        comments=args.comments,
        resources=args.resources,
        legacy_password_share=0.0,
    )
    counts = {}
    for name, records in sample.records.items():
        manifest = ExportManifest(name, ENTITIES[name].bubble_type, "profile", len(records), len(records), 0, 0, "", "")
        write_export(folder, records, manifest)
        counts[name] = len(records)
    return counts


def load_pass(conn: TimedConnection, folder: Path, label: str, entities: list[str]) -> dict[str, Any]:
    db = Phase2Database(conn)
    run_id = f"{label}-{uuid.uuid4().hex[:8]}"
    out: dict[str, Any] = {}
    for name in entities:
        entity = ENTITIES[name]
        conn.timings = {}
        PHASES.clear()
        t0 = time.perf_counter()
        records, manifest = read_export(folder, name)
        t1 = time.perf_counter()
        outcome = migrate.migrate_entity(db, entity, records, run_id=run_id, job_name="profile")
        conn.commit()
        t2 = time.perf_counter()
        load_sql = dict(conn.timings)
        phases = dict(PHASES)
        conn.timings = {}
        digest = ExportDigest(entity, 200, seed=7).consume(records)
        inputs = CheckInputs(db, entity, digest, manifest, 100, DeletedRecords.REPORT)
        with staged_export(inputs):
            for check in table_checks(entity):
                check.evaluate(inputs)
        conn.commit()
        t3 = time.perf_counter()
        loaded = outcome.loaded
        sql_total = sum(load_sql.values())
        out[name] = {
            "records": len(records),
            "loaded": loaded,
            "inserted": outcome.result.inserted,
            "updated": outcome.result.updated,
            "read_s": t1 - t0,
            "migrate_s": t2 - t1,
            "sql_s_excl_copy": sql_total,
            "checks_s": t3 - t2,
            "check_sql": dict(conn.timings),
            "load_sql": load_sql,
            "phases": phases,
            "rows_per_s": loaded / (t3 - t0) if t3 > t0 else 0.0,
        }
        print(
            f"{label} {name:16} {len(records):7d} rec  read {t1 - t0:6.2f}s  migrate {t2 - t1:6.2f}s"
            f" (map {phases.get('map', 0):5.2f}s copy {phases.get('copy', 0):5.2f}s execute() {sql_total:5.2f}s)  checks {t3 - t2:5.2f}s  -> {loaded / (t3 - t0):8.0f} rows/s",
            flush=True,
        )
    total = sum(e["read_s"] + e["migrate_s"] + e["checks_s"] for e in out.values())
    loaded = sum(e["loaded"] for e in out.values())
    print(f"{label} TOTAL {loaded} rows in {total:.2f}s -> {loaded / total:.0f} rows/s", flush=True)
    return {"entities": out, "seconds": total, "rows": loaded, "rows_per_second": loaded / total}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scale_arguments(p, users=5000, bookings=50000, payments=50000, posts=10000)
    p.add_argument(
        "--entities", default=",".join(load_order(ENTITIES)), help="comma-separated; upstream ones are loaded"
    )
    p.add_argument("--database-url")
    p.add_argument(
        "--server", choices=("embedded", "debian"), help="default: --database-url or DATABASE_URL, else embedded"
    )
    p.add_argument("--profile", choices=("none", "pyinstrument"), default="none")
    p.add_argument("--profile-out", default="/tmp/profile_load.html")
    p.add_argument("--sql-detail", action="store_true", help="print the per-statement seconds")
    p.add_argument("--out", default="/tmp/profile_load.json")
    args = p.parse_args()
    wanted = set(args.entities.split(","))
    migrate.map_records = timed("map", migrate.map_records)
    loader._copy_rows = timed("copy", loader._copy_rows)
    with (
        tempfile.TemporaryDirectory(prefix="cb-prof-") as tmp,
        postgres_server(
            server_names(args.server, args.database_url)[0], timeout=STARTUP_TIMEOUT, database_url=args.database_url
        ) as (server_url, _),
        fresh_database(server_url) as url,
    ):
        folder = Path(tmp)
        clock = time.perf_counter()
        counts = write_files(args, folder)
        print(f"wrote {sum(counts.values())} records in {time.perf_counter() - clock:.1f}s", flush=True)
        with TimedConnection.connect(url) as conn:
            conn.timings = {}
            ensure_schema(conn, Schemas())
            conn.commit()
            names = load_order(ENTITIES)
            profiler = None
            if args.profile == "pyinstrument":
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.002)
                profiler.start()
            first = load_pass(conn, folder, "first", names)
            if profiler is not None:
                profiler.stop()
                Path(args.profile_out).write_text(profiler.output_html())
                print(profiler.output_text(unicode=False, color=False, show_all=False)[:20000])
            again = load_pass(conn, folder, "again", names)
            if args.sql_detail:
                for label, res in (("first", first), ("again", again)):
                    for name, e in res["entities"].items():
                        if name not in wanted:
                            continue
                        print(f"-- {label} {name}")
                        for key, secs in sorted({**e["load_sql"], **e["check_sql"]}.items(), key=lambda kv: -kv[1]):
                            if secs > 0.005:
                                print(f"   {secs:7.3f}s  {key}")
        Path(args.out).write_text(json.dumps({"first": first, "again": again}, indent=1, default=str))


if __name__ == "__main__":
    main()
