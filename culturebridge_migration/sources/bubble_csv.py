"""Bubble's editor CSV export ("Export" on App data), read as faithfully as the Data API.

One file per type, like `export_All-Users_2025-11-05_14-03-22.csv`: UTF-8, every cell quoted,
newlines allowed inside cells, display names as columns, built-ins `unique id`, `Creation Date`,
`Modified Date`, `Creator`, `Slug`; dates like `Nov 5, 2025 2:03 pm` in the exporter's time zone;
lists joined with ` , `; yes/no as `yes`/`no`; references as the referenced thing's unique id.

Reading turns rows into API-shaped records so everything downstream is the same. Values that do
not parse stay as their text: the mapper rejects them with a reason instead of the reader guessing.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from culturebridge_migration.mapping.entities import CREATED_KEY, ENTITIES, ID_KEY, MODIFIED_KEY, Entity, Field, Kind
from culturebridge_migration.mapping.mapper import get_value
from culturebridge_migration.mapping.values import (
    format_bubble_datetime,
    parse_bool,
    parse_datetime,
    parse_decimal,
    parse_list,
)

BUILT_INS = {"unique id": ID_KEY, "Creation Date": CREATED_KEY, "Modified Date": MODIFIED_KEY, "Creator": "Created By"}
LIST_SEPARATOR = " , "
EMAIL_COLUMN = "email"  # the CSV's name for a user's authentication email


# Bubble's own user fields the editor's export leaves out.
_NOT_EXPORTED = {"user_signed_up"}


def _csv_column(field_source: str) -> str | None:
    """The CSV column of a field; None for what the CSV export leaves out (email_confirmed, user_signed_up)."""
    if field_source.startswith("authentication."):
        return EMAIL_COLUMN if field_source.endswith(".email.email") else None
    return None if field_source in _NOT_EXPORTED else field_source


def unavailable_fields(entity: Entity) -> list[str]:
    """The mapped Bubble keys a CSV export cannot hold: no record carries them, and that is no error."""
    return [f.source for f in entity.fields if _csv_column(f.source) is None]


def find_export_file(folder: Path, entity: Entity) -> Path:
    """The newest export of the entity's type in `folder`."""
    pattern = f"export_{entity.csv_prefix}_*.csv"
    files = sorted(Path(folder).glob(pattern))
    if not files:
        raise FileNotFoundError(
            f"No Bubble CSV export for {entity.name} in {Path(folder).resolve()}: expected a file like {pattern}. "
            "Export the type from the Bubble editor (Data > App data > Export) with references as unique ids"
        )
    return files[-1]  # the stamp in the name sorts by time


def export_prefixes(folder: Path) -> list[str]:
    """The type part of every export file's name in `folder` (`All-Users` of export_All-Users_2025-11-05_....csv)."""
    found = {
        re.sub(r"_\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}$", "", path.stem.removeprefix("export_"))
        for path in Path(folder).glob("export_*.csv")
    }
    return sorted(found)


_LARGEST_CELL = 2**31 - 1  # what the csv module accepts on every platform (a C long)


def read_csv_export(folder: Path, entity: Entity, *, tz: str = "UTC", encoding: str = "utf-8-sig") -> list[dict]:
    """The file's rows as API-shaped records. A column no field maps is kept under its name, as text.

    A file that is not in `encoding`, has no unique id column or names a column twice is refused,
    naming the file and what to do: guessing would load the wrong values silently.
    """
    path = find_export_file(folder, entity)
    fields = {_csv_column(f.source): f for f in entity.fields if _csv_column(f.source)}
    # Any cell reaches the mapper, which rejects what is too long naming the limit; the csv module's own
    # limit (131,072 characters, for every reader of the process) would stop the whole file instead.
    csv.field_size_limit(_LARGEST_CELL)
    reader = csv.reader(io.StringIO(_decoded(path, encoding), newline=""))
    header = next(reader, [])
    if "unique id" not in header:
        raise ValueError(
            f"{path.name} has no 'unique id' column: export again from the Bubble editor "
            "with the unique id column included"
        )
    repeated = sorted({column for column in header if header.count(column) > 1})
    if repeated:
        raise ValueError(
            f"{path.name} names the column {repeated[0]!r} more than once: a spreadsheet may have renamed or copied "
            "columns; export again from the Bubble editor, or rename the copies so each column has one name"
        )
    return [_record(zip(header, row, strict=False), fields, tz) for row in reader if any(row)]


def _decoded(path: Path, encoding: str) -> str:
    data = path.read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path.name} is not {encoding} text (byte 0x{data[exc.start]:02x} at offset {exc.start}): Bubble "
            "exports UTF-8, so a spreadsheet probably saved it again; export it again from Bubble, save it as "
            "'CSV UTF-8', or set BUBBLE_CSV_ENCODING to the encoding it has (cp1252 for Excel on Windows)"
        ) from None


def _record(cells: Iterable[tuple[str, str]], fields: Mapping[str, Field], tz: str) -> dict:
    record: dict[str, object] = {}
    for column, text in cells:
        if not column or text == "":
            continue
        if column in BUILT_INS:
            key = BUILT_INS[column]
            record[key] = _date(text, tz) if key in (CREATED_KEY, MODIFIED_KEY) else text
        elif column in fields:
            spec = fields[column]
            record[spec.source] = _value(spec.kind, text, tz)
        else:
            record[column] = text  # no column maps it: kept, and reported, as the export has it
    return record


def _value(kind: Kind, text: str, tz: str) -> object:
    try:
        if kind is Kind.DATE:
            return _date(text, tz)
        if kind is Kind.LIST:
            return parse_list(text)
        if kind is Kind.BOOL:
            return parse_bool(text)
        if kind in (Kind.NUMBER, Kind.INTEGER):
            number = parse_decimal(text)
            return int(number) if number == number.to_integral_value() else float(number)
    except ValueError:
        return text
    return text


def _date(text: str, tz: str) -> str:
    try:
        return format_bubble_datetime(parse_datetime(text, tz))
    except ValueError:
        return text


# -- writing: what the Bubble editor would produce (tests and demos) -----------------------------


def write_csv_export(
    records: dict[str, list[dict]],
    folder: Path,
    *,
    tz: str = "UTC",
    entities: Mapping[str, Entity] = ENTITIES,
    exported_at: datetime | None = None,
) -> dict[str, Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = (exported_at or datetime(2025, 11, 5, 14, 3, 22, tzinfo=UTC)).strftime("%Y-%m-%d_%H-%M-%S")
    emails = {u[ID_KEY]: get_value(u, entities["users"].field("email").source) for u in records.get("users", [])}
    written = {}
    for name, entity in entities.items():
        columns = ["unique id", "Creation Date", "Modified Date", "Creator", "Slug"]
        columns += [_csv_column(f.source) for f in _exported_fields(entity)]
        path = folder / f"export_{entity.csv_prefix}_{stamp}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
            writer.writerow(columns)
            for record in records.get(name, []):
                writer.writerow(_row(record, entity, tz, emails))
        written[name] = path
    return written


def _row(record: dict, entity: Entity, tz: str, emails: Mapping[str, object]) -> list[str]:
    creator = record.get("Created By")
    cells = [
        str(record.get(ID_KEY, "")),
        _csv_date(record.get(CREATED_KEY), tz),
        _csv_date(record.get(MODIFIED_KEY), tz),
        str(emails.get(creator) or "(App admin)") if creator else "",
        "",
    ]
    for spec in _exported_fields(entity):
        value = get_value(record, spec.source)
        cells.append(_csv_cell(spec.kind, value, tz))
    return cells


def _exported_fields(entity: Entity) -> list[Field]:
    return [f for f in entity.fields if _csv_column(f.source)]


def _csv_cell(kind: Kind, value: object, tz: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return LIST_SEPARATOR.join(str(v) for v in value)
    if kind is Kind.DATE:
        return _csv_date(value, tz)
    return str(value)


def _csv_date(value: object, tz: str) -> str:
    """Bubble's export format, in the exporter's zone: `Nov 5, 2025 2:03 pm`. Unparseable text stays."""
    if value is None:
        return ""
    try:
        moment = parse_datetime(value).astimezone(ZoneInfo(tz))
    except ValueError:
        return str(value)
    return f"{moment:%b} {moment.day}, {moment.year} {moment.hour % 12 or 12}:{moment:%M} {'am' if moment.hour < 12 else 'pm'}"
