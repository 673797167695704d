"""The team's decisions about rejects, written down as data and applied to records before mapping.

Between rehearsals a person reads the errors CSV and decides what each reject should have been. One
file (MIGRATION_FIXES) holds those decisions, in either of two forms:
- a copy of the errors CSV with its `fix` column filled in: each filled row sets one field (`field`,
  the Bubble key the reject names) of one record (`entity`, `bubble_id`) to `fix`, provided the record
  still holds the `value` the reject showed;
- JSON: {"value_maps": {"bookings": {"status": {"Rescheduled": "pending"}}},
         "corrections": [{"entity": "bookings", "bubble_id": "...", "field": "Status", "value": "pending",
                          "was": "Reschedlued"}]}
  A value map, per entity and Phase 2 column, replaces every value Bubble has that is one of its keys.
They are applied before mapping, so the mapper's rules still judge the result. Every change is a
ValueFix with the file as `decided_by` (stored beside the row and reported as corrected, not as a
reject). A decision that found nothing to change is reported: its record holds another value now, or
a whole export of the type does not hold the record, or no record holds the value a map expects.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from culturebridge_migration.mapping.entities import ID_KEY, Entity
from culturebridge_migration.mapping.fixes import ValueFix
from culturebridge_migration.mapping.mapper import get_value
from culturebridge_migration.mapping.rejects import printable

FIX_COLUMN = "fix"  # the errors CSV's column a person fills in
CORRECTED = "corrected by the team"
MAPPED = "value mapped by the team"
# The errors CSV shows a cell starting with one of these as text by putting ' before it; read back without.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class FixesFileError(ValueError):
    """The fixes file cannot be read; the message names the file and the place."""


@dataclass(frozen=True, eq=False)  # one decision is itself: two alike are two lines of the file
class Correction:
    entity: str
    bubble_id: str
    field: str  # the Bubble key, dotted for a nested one (authentication.email.email)
    value: object  # what the field is to hold
    was: str | None = None  # the value the decision was written against (as the errors CSV shows it)

    def describe(self) -> str:
        return f"{self.entity} {self.bubble_id} {self.field} -> {printable(self.value)}"


@dataclass(frozen=True)
class FixesFile:
    source: str  # the file's name: who decided, in the bookkeeping
    corrections: tuple[Correction, ...] = ()
    value_maps: Mapping[str, Mapping[str, Mapping[str, object]]] = field(default_factory=dict)

    def for_entity(self, entity: Entity) -> EntityFixes | None:
        corrections = [c for c in self.corrections if c.entity == entity.name]
        maps = self.value_maps.get(entity.name, {})
        if not corrections and not maps:
            return None
        by_column = {f.column: f.source for f in entity.fields}
        unknown = [column for column in maps if column not in by_column]
        if unknown:
            raise FixesFileError(
                f"{self.source}: {entity.name} has no column {', '.join(unknown)} for a value map; "
                f"its columns: {', '.join(by_column)}"
            )
        return EntityFixes(entity, f"fixes file {self.source}", corrections, {by_column[c]: m for c, m in maps.items()})


def read_fixes_file(path: str | Path) -> FixesFile:
    """The decisions in a fixes file: an errors CSV with its `fix` column filled in, or the JSON form."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise FixesFileError(f"Cannot read the fixes file {path}: {exc}") from None
    return _from_json(path, text) if path.suffix.lower() == ".json" else _from_csv(path, text)


def _from_csv(path: Path, text: str) -> FixesFile:
    rows = csv.DictReader(text.splitlines())
    missing = {"entity", "bubble_id", "field", FIX_COLUMN} - set(rows.fieldnames or [])
    if missing:
        raise FixesFileError(
            f"{path} is not an errors CSV with a `{FIX_COLUMN}` column (missing: {', '.join(sorted(missing))}): "
            f"copy errors_*.csv, fill in `{FIX_COLUMN}` where a reject should have been another value"
        )
    corrections = [
        Correction(
            row["entity"], _cell(row["bubble_id"]), row["field"], _cell(row[FIX_COLUMN]), _cell(row.get("value"))
        )
        for row in rows
        if (row.get(FIX_COLUMN) or "").strip()
    ]
    return FixesFile(path.name, tuple(corrections))


def _cell(text: str | None) -> str | None:
    if text and len(text) > 1 and text[0] == "'" and text[1] in _FORMULA_START:
        return text[1:]
    return text if text != "" else None


def _from_json(path: Path, text: str) -> FixesFile:
    try:
        document = json.loads(text)
        corrections = tuple(
            Correction(c["entity"], c["bubble_id"], c["field"], c["value"], c.get("was"))
            for c in document.get("corrections", [])
        )
        maps = document.get("value_maps", {})
        if not all(isinstance(m, dict) and all(isinstance(v, dict) for v in m.values()) for m in maps.values()):
            raise TypeError('value_maps is {"entity": {"column": {"Bubble value": "value to store"}}}')
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise FixesFileError(
            f"{path}: {exc}. Expected {{'value_maps': {{entity: {{column: {{from: to}}}}}}, "
            "'corrections': [{'entity', 'bubble_id', 'field', 'value', 'was'?}]}"
        ) from None
    return FixesFile(path.name, corrections, maps)


class EntityFixes:
    """The decisions about one entity, applied record by record; it remembers which ones found something."""

    def __init__(
        self,
        entity: Entity,
        decided_by: str,
        corrections: list[Correction],
        value_maps: Mapping[str, Mapping[str, object]],
    ) -> None:
        self.entity, self.decided_by, self.value_maps = entity, decided_by, value_maps
        self.by_record: dict[str, list[Correction]] = {}
        for correction in corrections:
            self.by_record.setdefault(correction.bubble_id, []).append(correction)
        self.applied: set[Correction] = set()
        self.stale: dict[Correction, str] = {}  # found its record, but not the value it was written against
        self.mapped: dict[tuple[str, str], int] = {}  # (field, value) of a map -> records it changed

    def apply(self, record: dict, *, remember: bool = True) -> tuple[dict, list[ValueFix]]:
        """The record with the decisions about it applied (a copy when any did), and a fix per change."""
        bubble_id = record.get(ID_KEY)
        changes: list[tuple[str, object, object, str]] = []
        for key, mapping in self.value_maps.items():
            current = get_value(record, key)
            if isinstance(current, str | int | float) and str(current) in mapping:
                changes.append((key, current, mapping[str(current)], MAPPED))
                if remember:
                    self.mapped[(key, str(current))] = self.mapped.get((key, str(current)), 0) + 1
        for correction in self.by_record.get(bubble_id, []) if isinstance(bubble_id, str) else []:
            current = get_value(record, correction.field)
            if correction.was is not None and printable(current) != correction.was and current != correction.value:
                if remember:
                    self.stale[correction] = f"Bubble holds {printable(current)!r} now, not {correction.was!r}"
                continue
            changes.append((correction.field, current, correction.value, CORRECTED))
            if remember:
                self.applied.add(correction)
        if not changes:
            return record, []
        fixed = json.loads(json.dumps(record))  # a deep copy: the export's record stays as Bubble sent it
        columns = {f.source: f.column for f in self.entity.fields}
        fixes = []
        for key, before, after, reason in changes:
            _set(fixed, key, after)
            fixes.append(
                ValueFix(
                    self.entity.name,
                    str(bubble_id),
                    key,
                    columns.get(key, "bubble_extra"),
                    printable(before),
                    printable(after),
                    reason,
                    self.decided_by,
                )
            )
        return fixed, fixes

    def not_applied(self, *, whole_export: bool) -> list[tuple[str, str]]:
        """(Bubble id or mapped value, why) of each decision that changed nothing; absences count only
        against a whole export of the type (an incremental one holds only the records that changed)."""
        found = [(c.bubble_id, f"{c.describe()}: {why}") for c, why in self.stale.items()]
        if whole_export:
            found += [
                (c.bubble_id, f"{c.describe()}: no such record in Bubble's {self.entity.bubble_type} type")
                for corrections in self.by_record.values()
                for c in corrections
                if c not in self.applied and c not in self.stale
            ]
            found += [
                (f"{key}={value}", f"{self.entity.name} {key}: no record holds {value!r} (value map)")
                for key, mapping in self.value_maps.items()
                for value in mapping
                if (key, value) not in self.mapped
            ]
        return found


def _set(record: dict, key: str, value: object) -> None:
    """Set a key as `get_value` reads it: the literal key, else the dotted path (`*`: the one key there is)."""
    if key in record or "." not in key:
        record[key] = value
        return
    *parents, last = key.split(".")
    node = record
    for part in parents:
        if part == "*" and node:
            part = next(iter(node))
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[last] = value
