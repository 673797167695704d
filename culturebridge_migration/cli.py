"""`culturebridge`: the project's console script, for what is not a Dagster run.

    culturebridge discover [--write-field-map FILE]   the app's types and fields; a starter MIGRATION_FIELD_MAP
    culturebridge db url | psql [ARGS] | stop          Phase 2's address, psql on it (with psql's own ARGS),
                                                       stop the embedded server
    culturebridge capture install | remove | status    record the Phase 2 app's changes from cutover for the
                                                       fallback (the cutover installs it); stop when the
                                                       fallback window ends; what is captured
    culturebridge instance init                        create Dagster's storage in DAGSTER_HOME, once, before
                                                       runs that may start at the same time
    culturebridge password-bridge serve [--port N] [--host H]   the login bridge over HTTP (bearer
                                                       MIGRATION_PASSWORD_BRIDGE_SECRET)
    culturebridge password-bridge try EMAIL            whether EMAIL can log in, and how (the password is read
                                                       from the terminal)

It reads the same environment as the migration (BUBBLE_API_URL, BUBBLE_API_KEY, DATABASE_URL); with none
set it uses the bundled sample and the embedded PostgreSQL in ./.culturebridge/pgdata.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from culturebridge_migration.bridge.config import config_from_env
from culturebridge_migration.bridge.login import PasswordBridge, describe_result
from culturebridge_migration.bridge.service import BridgeService, check_secret
from culturebridge_migration.fake_bubble.sample import SAMPLE_API_KEY, sample_api
from culturebridge_migration.loading import change_capture
from culturebridge_migration.loading.database import DatabaseUnavailable, connect
from culturebridge_migration.loading.embedded_server import EMBEDDED_DIR, embedded_server_url, stop_embedded_server
from culturebridge_migration.loading.phase2_db import Phase2Database, Schemas
from culturebridge_migration.loading.schema_evolution import SchemaDiffers, SchemaOwner, ensure_schema
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.mapping.reverse import PHASE2_ID_FIELD
from culturebridge_migration.redaction import redact_url
from culturebridge_migration.sources import schema as bubble_schema
from culturebridge_migration.sources.bubble_api import BubbleClient, BubbleError
from culturebridge_migration.sources.starter_map import StarterMap, starter_field_map


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="culturebridge", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    discover = commands.add_parser("discover", help="list the app's types and fields; write a starter field map")
    discover.add_argument("--write-field-map", type=Path, metavar="FILE", help="write a starter MIGRATION_FIELD_MAP")
    db = commands.add_parser("db", help="the Phase 2 database")
    db.add_argument("action", choices=("url", "psql", "stop"))
    db.add_argument("psql_args", nargs=argparse.REMAINDER, help="for psql: its own arguments, e.g. -c 'SELECT 1'")
    capture = commands.add_parser("capture", help="the Phase 2 app's changes since cutover, for the fallback")
    capture.add_argument("action", choices=("install", "remove", "status"))
    instance = commands.add_parser("instance", help="Dagster's storage in DAGSTER_HOME")
    instance.add_argument("action", choices=("init",))
    _bridge_parser(commands)
    args = parser.parse_args(argv)
    try:
        if args.command == "instance":
            return _init_instance()
        if args.command == "password-bridge":
            return _password_bridge(args)
        if args.command == "capture":
            return _capture(args.action)
        return _discover(args.write_field_map) if args.command == "discover" else _db(args.action, args.psql_args)
    except (BubbleError, DatabaseUnavailable, SchemaDiffers, OSError, ValueError) as exc:
        print(f"culturebridge: {exc}", file=sys.stderr)
        return 1


# -- discover ---------------------------------------------------------------------------------------
@contextmanager
def _client() -> Iterator[BubbleClient]:
    url, key = os.environ.get("BUBBLE_API_URL"), os.environ.get("BUBBLE_API_KEY")
    if url and not key:
        raise ValueError("BUBBLE_API_URL is set but BUBBLE_API_KEY is not: set it to an admin API token")
    if url:
        client = BubbleClient(url, key or "")
        try:
            yield client
        finally:
            client.close()
        return
    with sample_api(300) as sample_url:
        client = BubbleClient(sample_url, SAMPLE_API_KEY)
        try:
            yield client
        finally:
            client.close()


def _app_schema(client: BubbleClient) -> bubble_schema.BubbleSchema:
    """The app's schema from /meta; when it is hidden, from a page of each type the field table expects."""
    document, note = client.meta()
    return bubble_schema.app_schema(document, note, lambda: _first_page_keys(client), "the first page of each type")


def _first_page_keys(client: BubbleClient) -> dict[str, dict[str, int]]:
    keys: dict[str, dict[str, int]] = {}
    for entity in ENTITIES.values():
        try:
            page = client.fetch_page(entity.bubble_type, 0)
        except BubbleError:
            continue  # the app names the type otherwise: listed as missing
        keys[entity.bubble_type] = {k: 1 for record in page.results for k in record}
    return keys


def _discover(target: Path | None) -> int:
    with _client() as client:
        schema = _app_schema(client)
        starter = starter_field_map(schema, ENTITIES)
    print(_describe(schema, starter))
    if target is not None:
        target.write_text(json.dumps(starter.field_map, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nWrote {target}: use it with MIGRATION_FIELD_MAP={target}")
    return 0


def _describe(schema: bubble_schema.BubbleSchema, starter: StarterMap) -> str:
    lines = [f"Bubble schema from {schema.source}" + (f" ({schema.note})" if schema.note else ""), ""]
    migrated = {e.bubble_type for e in ENTITIES.values()} | {m.get("_type", "") for m in starter.field_map.values()}
    for name, bubble_type in schema.types.items():
        role = "migrated" if name in migrated else "not migrated: kept verbatim in bubble_records"
        lines.append(f"{name} ({bubble_type.display}, {len(bubble_type.fields)} fields): {role}")
    lines.append("")
    for entity, columns in starter.matched.items():
        pairs = ", ".join(f"{column} <- {key}" for column, key in columns.items())
        total = len(ENTITIES[entity].fields)
        lines.append(f"{entity} <- {starter.types[entity]}: {len(columns)} of {total} columns matched: {pairs}")
    if starter.missing_types:
        lines += ["", f'No Bubble type found for: {", ".join(starter.missing_types)} (set "_type" in the map)']
    for entity, columns in starter.unmatched_columns.items():
        lines.append(f"{entity}: no field of the app matches {', '.join(columns)} (those columns stay empty)")
    for name, fields in starter.unmatched_fields.items():
        lines.append(f"{name}: fields no column takes, kept in bubble_extra: {', '.join(fields)}")
    if starter.without_phase2_id:
        lines += [
            "",
            f"The fallback needs a text field {PHASE2_ID_FIELD} on: {', '.join(starter.without_phase2_id)} "
            "(add it in the Bubble editor before cutover; see the README's fallback section)",
        ]
    else:
        lines += ["", f"{PHASE2_ID_FIELD} is on every migrated type: the fallback can write back to Bubble"]
    return "\n".join(lines)


# -- password-bridge --------------------------------------------------------------------------------
def _bridge_parser(commands: argparse._SubParsersAction) -> None:
    bridge = commands.add_parser("password-bridge", help="the login bridge: users keep their Bubble passwords")
    actions = bridge.add_subparsers(dest="action", required=True)
    serve = actions.add_parser("serve", help="serve POST /v1/login and GET /v1/health")
    serve.add_argument("--port", type=int, default=8780)
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default loopback: put a proxy in front)")
    attempt = actions.add_parser("try", help="whether a user can log in, and by which path (stores a hash on success)")
    attempt.add_argument("email")


def _password_bridge(args: argparse.Namespace) -> int:
    if args.action == "serve":
        check_secret(os.environ.get("MIGRATION_PASSWORD_BRIDGE_SECRET"))  # before anything else: never open
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return _serve_bridge(PasswordBridge(config_from_env()), args.host, args.port)
    password = getpass.getpass(f"Password of {args.email} (not echoed): ")
    result = PasswordBridge(config_from_env()).login(args.email, password, source="culturebridge password-bridge try")
    print(f"{args.email}: {describe_result(result)}")
    return 0 if result.ok else 1


def _serve_bridge(bridge: PasswordBridge, host: str, port: int) -> int:
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with BridgeService(bridge, os.environ["MIGRATION_PASSWORD_BRIDGE_SECRET"], host, port) as service:
        end = bridge.window_end()
        # Flushed: a parent reading the first line through a pipe must not wait for a buffer to fill.
        print(f"password bridge on {service.url} (window closes {end.isoformat() if end else 'now'})", flush=True)
        with suppress(KeyboardInterrupt):
            stopped.wait()
    return 0


# -- capture ----------------------------------------------------------------------------------------
def _capture(action: str) -> int:
    url = os.environ.get("DATABASE_URL") or embedded_server_url(EMBEDDED_DIR)
    owner = SchemaOwner(os.environ.get("MIGRATION_SCHEMA_OWNER") or SchemaOwner.MIGRATION.value)
    with connect(url) as conn:
        ensure_schema(conn, Schemas(), owner=owner)  # the capture's table and trigger function come with it
        db = Phase2Database(conn)
        if action == "install":
            tables = change_capture.install_capture(db)
            print(f"Capturing the app's changes to {', '.join(tables)} in migration.captured_changes")
        elif action == "remove":
            change_capture.remove_capture(db)
            print("Capture removed; what was captured stays in migration.captured_changes")
        status = change_capture.capture_status(db)
    tables = ", ".join(status.tables) or "none"
    print(f"capture on: {tables}; {status.changes} change(s) captured")
    return 0


# -- instance ---------------------------------------------------------------------------------------
def _init_instance() -> int:
    """Create (or upgrade) the storage of the Dagster instance (DAGSTER_HOME, else the project folder's) under a lock.

    Dagster creates its SQLite storage on first use without a lock: two runs starting at once on a new
    instance can both stamp it and leave it unusable ("more than one head"). Done once first, under
    a lock so concurrent inits are safe too, later runs find it made.
    """
    import fcntl

    import dagster as dg

    home = os.environ.get("DAGSTER_HOME")
    if home:
        Path(home).mkdir(parents=True, exist_ok=True)
        where, lock_dir, open_instance = home, Path(home), dg.DagsterInstance.get
    elif Path("dagster.yaml").is_file():  # the project folder's instance (see its dagster.yaml)
        where, lock_dir = "this folder (dagster.yaml)", Path(".culturebridge")
        lock_dir.mkdir(exist_ok=True)
        open_instance = lambda: dg.DagsterInstance.from_config(os.getcwd())  # noqa: E731
    else:
        print("DAGSTER_HOME is not set and no dagster.yaml is here: each dagster command uses a temporary instance.")
        return 0
    with open(lock_dir / ".culturebridge-init.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open_instance() as instance:
            instance.upgrade()
    print(f"Dagster storage ready in {where}")
    return 0


# -- db ---------------------------------------------------------------------------------------------
def _db(action: str, psql_args: list[str]) -> int:
    configured = os.environ.get("DATABASE_URL")
    if action == "stop":
        if configured:
            print("DATABASE_URL is set: that server is yours to stop; there is no embedded server to stop.")
            return 0
        print(
            "Stopped the embedded PostgreSQL." if stop_embedded_server(EMBEDDED_DIR) else "No embedded PostgreSQL runs."
        )
        return 0
    url = configured or embedded_server_url(EMBEDDED_DIR)
    if action == "url":
        print(redact_url(url) if configured else url)
        return 0
    psql = shutil.which("psql")
    if psql is None:
        raise OSError(
            f"psql is not installed (Debian: apt-get install postgresql-client); connect to {redact_url(url)}"
        )
    os.execv(psql, [psql, url, *psql_args])
    return 0  # not reached: psql took the process


if __name__ == "__main__":
    raise SystemExit(main())
