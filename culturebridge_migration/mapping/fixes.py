"""Changes made to a Bubble value before it is stored, and why: kept in the bookkeeping and reported.

A fix is never silent: the original value stays in `migration.value_fixes` with the reason and who
decided it (the migration itself, for a rule like "PostgreSQL text cannot hold NUL").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from culturebridge_migration.mapping.rejects import printable

__all__ = ["NUL_REMOVED", "VALUE_FIX_FIELDS", "ValueFix", "printable"]

NUL_REMOVED = "NUL characters removed: PostgreSQL text cannot hold them"
BY_MIGRATION = "migration"


@dataclass(frozen=True)
class ValueFix:
    entity: str
    bubble_id: str
    field: str  # the Bubble key
    column: str  # the Phase 2 column (bubble_extra for a kept unmapped value)
    original: str  # as Bubble had it, made printable
    stored: str  # as Phase 2 holds it, made printable
    reason: str
    decided_by: str = BY_MIGRATION


VALUE_FIX_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ValueFix))
