"""The cutover scenario: after a full migration, Bubble changes a little; how long is the final sync?

    python -m benchmarks.cutover [--latency 0.15] [--server debian] [--users 20000 ...]

On a fresh database: the whole migration (`dagster asset materialize`), then Bubble changes 0.1% of
the records, adds 200 and deletes 10 spread over the leaf types (nothing references them, so delete
mode removes them). Then, each through the CLI as an operator runs it, with MIGRATION_DELETED_RECORDS=delete:
1. `dagster job execute -j cutover`: the incremental export with a deletion census per type;
2. the same after `rollback_migration` put Phase 2 back, within a budget of 1,000 requests/min
   (MIGRATION_REQUESTS_PER_MINUTE, Bubble's legacy plans);
3. the same after another rollback, the way that needs no census: `full_migration` (a full export
   sweeps the deletions).
For each: wall seconds of the command, Data API requests (from the local server's request log; the
census's are the one-record counts and the reads bounded by Created Date), and the rows deleted.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import requests

from benchmarks.harness.bubble import bubble_server
from benchmarks.harness.data_set import generate_data_set
from benchmarks.harness.migration import MigrationTarget, run_with_cli
from benchmarks.harness.postgres import fresh_database, postgres_server
from benchmarks.options import SCALE_NAMES, STARTUP_TIMEOUT, add_scale_arguments, scale_of
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.mapping.values import format_bubble_datetime, parse_datetime

LEAF_TYPES = ("payment", "comment", "resource")  # no type references them: a deletion there is a deletion
JOB = ("job", "execute", "-m", "culturebridge_migration", "-j")
# The first migration copies Bubble's files too, as a real one does: cutover then copies only new ones.
EVERYTHING = ("asset", "materialize", "-m", "culturebridge_migration", "--select", "*")


@dataclass(frozen=True)
class Changes:
    edited: int
    added: int
    deleted: list[tuple[str, str]]  # (Bubble type, _id)


@dataclass(frozen=True)
class Attempt:
    name: str
    command: str
    success: bool
    seconds: float
    requests: int
    census_requests: int
    deleted_rows: int
    stages: dict[str, float]  # the run's own report: seconds per stage, up to the gate


def settle(database_url: str) -> None:
    """VACUUM ANALYZE after the first migration: days pass before cutover, and autovacuum has done it by then.

    Right after a bulk load the first reads of every row also set its hint bits, and autovacuum starts
    on the new tables: a cutover measured then measures that, not itself.
    """
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def edit_moment(data: dict[str, list[dict]]) -> datetime:
    """The Modified Date of the edits: now, or just after the data set's last Modified Date when that is later.

    The generator spreads its dates over years from a fixed start, so they can lie past today; an edit
    dated before them would be older than the watermark, which is not how Bubble dates an edit.
    """
    latest = max(parse_datetime(r["Modified Date"]) for records in data.values() for r in records)
    return max(datetime.now(UTC), latest + timedelta(minutes=1))


def change_bubble(data_dir: Path, bubble_url: str, *, share: float, added: int, deleted: int, seed: int) -> Changes:
    """Edit `share` of every type's records, add `added` and delete `deleted` (leaf types), over HTTP."""
    rng, control = random.Random(seed), bubble_url.rsplit("/api/", 1)[0] + "/_fake/records"
    types = [e.bubble_type for e in ENTITIES.values()]
    data = {t: [json.loads(line) for line in (data_dir / f"{t}.jsonl").open(encoding="utf-8")] for t in types}
    now = edit_moment(data)
    session, edited, adds, gone = requests.Session(), 0, 0, []
    for bubble_type in types:
        records = data[bubble_type]
        for record in rng.sample(records, max(1, round(len(records) * share))):
            record["Modified Date"] = format_bubble_datetime(now)
            session.post(f"{control}/{bubble_type}", json=record, timeout=30).raise_for_status()
            edited += 1
        for _ in range(added // len(types) + (1 if types.index(bubble_type) < added % len(types) else 0)):
            twin = dict(rng.choice(records))
            twin["_id"] = f"{int(now.timestamp() * 1000)}x{rng.getrandbits(60):018d}"
            twin["Created Date"] = twin["Modified Date"] = format_bubble_datetime(now)
            session.post(f"{control}/{bubble_type}", json=twin, timeout=30).raise_for_status()
            adds += 1
        if bubble_type in LEAF_TYPES:
            share_of_deletions = deleted // len(LEAF_TYPES) + (1 if bubble_type == LEAF_TYPES[0] else 0)
            for record in rng.sample(records, share_of_deletions):
                session.delete(f"{control}/{bubble_type}/{record['_id']}", timeout=30).raise_for_status()
                gone.append((bubble_type, record["_id"]))
    return Changes(edited, adds, gone)


def request_log(bubble_url: str) -> list[dict]:
    log = requests.get(bubble_url.rsplit("/api/", 1)[0] + "/_fake/requests", timeout=60)
    log.raise_for_status()
    return [r for r in log.json() if r.get("bubble_type")]


def is_census(request: dict) -> bool:
    return request.get("limit") == 1 or any(c.get("key") == "Created Date" for c in request.get("constraints") or [])


def deleted_rows(database_url: str, changes: Changes) -> int:
    tables = {e.bubble_type: e.table for e in ENTITIES.values()}
    with psycopg.connect(database_url) as conn:
        return sum(
            1
            for bubble_type, bubble_id in changes.deleted
            if conn.execute(f"SELECT 1 FROM {tables[bubble_type]} WHERE bubble_id = %s", (bubble_id,)).fetchone()
            is None
        )


def attempt(name: str, target: MigrationTarget, bubble_url: str, changes: Changes, job: str, **env: str) -> Attempt:
    before = len(request_log(bubble_url))
    run = run_with_cli(target, 3600, (*JOB, job), MIGRATION_DELETED_RECORDS="delete", **env)
    made = request_log(bubble_url)[before:]
    result = Attempt(
        name,
        f"dagster job execute -j {job}",
        run.success,
        round(run.total_seconds, 1),
        len(made),
        sum(1 for r in made if is_census(r)),
        deleted_rows(target.database_url, changes),
        report_stages(target.report_dir),
    )
    stages = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in result.stages.items())
    print(
        f"  {name}: {result.seconds} s ({stages}), {result.requests} requests ({result.census_requests} census), "
        f"{result.deleted_rows} of {len(changes.deleted)} deleted rows gone, success={result.success}",
        flush=True,
    )
    return result


def report_stages(report_dir: Path) -> dict[str, float]:
    """The stage seconds of the newest report JSON: the run's downtime, as its reports state it."""
    reports = sorted(report_dir.glob("report_*.json"), key=lambda path: path.stat().st_mtime)
    return json.loads(reports[-1].read_text())["timing"]["stages"] if reports else {}


def roll_back(target: MigrationTarget) -> None:
    run = run_with_cli(target, 3600, (*JOB, "rollback_migration"))
    if not run.success:
        raise RuntimeError("the rollback between two attempts failed: see dagster_cli.log in the run's folder")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cutover", description=__doc__.split("\n\n")[0])
    add_scale_arguments(p, users=20_000, bookings=200_000, payments=200_000, posts=50_000)
    p.add_argument("--legacy-share", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--latency", type=float, default=0.15, help="seconds the Bubble server waits per request")
    p.add_argument("--server", choices=("embedded", "debian"), default="debian")
    p.add_argument("--changed-share", type=float, default=0.001)
    p.add_argument("--added", type=int, default=200)
    p.add_argument("--deleted", type=int, default=10)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/cutover.json"))
    args = p.parse_args(argv)
    with ExitStack() as stack:
        server_url, info = stack.enter_context(postgres_server(args.server, timeout=STARTUP_TIMEOUT))
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cb_cutover_data_")))
        data = generate_data_set(scale_of(args), data_dir, STARTUP_TIMEOUT)
        bubble = stack.enter_context(bubble_server(data_dir, args.latency, STARTUP_TIMEOUT))
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cb_cutover_")))
        target = MigrationTarget(bubble.url, stack.enter_context(fresh_database(server_url)), work, None)
        print(
            f"{info.name}: PostgreSQL {info.version}; {data.records:,} records; {args.latency * 1000:.0f} ms per "
            "request",
            flush=True,
        )
        first = run_with_cli(target, 7200, EVERYTHING)
        full_requests = len(request_log(bubble.url))
        print(f"  full migration: {first.total_seconds:.1f} s, {full_requests} requests", flush=True)
        settle(target.database_url)
        changes = change_bubble(
            data_dir, bubble.url, share=args.changed_share, added=args.added, deleted=args.deleted, seed=args.seed
        )
        print(
            f"Bubble changed: {changes.edited} edited, {changes.added} added, {len(changes.deleted)} deleted",
            flush=True,
        )
        attempts = [attempt("cutover", target, bubble.url, changes, "cutover")]
        roll_back(target)
        attempts.append(
            attempt(
                "cutover at 1,000 requests/min",
                target,
                bubble.url,
                changes,
                "cutover",
                MIGRATION_REQUESTS_PER_MINUTE="1000",
            )
        )
        roll_back(target)
        attempts.append(attempt("full export instead", target, bubble.url, changes, "full_migration"))
    census, full = attempts[0], attempts[-1]
    figures = {
        "server": asdict(info),
        "scale": {name: getattr(args, name) for name in SCALE_NAMES},
        "records": data.records,
        "latency_seconds": args.latency,
        "full_migration": {"seconds": round(first.total_seconds, 1), "requests": full_requests},
        "changes": {"edited": changes.edited, "added": changes.added, "deleted": len(changes.deleted)},
        "attempts": [asdict(a) for a in attempts],
        "census_requests_share_of_full_export": round(census.census_requests / full_requests, 4),
        "cutover_vs_full_export_seconds": round(full.seconds / census.seconds, 2) if census.seconds else None,
    }
    print(
        json.dumps({k: figures[k] for k in ("census_requests_share_of_full_export", "cutover_vs_full_export_seconds")})
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written to {args.out}")
    return figures


if __name__ == "__main__":
    figures = main()
    sys.exit(0 if all(a["success"] for a in figures["attempts"]) else 1)
