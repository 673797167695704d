"""Markdown previews the Dagster UI shows beside an asset: the first records of an export, a table's rejects."""

from __future__ import annotations

from collections.abc import Sequence

from culturebridge_migration.mapping.entities import ID_KEY, Entity, Kind
from culturebridge_migration.mapping.mapper import get_value
from culturebridge_migration.mapping.rejects import MASK, Reject


def _cell(value: object, width: int) -> str:
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")[:width]


def export_preview(entity: Entity, records: Sequence[dict]) -> str:
    """The first records as a table; password values masked even though they are hashes."""
    secret = {f.source for f in entity.fields if f.kind is Kind.PASSWORD}
    keys = [ID_KEY, *(f.source for f in entity.fields)]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for record in records:
        cells = [MASK if k in secret and k in record else _cell(get_value(record, k), 60) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rejects_preview(rejects: Sequence[Reject], limit: int = 20) -> str:
    """The first rejects of a load, with what to do about each."""
    if not rejects:
        return "No rejects."
    lines = ["| Bubble id | column | value | reason | what to do |", "|---|---|---|---|---|"]
    for r in rejects[:limit]:
        lines.append(f"| {r.bubble_id} | {r.column} | {_cell(r.value, 40)} | {r.reason} | {_cell(r.message, 300)} |")
    if len(rejects) > limit:
        lines.append(f"\n… and {len(rejects) - limit} more in the errors report.")
    return "\n".join(lines)
