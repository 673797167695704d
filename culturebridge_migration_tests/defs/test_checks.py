"""Every asset check of the definitions is a check of validation/, declared through defs/checks.py. No database."""

from __future__ import annotations

from culturebridge_migration.definitions import ALL_ASSETS
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.validation.checks import (
    EXPORT_COMPLETE_CHECK,
    EXTRA_TYPES_COMPLETE_CHECK,
    RECORDS_KEPT_CHECK,
    table_checks,
)
from culturebridge_migration.validation.file_checks import FILE_CHECKS
from culturebridge_migration.validation.password_checks import PASSWORD_CHECKS

VALIDATION = [
    EXPORT_COMPLETE_CHECK,
    EXTRA_TYPES_COMPLETE_CHECK,
    RECORDS_KEPT_CHECK,
    *FILE_CHECKS,
    *PASSWORD_CHECKS,
    *(check for entity in ENTITIES.values() for check in table_checks(entity)),
]


def test_every_asset_check_is_declared_from_its_check_in_validation() -> None:
    declared = {(c.name, c.description, c.blocking) for c in VALIDATION}
    specs = [spec for assets in ALL_ASSETS for spec in assets.check_specs]
    assert len(specs) > len(ENTITIES) * 3  # exports, tables, kept types and files all have checks
    for spec in specs:
        assert (spec.name, spec.description, spec.blocking) in declared, spec.key
