"""Hostile values on a real PostgreSQL: every record ends as a row or a reject, never as an exception; the team's
fixes, the deletion sweep, the checks and the types kept verbatim take them too."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from culturebridge_migration.loading.deletions import DeletedRecords
from culturebridge_migration.loading.migrate import migrate_entity
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.loading.verbatim import keep_verbatim, migrate_verbatim
from culturebridge_migration.mapping.corrections import Correction, EntityFixes
from culturebridge_migration.mapping.entities import ENTITIES, UNREADABLE_KEY, extra_entity, load_order
from culturebridge_migration.sources.export_store import ExportManifest
from culturebridge_migration.sources.search_windows import record_key
from culturebridge_migration.validation.checks import ROW_COUNTS, SAMPLE, CheckInputs, staged_export, table_checks
from culturebridge_migration.validation.export_digest import ExportDigest

pytestmark = pytest.mark.integration
T0 = "2025-11-05T14:03:22.120Z"


def deep(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


def test_a_type_kept_verbatim_rejects_hostile_records_and_keeps_the_others(db: Phase2Database) -> None:
    records = [
        {"_id": "rv1", "Created Date": T0, "Stars": 5},
        {"_id": "rv2", "Created Date": deep(10_000), "Text": deep(10_000)},
        {"_id": deep(10_000)},
        {"_id": "rv\x004", "Created Date": T0},
        {"_id": "rv5", UNREADABLE_KEY: {"field": "Text", "message": "Text nests lists or objects too deep"}},
    ]
    db.register_run("run-1", "test")
    result, rejects, _, read = keep_verbatim(db, extra_entity("review"), records, "run-1")
    assert (read, result.loaded, len(rejects)) == (5, 1, 4)
    assert all(reject.message for reject in rejects)


class _Undo(Exception):
    """Rolls an example's load back, so every example starts from the same Phase 2."""


@pytest.fixture
def phase2(db: Phase2Database, hostile: SimpleNamespace) -> Phase2Database:
    """Phase 2 holding the small sample hostile values are planted in (the rows their references point to)."""
    for name in load_order(ENTITIES):
        migrate_entity(db, ENTITIES[name], hostile.bases[name], run_id="run-0", job_name="test")
    return db


@settings(
    max_examples=max(10, hypothesis.settings().max_examples // 5),
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # each example is rolled back
)
@given(data=st.data())
def test_hostile_records_staged_into_postgresql_end_loaded_or_rejected_and_the_checks_run(
    phase2: Phase2Database, hostile: SimpleNamespace, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(list(ENTITIES)))
    entity = ENTITIES[name]
    drawn = data.draw(hostile.records(name))
    records = list({record_key(r): r for r in reversed(drawn)}.values())  # the export keeps each _id once
    n = len(records)
    manifest = ExportManifest(name, entity.bubble_type, "test", n, n, n, 1, "", "run-h")
    spec = data.draw(st.sampled_from(entity.fields))  # the team's fixes apply first, with a hostile value too
    correction = Correction(name, str(records[0].get("_id")), spec.source, data.draw(hostile.values))
    fixes = EntityFixes(entity, "test", [correction], {spec.source: {"Client": "Coach", "": "x"}})
    try:
        with phase2.transaction():
            # A whole export in delete mode: the export's ids are staged for the sweep (a NUL once crashed it).
            outcome = migrate_entity(
                phase2,
                entity,
                records,
                run_id="run-h",
                job_name="test",
                deleted_records=DeletedRecords.DELETE,
                export=manifest,
                decisions=fixes,
            )
            assert outcome.exported == outcome.loaded + len(outcome.rejects) == n
            digest = ExportDigest(entity, sample_size=n, seed=1).consume(records)
            inputs = CheckInputs(
                phase2, entity, digest, manifest, n, DeletedRecords.DELETE, decisions=fixes, loaded_here=True
            )
            with staged_export(inputs):
                outcomes = {check.name: check.evaluate(inputs) for check in table_checks(entity)}
            assert outcomes[SAMPLE].passed and outcomes[ROW_COUNTS].passed, outcomes
            kept = migrate_verbatim(
                phase2,
                extra_entity("hostile"),
                records,
                run_id="run-h",
                job_name="test",
                watermark=None,
                started=datetime.now(UTC),
            )
            assert kept[2] == kept[0].loaded + len(kept[1]) == n
            raise _Undo
    except _Undo:
        pass


def test_the_sample_check_compares_a_large_float_kept_in_bubble_extra_by_its_value(db: Phase2Database) -> None:
    resource = {"_id": "r1", "Created Date": T0, "Title": "Guide", "Score": 5.872061773263027e16}  # found by hypothesis
    outcome = migrate_entity(db, ENTITIES["resources"], [resource], run_id="run-1", job_name="test")
    assert outcome.loaded == 1
    manifest = ExportManifest("resources", "resource", "test", 1, 1, 1, 1, T0, "run-1")
    digest = ExportDigest(ENTITIES["resources"], sample_size=1, seed=1).consume([resource])
    inputs = CheckInputs(db, ENTITIES["resources"], digest, manifest, 1, DeletedRecords.REPORT, loaded_here=True)
    sample = {check.name: check for check in table_checks(ENTITIES["resources"])}[SAMPLE]
    with staged_export(inputs):
        assert sample.evaluate(inputs).passed


def test_a_correction_of_a_record_whose_id_holds_a_nul_is_not_stored_and_the_record_is_a_reject(
    phase2: Phase2Database, hostile: SimpleNamespace
) -> None:
    """Found by the property test above: the correction's fix was saved with the NUL id, and COPY refused it."""
    entity = ENTITIES["payments"]
    record = {**hostile.bases["payments"][0], "_id": "\x00" * 8, "Status": "Paid"}
    fixes = EntityFixes(entity, "test", [Correction("payments", "\x00" * 8, "Status", "Refunded")], {})
    with phase2.transaction():
        outcome = migrate_entity(phase2, entity, [record], run_id="run-h", job_name="test", decisions=fixes)
        assert [r.column for r in outcome.rejects] == ["bubble_id"]
        assert outcome.fixes == []
