"""Benchmark of the login bridge: logins per second, and what Bubble's answer adds to a first login.

    python -m benchmarks.bridge_logins [--users 40 --latency 0.15 --workers 4]

The bundled sample's users are loaded into a fresh embedded PostgreSQL without any password (as a
real Bubble app leaves them), and the local Bubble server answers the login workflow after
`--latency` seconds, as Bubble would. Each user then logs in twice through `PasswordBridge.login`,
`--workers` at a time: the first login asks Bubble and stores a bcrypt hash (cost 12); the second is
checked against that hash alone. Both are bound by bcrypt (about 0.25 s of one core per hash or check).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from benchmarks.harness.postgres import embedded_server
from culturebridge_migration.bridge.config import BridgeConfig, Limits
from culturebridge_migration.bridge.login import PasswordBridge
from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.fake_bubble.sample import sample_login_password, sample_server_args
from culturebridge_migration.loading.database import connect
from culturebridge_migration.loading.migrate import migrate_entity
from culturebridge_migration.loading.phase2_db import Phase2Database, Schemas
from culturebridge_migration.loading.schema_evolution import ensure_schema
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.sources.sample_data import generate_sample

KEY = "bridge-benchmark-key"


def _timed_logins(logins: list[Callable[[], bool]], workers: int) -> tuple[float, list[float], int]:
    """Wall seconds, each login's seconds, and how many succeeded."""

    def one(login: Callable[[], bool]) -> tuple[float, bool]:
        clock = time.perf_counter()
        ok = login()
        return time.perf_counter() - clock, ok

    clock = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, logins))
    return time.perf_counter() - clock, [seconds for seconds, _ in results], sum(ok for _, ok in results)


def _login(bridge: PasswordBridge, email: str, password: str) -> bool:
    return bridge.login(email, password).ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=40, help="sample users who log in (each twice)")
    parser.add_argument("--latency", type=float, default=0.15, help="seconds Bubble takes to answer")
    parser.add_argument("--workers", type=int, default=4, help="logins at once")
    args = parser.parse_args()

    sample = generate_sample(args.users)
    users = [u for u in sample.records["users"] if "Legacy Password" not in u]
    with embedded_server(120) as (url, _), FakeBubble(**sample_server_args(sample), api_key=KEY) as bubble:
        with connect(url) as conn:
            ensure_schema(conn, Schemas())
            migrate_entity(Phase2Database(conn), ENTITIES["users"], users, run_id="cutover-1", job_name="cutover")
            loaded = conn.execute("SELECT bubble_id, email FROM users WHERE password_hash IS NULL").fetchall()
        bubble.latency = args.latency
        # Limits far above the run's own tries: the benchmark measures logins, not the backoff.
        bridge = PasswordBridge(
            BridgeConfig(url, bubble.url, KEY, limits=Limits(account_free=100, address_free=10_000))
        )
        bridge.prepare()
        logins = [partial(_login, bridge, email, sample_login_password(bubble_id)) for bubble_id, email in loaded]
        first = _timed_logins(logins, args.workers)
        again = _timed_logins(logins, args.workers)

    print(
        f"login bridge: {len(logins)} users, {args.workers} at once, Bubble answering in {args.latency * 1000:.0f} ms"
    )
    for name, (wall, each, ok) in (
        ("first login (asks Bubble, stores a hash)", first),
        ("next login (Phase 2 hash)", again),
    ):
        print(
            f"  {name}: {ok}/{len(each)} ok, {len(each) / wall:.1f} logins/s, "
            f"median {statistics.median(each) * 1000:.0f} ms, slowest {max(each) * 1000:.0f} ms"
        )
    added = statistics.median(first[1]) - statistics.median(again[1])
    print(f"  Bubble's call adds {added * 1000:.0f} ms to a first login's median")


if __name__ == "__main__":
    main()
