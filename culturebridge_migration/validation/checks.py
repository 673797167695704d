"""Validation rules as set-based SQL over Phase 2, independent of Dagster.

Each rule's query returns the Bubble ids of the offending rows, so a failure says how many and
which. Severity:
- ERROR: Phase 2 is wrong or incomplete (lost rows, broken references, values the app cannot
  handle). Cutting over with it would break the app or lose data.
- WARN: Phase 2 holds exactly what Bubble held, but Bubble's data itself needs a person's look
  (a client without a profile, a confirmed booking nobody paid). It does not stop cutover.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import psycopg
from psycopg import sql

from culturebridge_migration.loading import loader
from culturebridge_migration.loading.deletions import DeletedRecords, find_gone, stage_exported_ids
from culturebridge_migration.loading.loader import Schemas
from culturebridge_migration.mapping.entities import Entity, Kind
from culturebridge_migration.mapping.mapper import get_value, map_records, ref_id, row_columns
from culturebridge_migration.mapping.values import EMAIL_PATTERN

SAMPLE_IDS = 10  # how many offending ids a failing check shows


@dataclass(frozen=True)
class Rule:
    name: str
    entity: str  # the asset the check is on: the one whose load completes the data it looks at
    severity: str  # "ERROR" or "WARN"
    description: str  # for the asset-check dashboard, in words a non-engineer understands
    query: str  # returns offending bubble_ids; {app} is the application schema


@dataclass
class Outcome:
    passed: bool
    offending: int
    sample_ids: list[str] = field(default_factory=list)
    details: dict[str, object] = field(default_factory=dict)


def _orphans(table: str, column: str, parent: str, nullable: bool = False) -> str:
    present = f"c.{column} IS NOT NULL AND " if nullable else ""
    return (
        f"SELECT c.bubble_id FROM {{app}}.{table} c LEFT JOIN {{app}}.{parent} p ON p.id = c.{column} "
        f"WHERE {present}p.id IS NULL"
    )


RULES: tuple[Rule, ...] = (
    Rule(
        "valid_emails",
        "users",
        "ERROR",
        "Every user has a well-formed, lower-case email address (people log in with it).",
        f"SELECT bubble_id FROM {{app}}.users WHERE email IS NULL OR email !~ '{EMAIL_PATTERN}' OR email <> lower(email)",
    ),
    Rule(
        "no_orphaned_client_profiles",
        "client_profiles",
        "ERROR",
        "Every client profile belongs to a user that exists in Phase 2.",
        _orphans("client_profiles", "user_id", "users"),
    ),
    Rule(
        "clients_have_profiles",
        "client_profiles",
        "WARN",
        "Every user with the client role has a client profile (Bubble allowed clients without one).",
        "SELECT u.bubble_id FROM {app}.users u WHERE u.role = 'client' "
        "AND NOT EXISTS (SELECT 1 FROM {app}.client_profiles p WHERE p.user_id = u.id)",
    ),
    Rule(
        "no_orphaned_coach_profiles",
        "coach_profiles",
        "ERROR",
        "Every coach profile belongs to a user that exists in Phase 2.",
        _orphans("coach_profiles", "user_id", "users"),
    ),
    Rule(
        "coaches_have_profiles",
        "coach_profiles",
        "WARN",
        "Every user with the coach role has a coach profile (Bubble allowed coaches without one).",
        "SELECT u.bubble_id FROM {app}.users u WHERE u.role = 'coach' "
        "AND NOT EXISTS (SELECT 1 FROM {app}.coach_profiles p WHERE p.user_id = u.id)",
    ),
    Rule(
        "hourly_rate_in_range",
        "coach_profiles",
        "ERROR",
        "Every coach's hourly rate is between 25 and 500 USD.",
        "SELECT bubble_id FROM {app}.coach_profiles WHERE hourly_rate NOT BETWEEN 25 AND 500",
    ),
    Rule(
        "no_orphaned_bookings",
        "bookings",
        "ERROR",
        "Every booking's client and coach exist in Phase 2.",
        f"{_orphans('bookings', 'client_id', 'users')} UNION {_orphans('bookings', 'coach_id', 'users')}",
    ),
    Rule(
        "duration_positive",
        "bookings",
        "ERROR",
        "Every booking lasts more than zero minutes.",
        "SELECT bubble_id FROM {app}.bookings WHERE duration_minutes IS NULL OR duration_minutes <= 0",
    ),
    Rule(
        "no_orphaned_payments",
        "payments",
        "ERROR",
        "Every payment belongs to a booking that exists in Phase 2.",
        _orphans("payments", "booking_id", "bookings"),
    ),
    Rule(
        "amount_positive",
        "payments",
        "ERROR",
        "Every payment is for more than zero.",
        "SELECT bubble_id FROM {app}.payments WHERE amount IS NULL OR amount <= 0",
    ),
    Rule(
        "confirmed_bookings_have_payment",
        "payments",
        "WARN",
        "Every confirmed booking has a payment (Bubble allowed confirming without one).",
        "SELECT b.bubble_id FROM {app}.bookings b WHERE b.status = 'confirmed' "
        "AND NOT EXISTS (SELECT 1 FROM {app}.payments p WHERE p.booking_id = b.id)",
    ),
    Rule(
        "no_orphaned_posts",
        "posts",
        "ERROR",
        "Every community post's author exists in Phase 2.",
        _orphans("community_posts", "author_id", "users"),
    ),
    Rule(
        "no_orphaned_comments",
        "comments",
        "ERROR",
        "Every comment's post and author exist in Phase 2.",
        f"{_orphans('community_comments', 'post_id', 'community_posts')} "
        f"UNION {_orphans('community_comments', 'author_id', 'users')}",
    ),
    Rule(
        "no_orphaned_resources",
        "resources",
        "ERROR",
        "Every resource's uploader, when it has one, exists in Phase 2.",
        _orphans("resources", "uploaded_by", "users", nullable=True),
    ),
)

ROW_COUNTS_DESCRIPTION = (
    "Nothing was lost: every exported record was either loaded or rejected with a reason, "
    "and every loaded record is in the Phase 2 table."
)
SAMPLE_DESCRIPTION = "A random sample of loaded rows equals, field by field, what the Bubble export says after mapping."


def run_rule(conn: psycopg.Connection, schemas: Schemas, rule: Rule) -> Outcome:
    query = rule.query.replace("{app}", sql.Identifier(schemas.app).as_string(conn))
    ids = [bubble_id for (bubble_id,) in conn.execute(f"SELECT bubble_id FROM ({query}) q ORDER BY 1")]
    return Outcome(not ids, len(ids), ids[:SAMPLE_IDS])


def latest_run(conn: psycopg.Connection, schemas: Schemas, entity: Entity) -> str | None:
    row = conn.execute(
        sql.SQL("SELECT run_id FROM {} WHERE entity = %s ORDER BY finished_at DESC LIMIT 1").format(
            schemas.bookkeeping("entity_runs")
        ),
        (entity.name,),
    ).fetchone()
    return row[0] if row else None


def check_row_counts(conn: psycopg.Connection, schemas: Schemas, entity: Entity, exported_in_file: int) -> Outcome:
    """export file rows = exported = loaded + rejected, and loaded = rows in the table for the last load."""
    run_id = latest_run(conn, schemas, entity)
    if run_id is None:
        return Outcome(False, exported_in_file, details={"problem": f"{entity.name} was never loaded"})
    exported, loaded = conn.execute(
        sql.SQL("SELECT exported, loaded FROM {} WHERE run_id = %s AND entity = %s").format(
            schemas.bookkeeping("entity_runs")
        ),
        (run_id, entity.name),
    ).fetchone()
    rejected = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE run_id = %s AND entity = %s").format(schemas.bookkeeping("rejects")),
        (run_id, entity.name),
    ).fetchone()[0]
    missing = [
        bubble_id
        for (bubble_id,) in conn.execute(
            sql.SQL(
                "SELECT m.bubble_id FROM {id_map} m LEFT JOIN {table} t ON t.id = m.phase2_id AND t.bubble_id = m.bubble_id"
                " WHERE m.entity = %s AND m.run_id = %s AND t.id IS NULL ORDER BY 1"
            ).format(id_map=schemas.bookkeeping("id_map"), table=schemas.table(entity)),
            (entity.name, run_id),
        )
    ]
    in_table = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE entity = %s AND run_id = %s").format(schemas.bookkeeping("id_map")),
        (entity.name, run_id),
    ).fetchone()[0] - len(missing)
    details = {
        "run_id": run_id,
        "export_file_rows": exported_in_file,
        "exported": exported,
        "loaded": loaded,
        "rejected": rejected,
        "rows_in_table_for_run": in_table,
    }
    unaccounted = abs(exported - loaded - rejected) + abs(exported_in_file - exported) + abs(loaded - in_table)
    return Outcome(unaccounted == 0, unaccounted, missing[:SAMPLE_IDS], details)


DELETED_DESCRIPTION = (
    "Records migrated earlier that are gone from Bubble (Bubble keeps no tombstones) and still in Phase 2. "
    "The `deleted_records` setting says what a full export does with them: report (default: they stay "
    "until a person decides), flag (listed in migration.deleted_in_bubble) or delete (rows still "
    "referenced stay, flagged) (WARN)."
)


def check_deleted_in_bubble(
    conn: psycopg.Connection, schemas: Schemas, entity: Entity, exported_ids: list[str], mode: DeletedRecords
) -> Outcome:
    """Phase 2 rows of migrated records whose Bubble id is missing from a full export."""
    with conn.transaction():
        stage_exported_ids(conn, exported_ids)
        gone = find_gone(conn, schemas, entity)
        flagged = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE entity = %s").format(schemas.bookkeeping("deleted_in_bubble")),
            (entity.name,),
        ).fetchone()[0]
    return Outcome(not gone, len(gone), gone[:SAMPLE_IDS], {"deleted_records": str(mode), "flagged": flagged})


def check_sample(
    conn: psycopg.Connection,
    schemas: Schemas,
    entities: Mapping[str, Entity],
    entity: Entity,
    candidates: list[dict],
    *,
    size: int,
) -> Outcome:
    """Map a random sample of exported records again and compare with the rows in Phase 2.

    `candidates` is a random draw of exported records (rejected ones among them, so it should hold
    about twice `size`); up to `size` of those that were loaded are compared. Reads only the
    sampled rows, so its cost does not grow with the table.
    """
    columns = row_columns(entity)
    drawn = [r["_id"] for r in candidates if r.get("_id")]
    stored = {
        row[0]: dict(zip(columns, row, strict=True))
        for row in conn.execute(
            sql.SQL("SELECT {} FROM {} WHERE bubble_id = ANY(%s)").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), schemas.table(entity)
            ),
            (drawn,),
        )
    }
    chosen = set([bubble_id for bubble_id in drawn if bubble_id in stored][:size])
    sampled = [r for r in candidates if r.get("_id") in chosen]
    refs = loader.reference_lookups(conn, schemas, entities, entity, only=referenced_ids(entity, sampled))
    # Duplicate-email ownership was settled at load time; the sample only compares values.
    expected = map_records(entity, sampled, refs).rows
    mismatched = [
        (row["bubble_id"], column)
        for row in expected
        for column in columns
        if not _same(row[column], stored[row["bubble_id"]][column])
    ]
    # A stored row whose record no longer maps at all is a mismatch too.
    unmapped = chosen - {row["bubble_id"] for row in expected}
    ids = sorted({bubble_id for bubble_id, _ in mismatched} | unmapped)
    details = {"sampled": len(chosen), "mismatched_fields": [f"{b}.{c}" for b, c in mismatched[:SAMPLE_IDS]]}
    return Outcome(not ids, len(ids), ids[:SAMPLE_IDS], details)


def referenced_ids(entity: Entity, records: list[dict]) -> dict[str, set[str]]:
    """The Bubble ids `records` point at, by referenced entity."""
    wanted: dict[str, set[str]] = {}
    for spec in entity.fields:
        if spec.kind is Kind.REF and spec.ref:
            values = (get_value(record, spec.source) for record in records)
            wanted.setdefault(spec.ref, set()).update(ref_id(v) for v in values if v is not None)
    return wanted


def _same(expected: object, stored: object) -> bool:
    if isinstance(expected, bool) or isinstance(stored, bool):
        return expected is stored
    if isinstance(expected, Decimal | float | int) and isinstance(stored, Decimal | float | int):
        return Decimal(str(expected)).quantize(Decimal("0.01")) == Decimal(str(stored)).quantize(Decimal("0.01"))
    if isinstance(stored, str) and isinstance(expected, str):
        return expected.rstrip() == stored.rstrip()  # char(n) pads
    return expected == stored
