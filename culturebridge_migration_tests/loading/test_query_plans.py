"""The plans PostgreSQL picks right after a bulk load, before autovacuum has looked at anything.

Statistics from before a load (the id map analyzed when it held users only, then 30,000 bookings
loaded) can make the planner nest a loop over a scan of the export's ids: quadratic, minutes
instead of milliseconds at scale (68 s instead of 3 s here on PostgreSQL 15 before the fix), and
never visible in a small test. Here autovacuum is off on every table, so the only statistics are the
ones the migration gathers itself; every query the load, the deletion sweep, the checks and the
rollback run is explained just before it runs, and none may scan a large relation in full once per
row of another (a nested loop over two large inputs with a sequential scan inside). No timing is
asserted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from culturebridge_migration.loading.deletions import DeletedRecords
from culturebridge_migration.loading.migrate import migrate_entity
from culturebridge_migration.loading.phase2_db import Phase2Database, Schemas
from culturebridge_migration.loading.rollback import rollback_run
from culturebridge_migration.loading.schema_evolution import ensure_schema
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.sources.export_store import ExportManifest, iter_records, read_manifest, write_export
from culturebridge_migration.sources.sample_data import generate_sample
from culturebridge_migration.validation.checks import CheckInputs, staged_export, table_checks
from culturebridge_migration.validation.export_digest import ExportDigest

pytestmark = pytest.mark.integration
BOOKINGS = 30_000
LARGE = 1_000  # rows: a relation this big scanned once per outer row is the quadratic plan


class PlanRecorder(Phase2Database):
    """The Phase 2 database object, asking PostgreSQL for each query's plan just before running it."""

    def __init__(self, conn: psycopg.Connection) -> None:
        super().__init__(conn, Schemas())
        self.plans: list[tuple[str, dict]] = []

    def execute(self, query: sql.Composable | str, params: object = None) -> psycopg.Cursor:
        text = query.as_string(self.conn) if isinstance(query, sql.Composable) else query
        head = text.lstrip().split(None, 1)[0].upper() if text.strip() else ""
        if head in ("SELECT", "WITH", "INSERT", "UPDATE", "DELETE") and not text.lstrip().startswith("SELECT pg_"):
            (plan,) = self.conn.execute(f"EXPLAIN (FORMAT JSON) {text}", params).fetchone()[0]  # type: ignore[arg-type]
            self.plans.append((text, plan["Plan"]))
        return super().execute(query, params)


def nested_scans(node: dict, large: set[str]) -> list[str]:
    """Large relations scanned in full once per row of another large one: a nested loop with a large relation
    on its outer side and a sequential scan of one on its inner side."""
    found = []
    if node["Node Type"] == "Nested Loop":
        sides = {child.get("Parent Relationship"): child for child in node["Plans"]}
        if any(name in large for name in _relations(sides["Outer"])):
            found += [name for name in _relations(sides["Inner"], scans=("Seq Scan",)) if name in large]
    for child in node.get("Plans", []):
        found += nested_scans(child, large)
    return found


def _relations(node: dict, scans: tuple[str, ...] | None = None) -> Iterator[str]:
    """The relations a plan reads (with `scans`: only through those node types)."""
    if "Relation Name" in node and (scans is None or node["Node Type"] in scans):
        yield node["Relation Name"]
    for child in node.get("Plans", []):
        yield from _relations(child, scans)


def export(folder: Path, entity: str, records: list[dict]) -> ExportManifest:
    count = len(records)
    bubble_type = ENTITIES[entity].bubble_type
    write_export(folder, records, ExportManifest(entity, bubble_type, "test", count, count, count, 1, "now", "t"))
    return read_manifest(folder, entity)


def load_and_check(db: Phase2Database, folder: Path, entity: str, records: list[dict], run_id: str) -> None:
    """What a table step does: load the full export in delete mode, then every check of the table."""
    manifest = export(folder, entity, records)
    digest = ExportDigest(ENTITIES[entity], 50, seed=1)
    migrate_entity(
        db,
        ENTITIES[entity],
        digest.watch(iter_records(folder, entity, manifest.export_id)),
        run_id=run_id,
        job_name="test",
        deleted_records=DeletedRecords.DELETE,
        export=manifest,
        still_in_bubble=lambda entity, ids: set(),  # Bubble answers 404 for each: the rows are deleted
    )
    inputs = CheckInputs(db, ENTITIES[entity], digest, manifest, 25, DeletedRecords.DELETE)
    with staged_export(inputs):
        for check in table_checks(ENTITIES[entity]):
            check.evaluate(inputs)


def test_right_after_a_bulk_load_no_query_loops_over_a_scan_of_a_large_table(database_url: str, tmp_path: Path) -> None:
    sample = generate_sample(2_000, bookings=BOOKINGS, payments=0, posts=0, comments=0, resources=0)
    users, bookings = sample.records["users"], sample.records["bookings"]
    with psycopg.connect(database_url) as conn:
        ensure_schema(conn, Schemas())
        tables = conn.execute(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname IN ('public', 'migration')"
        ).fetchall()
        for (table,) in tables:
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off, toast.autovacuum_enabled = off)")
        conn.commit()
        db = PlanRecorder(conn)
        load_and_check(db, tmp_path / "first", "users", users, "run-1")
        conn.execute("ANALYZE")  # autovacuum's last look: the id map holds users only, no booking
        conn.commit()
        # Then the bookings, 30,000 at once, and a full run again with ten of them gone from Bubble.
        load_and_check(db, tmp_path / "first", "bookings", bookings, "run-1")
        load_and_check(db, tmp_path / "full", "users", users, "run-2")
        load_and_check(db, tmp_path / "full", "bookings", bookings[10:], "run-2")
        conn.commit()
        sizes = {
            table.split(".")[1]: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for (table,) in tables
        }
        rollback_run(db, "run-2")
    large = {name for name, rows in sizes.items() if rows >= LARGE} | {"exported_ids"}
    assert {"bookings", "id_map", "row_changes"} <= large  # the test is at the scale it claims
    explained = " ".join(text for text, _ in db.plans)
    assert "exported_ids" in explained and "NOT EXISTS" in explained  # the sweep and row counts were seen
    quadratic = {text: scans for text, plan in db.plans if (scans := nested_scans(plan, large))}
    assert not quadratic, "\n\n".join(f"{scans}: {text}" for text, scans in quadratic.items())
