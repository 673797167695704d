"""The fallback's evidence: every row the app changed since cutover, read back from Bubble and compared.

A row Phase 2 has must be in Bubble under its Bubble id with every field as the field table, run in
reverse, says (empty fields empty); a row Phase 2 deleted must be gone from Bubble. One search per 100 ids.
"""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from culturebridge_migration.fallback import ledger
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import ID_KEY, MODIFIED_KEY, Entity
from culturebridge_migration.mapping.reverse import UnresolvedReference, bubble_fields
from culturebridge_migration.mapping.values import parse_datetime
from culturebridge_migration.sources.bubble_api import BubbleClient

SHOWN = 20  # how many of each kind of difference the outcome names


@dataclass
class ReadBack:
    checked: dict[str, int] = field(default_factory=dict)  # entity -> rows compared
    missing: list[str] = field(default_factory=list)  # rows Phase 2 has that Bubble has not
    lingering: list[str] = field(default_factory=list)  # rows Phase 2 deleted that Bubble still has
    different: list[str] = field(default_factory=list)  # "entity id: field: Phase 2 ..., Bubble ..."

    @property
    def complete(self) -> bool:
        return not (self.missing or self.lingering or self.different)

    @property
    def offending(self) -> int:
        return len(self.missing) + len(self.lingering) + len(self.different)


def read_back(db: Phase2Database, client: BubbleClient) -> ReadBack:
    outcome = ReadBack()
    by_table: dict[str, list[tuple[int, str | None]]] = defaultdict(list)
    for table, row_id, bubble_id in ledger.touched(db):
        by_table[table].append((row_id, bubble_id))
    for entity in db.entities.values():
        if entity.table in by_table:
            _read_back_type(db, client, entity, by_table[entity.table], outcome)
    return outcome


def _read_back_type(
    db: Phase2Database, client: BubbleClient, entity: Entity, touched: list[tuple[int, str | None]], out: ReadBack
) -> None:
    rows = ledger.rows(db, entity, [row_id for row_id, _ in touched])
    ids = {row_id: rows[row_id]["bubble_id"] if row_id in rows else bubble_id for row_id, bubble_id in touched}
    records = {r.get(ID_KEY): r for r in client.find_in(entity.bubble_type, ID_KEY, [i for i in ids.values() if i])}
    modified: dict[int, datetime] = {}
    for row_id, bubble_id in ids.items():
        name = f"{entity.name} {row_id}"
        record = records.get(bubble_id or "")
        if row_id not in rows:
            if record is not None:
                out.lingering.append(f"{name} (Bubble {bubble_id}): deleted in Phase 2, still in Bubble")
            continue
        out.checked[entity.name] = out.checked.get(entity.name, 0) + 1
        if record is None:
            out.missing.append(f"{name}: not in Bubble" + (f" (no record {bubble_id})" if bubble_id else ""))
            continue
        try:
            expected = bubble_fields(entity, rows[row_id], ledger.bubble_id_of(db), clear_empty=True)
        except (UnresolvedReference, ValueError) as exc:
            out.missing.append(f"{name}: {exc}")
            continue
        out.different += [
            f"{name}: {key}: Phase 2 {want!r}, Bubble {record.get(key)!r}"
            for key, want in expected.items()
            if not same(want, record.get(key))
        ]
        with contextlib.suppress(ValueError):
            modified[row_id] = parse_datetime(record.get(MODIFIED_KEY))
    ledger.record_read_back(db, entity.table, modified)


def same(phase2: object, bubble: object) -> bool:
    """Whether Bubble holds what Phase 2 sent: equal, or the same number, instant or JSON in another spelling."""
    if isinstance(phase2, bool) or isinstance(bubble, bool):  # a yes/no is itself, never the number 1 or 0
        return phase2 is bubble or (_unset(phase2) and _unset(bubble))
    if phase2 == bubble:
        return True
    if phase2 in (None, "", [], {}) or bubble in (None, "", [], {}):
        return phase2 in (None, "", [], {}) and bubble in (None, "", [], {})
    if isinstance(phase2, dict) and isinstance(bubble, dict):
        return all(same(phase2.get(k), bubble.get(k)) for k in phase2.keys() | bubble.keys())
    for parse in (_number, parse_datetime, json.loads):
        try:
            return parse(phase2) == parse(bubble)  # type: ignore[operator]
        except (ValueError, TypeError, InvalidOperation, RecursionError):  # too deep to parse: the text decides
            continue
    return False


def _unset(value: object) -> bool:
    """A yes/no that is no, or empty (identity: 0 is a number, not a no)."""
    return value is None or value is False


def _number(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TypeError(value)
    return Decimal(str(value))
