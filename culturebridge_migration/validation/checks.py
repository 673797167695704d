"""Every validation of the migration, as data: a name, a severity, a description and a function.

The Dagster layer (defs/checks.py) declares each `Check` on its asset and turns its `Outcome` into
the check's result; nothing here needs Dagster. A table's checks (`TableCheck`) run with the table's
`CheckInputs`; the export's and the kept types' checks with what their steps produced, the files'
in validation/file_checks.py. Each outcome says how many rows offend and which (a sample of Bubble
ids), and how long the check took.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Generic, TypeVar

from psycopg import sql

from culturebridge_migration.loading.deletions import (
    DeletedRecords,
    Sweep,
    conclusive_census,
    find_gone,
    migrated_among,
    proves_whole_type,
    stage_exported_ids,
)
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.loading.schema_evolution import fix_script, schema_differences
from culturebridge_migration.mapping.corrections import EntityFixes
from culturebridge_migration.mapping.entities import ID_KEY, Entity, Kind
from culturebridge_migration.mapping.file_links import relinked, url_columns
from culturebridge_migration.mapping.key_matching import lookalikes
from culturebridge_migration.mapping.mapper import get_value, map_records, ref_id, row_columns
from culturebridge_migration.mapping.passwords import KEPT_PASSWORD_COLUMNS, keeps_password
from culturebridge_migration.mapping.values import bubble_id as valid_id
from culturebridge_migration.sources.deletion_census import CensusOutcome
from culturebridge_migration.sources.export_store import ExportManifest
from culturebridge_migration.validation.export_digest import ExportDigest
from culturebridge_migration.validation.rules import Rule, rules_for

SAMPLE_IDS = 10  # how many offending ids a failing check shows
_NEXT_FULL = "on the next full migration (a whole export of the type)"

ROW_COUNTS = "row_counts"
SAMPLE = "sample_matches_export"
DELETED = "deleted_in_bubble"
DELETIONS_PROVED = "deletions_proved"
FIELDS_COVERED = "fields_covered"
FIELDS_PRESENT = "mapped_fields_present"
MOSTLY_LOADED = "most_records_loaded"
EXPORT_COMPLETE = "export_complete"
SCHEMA_MATCHES = "schema_matches_rules"
EXTRA_TYPES_COMPLETE = "extra_types_complete"
RECORDS_KEPT = "records_kept"


@dataclass
class Outcome:
    passed: bool
    offending: int
    sample_ids: list[str] = field(default_factory=list)
    details: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0  # how long the check took, so a slow one shows on the dashboard
    summary: str | None = None  # one sentence on why it failed, shown with the result
    counts: str = "rows"  # what `offending` counts
    skipped: str | None = None  # why the check did not judge (then `passed` means nothing)
    judged_when: str | None = None  # when a skipped check will judge

    @classmethod
    def skip(cls, why: str, judged_when: str, **details: object) -> Outcome:
        """A check that did not judge. Dagster records only passed or failed, so it is recorded passed with
        `outcome: SKIPPED` in its metadata, which the reports and the gate read: never a pass."""
        return cls(True, 0, details=details, skipped=why, judged_when=judged_when)

    @property
    def status(self) -> str:
        return "SKIPPED" if self.skipped else ("PASS" if self.passed else "FAIL")

    def verdict_metadata(self) -> dict[str, str]:
        """What the check's Dagster metadata says of its outcome (read back by the reports and the gate)."""
        skip = {"skipped": self.skipped, "judged_when": self.judged_when or ""} if self.skipped else {}
        return {"outcome": self.status, "counts": self.counts, **skip}


@dataclass(frozen=True)
class CheckInputs:
    """What a table's checks look at: Phase 2 as it is, and the export the table was loaded from."""

    db: Phase2Database
    entity: Entity
    export: ExportDigest
    manifest: ExportManifest
    sample_size: int
    deleted_records: DeletedRecords
    max_reject_share: float = 0.5  # a table with a larger share of its records rejected is as good as lost
    bubble_fields: frozenset[str] | None = None  # the type's fields as Bubble's /meta lists them, when known
    decisions: EntityFixes | None = None  # the team's corrections (MIGRATION_FIXES), applied before mapping
    loaded_here: bool = False  # the table was loaded in this step (else its checks look at Phase 2 as it is)
    sweep: Sweep | None = None  # what this step's load did with rows gone from Bubble, when it looked

    def judged(self) -> str:
        """Over which records the table's checks judged: the export (whose run, how much of the type) and the table."""
        m = self.manifest
        part = f"changed since {m.modified_after}" if m.modified_after else "the whole type"
        table = "as this step loaded it" if self.loaded_here else "as it is now (not loaded in this step)"
        return (
            f"export {m.export_id[:8] or '?'} of run {m.run_id} ({self.export.count} records, {part}); "
            f"Phase 2's {self.entity.table} {table}"
        )


InputsT = TypeVar("InputsT")


@dataclass(frozen=True)
class Check(Generic[InputsT]):
    name: str
    severity: str  # "ERROR" or "WARN"
    description: str  # for the asset-check dashboard, in words a non-engineer understands
    run: Callable[[InputsT], Outcome]
    blocking: bool = False  # a failure stops everything downstream of the asset in the run

    def evaluate(self, inputs: InputsT) -> Outcome:
        clock = time.perf_counter()
        outcome = self.run(inputs)
        outcome.seconds = time.perf_counter() - clock
        return outcome


TableCheck = Check[CheckInputs]


# -- export ---------------------------------------------------------------------------------------
EXPORT_COMPLETE_DESCRIPTION = "The export holds exactly as many records as Bubble announced, each _id once."


def check_export_complete(manifest: ExportManifest) -> Outcome:
    """The export holds every record Bubble announced, each _id once."""
    details: dict[str, object] = {
        "announced_total": manifest.announced_total,
        "exported": manifest.exported,
        "missing": manifest.missing,
        "duplicate_ids": manifest.duplicates,
    }
    summary = None if manifest.complete else describe_incomplete_export(manifest)
    return Outcome(
        manifest.complete, manifest.missing + manifest.duplicates, details=details, summary=summary, counts="records"
    )


def describe_incomplete_export(manifest: ExportManifest) -> str:
    parts = [f"Bubble announced {manifest.announced_total} records, {manifest.unique_ids} distinct arrived"]
    if manifest.missing:
        parts.append(f"{manifest.missing} missing")
    if manifest.duplicates:
        parts.append(f"{manifest.duplicates} _id(s) arrived twice")
    return "; ".join(parts) + ": export again before loading"


def check_extra_types_complete(manifests: list[ExportManifest]) -> Outcome:
    """Every type no table migrates was exported whole; the incomplete ones by name."""
    incomplete = [m.bubble_type for m in manifests if not m.complete]
    return Outcome(not incomplete, len(incomplete), incomplete, counts="types")


# Blocking: a table must never be loaded from a partial export.
EXPORT_COMPLETE_CHECK = Check(
    EXPORT_COMPLETE, "ERROR", EXPORT_COMPLETE_DESCRIPTION, check_export_complete, blocking=True
)
EXTRA_TYPES_COMPLETE_CHECK = Check(
    EXTRA_TYPES_COMPLETE,
    "ERROR",
    "Every type no table migrates was exported whole, each _id once.",
    check_extra_types_complete,
    blocking=True,
)


# -- types kept verbatim ----------------------------------------------------------------------------
def check_records_kept(counts: Mapping[str, Mapping[str, int]]) -> Outcome:
    """By Bubble type: every exported record kept or rejected; the types that lost some by name."""
    lost = [bubble_type for bubble_type, c in counts.items() if c["exported"] != c["kept"] + c["rejected"]]
    return Outcome(not lost, len(lost), lost, counts="types")


RECORDS_KEPT_CHECK = Check(
    RECORDS_KEPT,
    "ERROR",
    "Every exported record of an unmigrated type is kept or rejected with a reason.",
    check_records_kept,
)


# -- row counts -----------------------------------------------------------------------------------
ROW_COUNTS_DESCRIPTION = (
    "Nothing was lost: every exported record was either loaded or rejected with a reason, "
    "and every loaded record is in the Phase 2 table."
)


def check_row_counts(inputs: CheckInputs) -> Outcome:
    """export file rows = exported = loaded + rejected, and every loaded record's row is in the table.

    Reads the export's ids staged as `exported_ids` (see `staged_export`).
    """
    db, entity, exported_in_file = inputs.db, inputs.entity, inputs.export.count
    run_id = db.latest_entity_run(entity)
    if run_id is None:
        return Outcome(False, exported_in_file, details={"problem": f"{entity.name} was never loaded"})
    exported, loaded = db.execute(
        sql.SQL("SELECT exported, loaded FROM {} WHERE run_id = %s AND entity = %s").format(
            db.bookkeeping("entity_runs")
        ),
        (run_id, entity.name),
    ).fetchone()
    rejected = db.scalar(
        sql.SQL("SELECT count(*) FROM {} WHERE run_id = %s AND entity = %s").format(db.bookkeeping("rejects")),
        (run_id, entity.name),
    )
    not_rejected = sql.SQL(
        "NOT EXISTS (SELECT FROM {rejects} r WHERE r.run_id = %(run)s AND r.entity = %(entity)s"
        " AND r.bubble_id = e.bubble_id)"
    ).format(rejects=db.bookkeeping("rejects"))
    params = {"run": run_id, "entity": entity.name}
    in_table, missing = 0, []
    for bubble_id, found in db.execute(
        sql.SQL(
            "SELECT e.bubble_id, t.id IS NOT NULL FROM exported_ids e LEFT JOIN {table} t USING (bubble_id)"
            " WHERE {not_rejected}"
        ).format(table=db.table(entity), not_rejected=not_rejected),
        params,
    ):
        if found:
            in_table += 1
        elif len(missing) < SAMPLE_IDS:
            missing.append(bubble_id)
    details = {
        "run_id": run_id,
        "export_file_rows": exported_in_file,
        "exported": exported,
        "loaded": loaded,
        "rejected": rejected,
        "loaded_rows_in_table": in_table,
    }
    unaccounted = abs(exported - loaded - rejected) + abs(exported_in_file - exported) + abs(loaded - in_table)
    return Outcome(unaccounted == 0, unaccounted, sorted(missing), details, counts="records")


# -- deletions ------------------------------------------------------------------------------------
DELETED_DESCRIPTION = (
    "Records migrated earlier that are gone from Bubble (Bubble keeps no tombstones) and still in Phase 2. "
    "The `deleted_records` setting says what a full export does with them: report (default: they stay "
    "until a person decides), flag (listed in migration.deleted_in_bubble) or delete (rows still "
    "referenced stay, flagged) (WARN)."
)


def check_deleted_in_bubble(inputs: CheckInputs) -> Outcome:
    """Phase 2 rows of migrated records Bubble no longer has: missing from a full export, or found by a census."""
    db, entity = inputs.db, inputs.entity
    if proves_whole_type(inputs.manifest, inputs.export.count):
        gone = find_gone(db, entity)
    elif census := conclusive_census(inputs.manifest, inputs.export.count):
        gone = migrated_among(db, entity, census.gone)
    else:  # absence from part of a type proves nothing
        return Outcome.skip("not a whole export of the type: absence from part of it proves nothing", _NEXT_FULL)
    flagged = db.scalar(
        sql.SQL("SELECT count(*) FROM {} WHERE entity = %s").format(db.bookkeeping("deleted_in_bubble")),
        (entity.name,),
    )
    details = {"deleted_records": str(inputs.deleted_records), "flagged": flagged}
    return Outcome(not gone, len(gone), gone[:SAMPLE_IDS], details)


DELETIONS_PROVED_DESCRIPTION = (
    "What Bubble deleted was proved before anything was done about it. At cutover, the census of the type "
    "(its records counted by Created Date window, reading only the windows whose counts differ from what the "
    "migration knows) proved which records Bubble deleted since the last load; it fails when it could not: "
    "Bubble holds a record the migration does not know (created after the incremental export) or could not be "
    "read. On a full run that flags or deletes rows gone from Bubble, each was asked for by id first; it fails "
    "when Bubble still has a record the full export missed (left as it is: the export was not whole) (ERROR). "
    "Skipped when nothing was proved or acted on (MIGRATION_DELETED_RECORDS=report, or an incremental sync)."
)


def check_deletions_proved(inputs: CheckInputs) -> Outcome:
    if inputs.manifest.census is None:
        return _full_export_sweep_proved(inputs.sweep)
    census = CensusOutcome(**inputs.manifest.census)
    figures = {
        "gone": len(census.gone),
        "requests": census.requests,
        "records_read": census.records_read,
        "read_whole_type": census.swept,  # a Created Date moved in Bubble: windows' counts were not trusted
        "alive_outside_window": census.alive_elsewhere[:SAMPLE_IDS],
    }
    if census.conclusive:
        return Outcome(True, 0, details=figures)
    return Outcome(
        False,
        max(1, len(census.unknown)),
        census.unknown[:SAMPLE_IDS],
        figures | {"problem": census.why_inconclusive()},
    )


def _full_export_sweep_proved(sweep: Sweep | None) -> Outcome:
    """A full run's sweep: every row it flagged or deleted was gone by id, and none it skipped is alive."""
    if sweep is None:
        return Outcome.skip("this run neither took a census nor swept a full export", "at the cutover")
    if sweep.mode is DeletedRecords.REPORT:
        return Outcome.skip(
            "MIGRATION_DELETED_RECORDS=report: nothing was flagged or deleted, so nothing needed proof",
            "on a full run with MIGRATION_DELETED_RECORDS=flag or delete, and at the cutover",
        )
    details = {"deleted": len(sweep.deleted), "flagged": len(sweep.flagged), "asked_by_id": sweep.confirmed}
    if not sweep.confirmed:
        return Outcome.skip(
            "CSV files cannot be asked for one record: rows missing from them were flagged, none deleted",
            "on a run that reads Bubble's Data API",
            **details,
        )
    if not sweep.alive:
        return Outcome(True, 0, details=details)
    problem = (
        f"{len(sweep.alive)} record(s) missing from the full export are still in Bubble by id: the export was "
        "not whole (records moved while it paged?); they were left as they are. Run the migration again"
    )
    return Outcome(False, len(sweep.alive), sweep.alive[:SAMPLE_IDS], details | {"problem": problem})


# -- the team's corrections --------------------------------------------------------------------------
FIXES_APPLIED = "fixes_applied"
FIXES_APPLIED_DESCRIPTION = (
    "Every correction of the fixes file (MIGRATION_FIXES) for this table found what it was written "
    "against: its record, still holding the rejected value, or for a value map a record holding the value. "
    "A correction that changed nothing is listed with why (WARN)."
)


def check_fixes_applied(inputs: CheckInputs) -> Outcome:
    if inputs.decisions is None:
        return Outcome.skip("no fixes file (MIGRATION_FIXES) for this table", "on a run given a fixes file")
    if not inputs.loaded_here:
        return Outcome.skip("the table was not loaded in this step", "on the next run that loads it")
    whole = proves_whole_type(inputs.manifest, inputs.export.count)
    missed = inputs.decisions.not_applied(whole_export=whole)
    details = {"applied": len(inputs.decisions.applied), "not_applied": [why for _, why in missed[:SAMPLE_IDS]]}
    return Outcome(
        not missed, len(missed), [subject for subject, _ in missed[:SAMPLE_IDS]], details, counts="corrections"
    )


# -- sample ---------------------------------------------------------------------------------------
SAMPLE_DESCRIPTION = "A random sample of loaded rows equals, field by field, what the Bubble export says after mapping."


def check_sample(inputs: CheckInputs) -> Outcome:
    """Map a random sample of exported records again and compare with the rows in Phase 2.

    The digest's sample is a random draw of exported records (rejected ones among them, so it holds
    about twice `sample_size`); up to `sample_size` of those that were loaded are compared. Reads
    only the sampled rows, so its cost does not grow with the table.
    """
    db, entity, candidates = inputs.db, inputs.entity, inputs.export.sample
    columns = row_columns(entity)
    drawn = [i for r in candidates if (i := valid_id(r.get(ID_KEY))) is not None]  # a list or a NUL: a reject
    stored = {
        row[0]: dict(zip(columns, row, strict=True))
        for row in db.execute(
            sql.SQL("SELECT {} FROM {} WHERE bubble_id = ANY(%s)").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), db.table(entity)
            ),
            (drawn,),
        )
    }
    chosen = set([bubble_id for bubble_id in drawn if bubble_id in stored][: inputs.sample_size])
    sampled = [r for r in candidates if valid_id(r.get(ID_KEY)) in chosen]
    if inputs.decisions is not None:  # the load mapped the records with the team's corrections applied
        sampled = [inputs.decisions.apply(r, remember=False)[0] for r in sampled]
    refs = db.reference_lookups(entity, only=referenced_ids(entity, sampled))
    # Duplicate-email ownership was settled at load time; the sample only compares values.
    expected = map_records(entity, sampled, refs).rows
    if columns_with_files := url_columns(entity):  # the load maps a file copied earlier to its copy
        relinked(expected, columns_with_files, db.file_copies(entity))
    for row in expected:  # a password carried over by the login bridge outlives the load, by design
        if row.get("password_hash") is None and keeps_password(kept := stored[row["bubble_id"]]):
            row.update({column: kept[column] for column in KEPT_PASSWORD_COLUMNS})
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
    if isinstance(expected, dict | list):
        return _same_json(expected, stored)
    if isinstance(expected, bool) or isinstance(stored, bool):
        return expected is stored
    if isinstance(expected, Decimal | float | int) and isinstance(stored, Decimal | float | int):
        return Decimal(str(expected)).quantize(Decimal("0.01")) == Decimal(str(stored)).quantize(Decimal("0.01"))
    if isinstance(stored, str) and isinstance(expected, str):
        return expected.rstrip() == stored.rstrip()  # char(n) pads
    return expected == stored


def _same_json(expected: object, stored: object) -> bool:
    """JSON as jsonb gives it back: a number is numeric there, so 5.872061773263027e+16 returns as the integer
    58720617732630270; equal by value, exactly. (Nested at most MAX_JSON_DEPTH: the mapper refused deeper.)"""
    if isinstance(expected, dict) and isinstance(stored, dict):
        return expected.keys() == stored.keys() and all(_same_json(v, stored[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(stored, list):
        return len(expected) == len(stored) and all(map(_same_json, expected, stored))
    if isinstance(expected, bool) or isinstance(stored, bool):
        return expected is stored
    if isinstance(expected, int | float) and isinstance(stored, int | float | Decimal):
        return Decimal(repr(expected)) == Decimal(str(stored))
    return expected == stored


# -- nothing lost, nothing misnamed ---------------------------------------------------------------
# A handful of changed records says nothing about which fields a type has or what share of it loads.
_NOT_WHOLE = "not a whole export of the type (an incremental sync or a cutover)"

FIELDS_COVERED_DESCRIPTION = (
    "Every field of the exported records is mapped to a column or deliberately ignored; the others are kept "
    "verbatim in the row's bubble_extra and listed here with their record counts and a few values (WARN)."
)


def check_fields_covered(inputs: CheckInputs) -> Outcome:
    """Fields no column maps: kept in bubble_extra, and named so that a person can map or ignore them."""
    unmapped = sorted(inputs.export.unmapped.items(), key=lambda item: (-item[1].records, item[0]))
    fields = {path: {"records": u.records, "values": u.values} for path, u in unmapped}
    ids = list(dict.fromkeys(bubble_id for _, u in unmapped for bubble_id in u.bubble_ids))
    details = {"unmapped_fields": fields, "kept_in": "bubble_extra"}
    return Outcome(not unmapped, len(unmapped), ids[:SAMPLE_IDS], details, counts="fields")


FIELDS_PRESENT_DESCRIPTION = (
    "No mapped field is misnamed: a field the field map names that no exported record carries, while the records "
    "carry a key that looks like it (a misspelled or renamed key), or a required field no record carries, "
    "would leave its column empty for every row. Fields the app does not have at all are listed, not failed "
    "(judged on whole exports)."
)


def check_mapped_fields_present(inputs: CheckInputs) -> Outcome:
    """Mapped fields that no record carries, each with the keys the records do carry that look like it."""
    digest, entity = inputs.export, inputs.entity
    if not proves_whole_type(inputs.manifest, digest.count) or digest.count == 0:
        return Outcome.skip(_NOT_WHOLE, _NEXT_FULL, records=digest.count)
    carried = [*digest.unmapped, *digest.keys]
    missing, absent = {}, []
    for spec in entity.fields:
        if digest.carried(spec.source) or (spec.fallback and digest.carried(spec.fallback)):
            continue
        if spec.source in inputs.manifest.unavailable_fields:
            continue  # the source's format cannot hold it
        similar = lookalikes(spec.source, carried)
        if spec.source in (inputs.bubble_fields or ()) and not similar:
            continue  # Bubble lists it and no record fills it yet; a lookalike key the records carry is a misnamed map
        if similar or spec.required:
            missing[spec.source] = {"column": spec.column, "records_carry_instead": similar}
            if similar:  # what to write in MIGRATION_FIELD_MAP
                missing[spec.source]["field_map_line"] = json.dumps({entity.name: {spec.column: similar[0]}})
        else:
            absent.append(spec.source)  # the app has no such field: its column stays empty, and that is said
    sample = [
        f"{key} (records carry {', '.join(m['records_carry_instead']) or 'nothing like it'})"
        for key, m in missing.items()
    ]
    details = {"missing_fields": missing, "fields_the_app_lacks": absent, "records": digest.count}
    return Outcome(not missing, len(missing), sample[:SAMPLE_IDS], details, counts="fields")


MOSTLY_LOADED_DESCRIPTION = (
    "The table is not lost: at least one record loaded, and at most the configured share (max_reject_share) "
    "of the exported records was rejected (judged on whole exports)."
)


def check_most_records_loaded(inputs: CheckInputs) -> Outcome:
    """A table whose records were all, or mostly, rejected fails: a misnamed field or a broken reference did it."""
    db, entity = inputs.db, inputs.entity
    if not proves_whole_type(inputs.manifest, inputs.export.count):
        return Outcome.skip(_NOT_WHOLE, _NEXT_FULL)
    run_id = db.latest_entity_run(entity)
    if run_id is None:
        return Outcome(False, inputs.export.count, details={"problem": f"{entity.name} was never loaded"})
    exported, loaded, rejected = db.execute(
        sql.SQL("SELECT exported, loaded, rejected FROM {} WHERE run_id = %s AND entity = %s").format(
            db.bookkeeping("entity_runs")
        ),
        (run_id, entity.name),
    ).fetchone()
    share = rejected / exported if exported else 0.0
    lost = exported > 0 and (loaded == 0 or share > inputs.max_reject_share)
    details = {"exported": exported, "loaded": loaded, "rejected": rejected, "rejected_share": round(share, 4)}
    details["max_reject_share"] = inputs.max_reject_share
    return Outcome(not lost, rejected if lost else 0, details=details, counts="rejected records")


# -- data rules -----------------------------------------------------------------------------------
def run_rule(db: Phase2Database, rule: Rule) -> Outcome:
    query = rule.query.replace("{app}", sql.Identifier(db.schemas.app).as_string())
    ids = [bubble_id for (bubble_id,) in db.execute(f"SELECT bubble_id FROM ({query}) q ORDER BY 1")]
    return Outcome(not ids, len(ids), ids[:SAMPLE_IDS])


def _rule_check(rule: Rule) -> TableCheck:
    return TableCheck(
        rule.name, rule.severity, f"{rule.description} ({rule.severity})", lambda inputs: run_rule(inputs.db, rule)
    )


@contextmanager
def staged_export(inputs: CheckInputs) -> Iterator[None]:
    """The export's ids as the session's `exported_ids`, once for all of a table's checks."""
    with inputs.db.transaction():
        stage_exported_ids(inputs.db, inputs.export.ids, for_the_session=True)
    try:
        yield
    finally:
        with inputs.db.transaction():
            inputs.db.execute("DROP TABLE IF EXISTS exported_ids")


# -- schema ---------------------------------------------------------------------------------------
SCHEMA_MATCHES_DESCRIPTION = (
    "The table in PostgreSQL is the one the rules require: columns, types, NOT NULL, CHECKs, foreign keys and "
    "indexes. Otherwise the database accepts what the rules reject, or refuses what they load."
)


def check_schema_matches_rules(inputs: CheckInputs) -> Outcome:
    """Phase 2's live table against the field table's, through the catalog (loading/schema_evolution.py)."""
    db, table = inputs.db, inputs.entity.table
    differences = [d for d in schema_differences(db.conn, db.schemas, db.entities) if d.table == table]
    details: dict[str, object] = {"differences": [d.what for d in differences]}
    if differences:
        details["fix_sql"] = fix_script(differences)
    return Outcome(not differences, len(differences), details=details)


def table_checks(entity: Entity) -> list[TableCheck]:
    """The checks of one Phase 2 table: its completeness, a sample, deletions, and its data rules."""
    return [
        TableCheck(ROW_COUNTS, "ERROR", ROW_COUNTS_DESCRIPTION, check_row_counts),
        TableCheck(SAMPLE, "ERROR", SAMPLE_DESCRIPTION, check_sample),
        TableCheck(DELETED, "WARN", DELETED_DESCRIPTION, check_deleted_in_bubble),
        TableCheck(DELETIONS_PROVED, "ERROR", DELETIONS_PROVED_DESCRIPTION, check_deletions_proved),
        TableCheck(FIELDS_COVERED, "WARN", FIELDS_COVERED_DESCRIPTION, check_fields_covered),
        TableCheck(FIELDS_PRESENT, "ERROR", FIELDS_PRESENT_DESCRIPTION, check_mapped_fields_present),
        TableCheck(MOSTLY_LOADED, "ERROR", MOSTLY_LOADED_DESCRIPTION, check_most_records_loaded),
        TableCheck(FIXES_APPLIED, "WARN", FIXES_APPLIED_DESCRIPTION, check_fixes_applied),
        TableCheck(SCHEMA_MATCHES, "ERROR", SCHEMA_MATCHES_DESCRIPTION, check_schema_matches_rules),
        *(_rule_check(rule) for rule in rules_for(entity)),
    ]
