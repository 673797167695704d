"""Which columns may hold a Bubble file's URL, and mapped rows pointed at the copies already made.

Field-table knowledge, below the load (`loading/migrate.py`), the sample check (`validation/checks.py`)
and the file step (`files/table_files.py`), which all need it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from culturebridge_migration.mapping.entities import Entity, Kind


def url_columns(entity: Entity) -> list[str]:
    """The columns that may hold a file's URL: the field table's URL fields."""
    return [f.column for f in entity.fields if f.kind is Kind.URL]


def relinked(rows: Iterable[dict[str, object]], columns: Sequence[str], copies: Mapping[str, str]) -> None:
    """Point each mapped row's URL columns at the copies already made of Bubble files, in place.

    The load and the sample check both map Bubble's URL; a file copied earlier must map to its copy,
    or every re-run would point the row back at Bubble.
    """
    if not copies:
        return
    for row in rows:
        for column in columns:
            value = row.get(column)
            if isinstance(value, str) and value in copies:
                row[column] = copies[value]
