"""Benchmark of the fallback: Phase 2's changes written back to Bubble, through the command users type.

    python -m benchmarks.fallback [--inserts 500 --updates 400 --deletes 100 --latency 0.15]

Users, posts and comments of the bundled sample are migrated into a fresh embedded PostgreSQL and the
change capture installed (as a FIT cutover does); then the Phase 2 app signs up `--inserts` users, renames
`--updates` migrated users and deletes `--deletes` migrated comments. `dagster job execute -j fallback`
writes them to the local Bubble server, which answers every request after `--latency` seconds. Printed:
the run's seconds and exit code, Bubble's requests by kind, and the request floor (bulk creates ÷ 1,000 +
one per update and delete) they are measured against.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import psycopg

from benchmarks.harness.migration import dagster_executable
from benchmarks.harness.postgres import embedded_server
from benchmarks.harness.waiting import child_environment
from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.fake_bubble.sample import sample_server_args
from culturebridge_migration.loading.change_capture import install_capture
from culturebridge_migration.loading.database import connect
from culturebridge_migration.loading.migrate import migrate_entity
from culturebridge_migration.loading.phase2_db import Phase2Database, Schemas
from culturebridge_migration.loading.schema_evolution import ensure_schema
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.sources.sample_data import generate_sample

KEY = "fallback-benchmark-key"


def _migrate(url: str, records: dict[str, list[dict]]) -> None:
    with connect(url) as conn:
        ensure_schema(conn, Schemas())
        db = Phase2Database(conn)
        for name in ("users", "posts", "comments"):
            migrate_entity(db, ENTITIES[name], records[name], run_id="cutover-1", job_name="cutover")
        install_capture(db)
        conn.commit()


def _app_writes(url: str, inserts: int, updates: int, deletes: int) -> None:
    """The Phase 2 app's own writes (a plain connection: captured, unlike the migration's)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (email, first_name, role, status, created_at, updated_at)"
            " SELECT 'signup' || g || '@example.com', 'New ' || g, 'client', 'active', now(), now()"
            " FROM generate_series(1, %s) g",
            (inserts,),
        )
        conn.execute(
            "UPDATE users SET first_name = 'Renamed ' || id"
            " WHERE id IN (SELECT id FROM users WHERE bubble_id IS NOT NULL ORDER BY id LIMIT %s)",
            (updates,),
        )
        conn.execute(
            "DELETE FROM community_comments WHERE id IN (SELECT id FROM community_comments ORDER BY id LIMIT %s)",
            (deletes,),
        )


def main(argv: list[str] | None = None) -> int:
    """Print the figures; the exit code of the fallback run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inserts", type=int, default=500, help="users the app signs up")
    parser.add_argument("--updates", type=int, default=400, help="migrated users the app renames")
    parser.add_argument("--deletes", type=int, default=100, help="migrated comments the app deletes")
    parser.add_argument("--latency", type=float, default=0.15, help="seconds Bubble takes to answer")
    args = parser.parse_args(argv)

    sample = generate_sample(max(600, args.updates + 100), posts=100, comments=max(200, args.deletes + 50))
    records = {n: [u for u in rs if "Legacy Password" not in u] for n, rs in sample.records.items()}
    with (
        embedded_server(120) as (url, _),
        FakeBubble(**sample_server_args(sample), api_key=KEY) as bubble,
        tempfile.TemporaryDirectory() as folder,
    ):
        _migrate(url, records)
        _app_writes(url, args.inserts, args.updates, args.deletes)
        bubble.latency = args.latency
        bubble.requests.clear()
        env = child_environment(
            BUBBLE_API_URL=bubble.url,
            BUBBLE_API_KEY=KEY,
            DATABASE_URL=url,
            MIGRATION_REPORT_DIR=str(Path(folder) / "reports"),
            DAGSTER_HOME=folder,
        )
        command = [dagster_executable(), "job", "execute", "-m", "culturebridge_migration", "-j", "fallback"]
        clock = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=folder, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - clock
        kinds = Counter(_kind(r.method, r.path) for r in bubble.requests)

    changes = args.inserts + args.updates + args.deletes
    floor = math.ceil(args.inserts / 1000) + args.updates + args.deletes
    print(
        f"fallback: {changes} Phase 2 changes ({args.inserts} creates, {args.updates} changes, {args.deletes} deletes)"
    )
    print(
        f"  Bubble answering in {args.latency * 1000:.0f} ms; `dagster job execute -j fallback` exit {done.returncode}"
    )
    print(f"  {seconds:.1f} s in all, {changes / seconds:.0f} changes/s")
    print(f"  requests: {sum(kinds.values())} ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})")
    print(f"  floor: {floor} (bulk creates ÷ 1,000 + one per change and delete): {sum(kinds.values()) / floor:.2f}x it")
    if done.returncode:
        print(done.stdout[-2000:], done.stderr[-2000:])
    return done.returncode


def _kind(method: str, path: str) -> str:
    if method == "POST":
        return "bulk create" if path.rstrip("/").endswith("/bulk") else "create"
    return {"GET": "search", "PATCH": "change", "DELETE": "delete"}.get(method, method)


if __name__ == "__main__":
    raise SystemExit(main())
