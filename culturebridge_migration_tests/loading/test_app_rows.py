"""Rows the Phase 2 app creates after cutover have no Bubble id: everything that reads Phase 2 tells them apart."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest

from culturebridge_migration.loading.deletions import DeletedRecords
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.sources.export_store import ExportManifest
from culturebridge_migration.validation.checks import CheckInputs, run_rule, staged_export, table_checks
from culturebridge_migration.validation.export_digest import ExportDigest
from culturebridge_migration.validation.rules import RULES

pytestmark = pytest.mark.integration


def app_user(db: Phase2Database, email: str, role: str = "admin") -> int:
    """A user the app signed up: no bubble_id."""
    return db.scalar(  # type: ignore[return-value]
        "INSERT INTO users (bubble_id, email, role, created_at, updated_at)"
        " VALUES (NULL, %s, %s, now(), now()) RETURNING id",
        (email, role),
    )


def users_checks(db: Phase2Database, records: list[dict]) -> dict[str, bool]:
    """Every check of the users table after a whole export of `records`, as a full run judges it."""
    entity, n = ENTITIES["users"], len(records)
    manifest = ExportManifest("users", entity.bubble_type, "test", n, n, n, 1, "", "run-2")
    digest = ExportDigest(entity, sample_size=n, seed=1).consume(records)
    inputs = CheckInputs(db, entity, digest, manifest, n, DeletedRecords.DELETE, loaded_here=True)
    with staged_export(inputs):
        return {check.name: check.evaluate(inputs).passed for check in table_checks(entity)}


def test_the_apps_rows_without_a_bubble_id_survive_a_full_load_and_sweep_and_pass_every_check(
    db: Phase2Database, load: Callable, records: SimpleNamespace
) -> None:
    load("users", records.users("a@x.io", "b@x.io"), "run-1")
    mine = [app_user(db, "n1@x.io"), app_user(db, "n2@x.io")]  # UNIQUE allows many NULLs
    users = records.users("a@x.io", "b@x.io")
    users[0]["First Name"] = "Ana"  # an update: the upsert by bubble_id must not touch the app's rows
    manifest = ExportManifest("users", "user", "test", 2, 2, 2, 1, "", "run-2")
    outcome = load("users", users, "run-2", deleted_records=DeletedRecords.DELETE, export=manifest)

    assert (outcome.loaded, len(outcome.rejects)) == (2, 0)
    assert [i for (i,) in db.execute("SELECT id FROM users WHERE bubble_id IS NULL ORDER BY id")] == mine
    failed = [name for name, passed in users_checks(db, users).items() if not passed]
    assert failed == []


def test_the_id_mapping_holds_only_migrated_rows(db: Phase2Database, load: Callable, records: SimpleNamespace) -> None:
    load("users", records.users("a@x.io"), "run-1")
    app_user(db, "n1@x.io")
    assert list(db.id_mapping(ENTITIES["users"])) == ["1x1"]


def test_a_rule_an_app_row_breaks_names_it_by_its_phase2_id(db: Phase2Database) -> None:
    user = app_user(db, "n1@x.io", role="coach")  # a coach without a coach profile
    rule = next(r for r in RULES if r.name == "coaches_have_profiles")
    assert run_rule(db, rule).sample_ids == [f"phase2 id {user}"]
