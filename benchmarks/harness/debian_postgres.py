"""Debian's PostgreSQL (`apt-get install postgresql`), started from `/usr/lib/postgresql/<major>/bin` in a
temporary folder, listening on a Unix socket there (no TCP port to collide on), stopped and deleted after.

initdb refuses to run as root: as root, initdb and the server run as the `postgres` system user the
Debian package creates (`subprocess`'s `user=`), and the database superuser is `postgres` either way.
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.harness.waiting import child_environment, run_command

DEBIAN_ROOT = Path("/usr/lib/postgresql")
SYSTEM_USER = "postgres"  # created by Debian's postgresql-common
SUPERUSER = "postgres"
PORT = 5432  # only names the socket file; nothing listens on TCP


def debian_bin_dir() -> Path | None:
    """The bin folder of the newest PostgreSQL major Debian installed, or None."""
    majors = [p.parent for p in DEBIAN_ROOT.glob("*/bin/pg_ctl") if p.parent.parent.name.isdigit()]
    return max(majors, key=lambda p: int(p.parent.name), default=None)


def _run_as() -> dict[str, Any]:
    """subprocess options that run PostgreSQL's programs as a user they accept."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise RuntimeError(
            f"running as root, and there is no {SYSTEM_USER!r} user to run Debian's PostgreSQL as"
        ) from None
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


@contextmanager
def debian_server(timeout: float) -> Iterator[tuple[str, str]]:
    """initdb + pg_ctl start in a temporary folder; yields the server URL and its description."""
    bin_dir = debian_bin_dir()
    if bin_dir is None:
        raise RuntimeError(
            f"Debian's PostgreSQL is not installed (no {DEBIAN_ROOT}/*/bin/pg_ctl): apt-get install postgresql"
        )
    run_as = _run_as()
    folder = Path(tempfile.mkdtemp(prefix=f"cb_bench_pg{bin_dir.parent.name}_"))
    try:
        if run_as:
            os.chown(folder, run_as["user"], run_as["group"])
        data, log = folder / "data", folder / "server.log"
        options = {"timeout": timeout, "log": folder / "commands.log", "cwd": folder, "env": child_environment()}
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "--username", SUPERUSER, "--auth=trust", "--encoding=UTF8"]
        run_command(initdb, what=f"initdb of {data}", **options, **run_as)
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nlisten_addresses = ''\nunix_socket_directories = '{folder}'\nport = {PORT}\n")
        pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-t", str(int(timeout))]
        options["timeout"] = timeout + 30  # pg_ctl gives up first, and says why in the server's log
        try:
            ready = f"Debian's PostgreSQL in {data} to be ready (its log: {log})"
            run_command([*pg_ctl, "-l", str(log), "start"], what=ready, **options, **run_as)
            yield f"postgresql://{SUPERUSER}@/postgres?host={folder}&port={PORT}", f"Debian's PostgreSQL from {bin_dir}"
        finally:
            if (data / "postmaster.pid").exists():
                stop = f"Debian's PostgreSQL in {data} to stop"
                run_command([*pg_ctl, "-m", "fast", "stop"], what=stop, **options, **run_as)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks.harness.debian_postgres -- COMMAND...`: COMMAND with DATABASE_URL on a fresh server.

    CI's second pass: the tests again on Debian's PostgreSQL, started here and gone after.
    """
    import subprocess
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    command = args[args.index("--") + 1 :] if "--" in args else args
    if not command:
        print("usage: python -m benchmarks.harness.debian_postgres -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    with debian_server(timeout=120) as (url, description):
        print(f"{description}: DATABASE_URL={url}", flush=True)
        return subprocess.run(command, env={**os.environ, "DATABASE_URL": url}).returncode


if __name__ == "__main__":
    raise SystemExit(main())
