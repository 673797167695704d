"""Bubble records -> Phase 2 rows or rejects, driven only by the field table in `entities`.

Pure: no database, no Dagster. References are resolved through lookups the caller passes in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from culturebridge_migration.mapping import values as v
from culturebridge_migration.mapping.entities import CREATED_KEY, ID_KEY, MODIFIED_KEY, Entity, Field, Kind
from culturebridge_migration.mapping.passwords import bcrypt_cost, is_strong_hash
from culturebridge_migration.mapping.rejects import Reject, display_value

_MISSING = object()


@dataclass(frozen=True)
class RefLookup:
    """What is known of one referenced entity: Phase 2 ids of loaded rows, and why others were rejected."""

    ids: Mapping[str, int]
    rejected: Mapping[str, str] = field(default_factory=dict)  # bubble_id -> reject reason


@dataclass
class MappedBatch:
    rows: list[dict[str, object]]
    rejects: list[Reject]


class _Rejected(Exception):
    def __init__(self, reason: str, column: str, source: str, value: str | None, message: str) -> None:
        super().__init__(message)
        self.reason, self.column, self.source, self.value, self.message = reason, column, source, value, message


def lookup(record: Mapping[str, object], key: str) -> object:
    """A record's value for a key: the literal key first, then a dotted path into nested objects."""
    if key in record:
        return record[key]
    node: object = record
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def get_value(record: Mapping[str, object], key: str) -> object:
    """`lookup`, with None for a missing key."""
    value = lookup(record, key)
    return None if value is _MISSING else value


def _is_empty(value: object) -> bool:
    return value is _MISSING or value is None or (isinstance(value, str) and not value.strip())


def row_columns(entity: Entity) -> list[str]:
    """The Phase 2 columns a mapped row carries, in table order (without the surrogate id)."""
    columns = ["bubble_id"] + [f.column for f in entity.fields]
    if any(f.kind is Kind.PASSWORD for f in entity.fields):
        columns.append("password_reset_required")
    return [*columns, "created_at", "updated_at"]


def map_records(
    entity: Entity,
    records: Iterable[Mapping[str, object]],
    refs: Mapping[str, RefLookup] | None = None,
    *,
    taken_emails: Mapping[str, str] | None = None,
) -> MappedBatch:
    """Map every record; each becomes exactly one row or one reject.

    `refs` maps referenced entity names to lookups. `taken_emails` maps emails already in
    Phase 2 to the Bubble id that owns them, so a new record cannot steal one.
    """
    refs = refs or {}
    owners = dict(taken_emails or {})
    rows: list[dict[str, object]] = []
    rejects: list[Reject] = []
    # Earlier Created Date wins a duplicate email, so map in creation order.
    for record in sorted(records, key=_created_sort_key):
        bubble_id = str(record.get(ID_KEY) or "")
        try:
            row = _map_record(entity, record, refs)
            _claim_unique_email(entity, row, owners)
        except _Rejected as r:
            rejects.append(Reject(entity.name, bubble_id, r.column, r.source, r.value, r.reason, r.message))
            continue
        rows.append(row)
    return MappedBatch(rows, rejects)


def _created_sort_key(record: Mapping[str, object]) -> tuple[int, str]:
    try:
        return 0, v.parse_datetime(record.get(CREATED_KEY)).isoformat()
    except ValueError:
        return 1, ""


def _map_record(entity: Entity, record: Mapping[str, object], refs: Mapping[str, RefLookup]) -> dict[str, object]:
    bubble_id = record.get(ID_KEY)
    if _is_empty(bubble_id):
        raise _reject("missing_required", "bubble_id", ID_KEY, None, "record has no _id: it cannot be tracked")
    row: dict[str, object] = {"bubble_id": str(bubble_id)}
    for spec in entity.fields:
        row[spec.column] = _map_field(entity, spec, lookup(record, spec.source), refs)
        if spec.kind is Kind.PASSWORD:
            row["password_reset_required"] = row[spec.column] is None
    row["created_at"] = _timestamp(record, CREATED_KEY, "created_at")
    modified = lookup(record, MODIFIED_KEY)
    row["updated_at"] = row["created_at"] if _is_empty(modified) else _timestamp(record, MODIFIED_KEY, "updated_at")
    return row


def _timestamp(record: Mapping[str, object], key: str, column: str) -> datetime:
    raw = lookup(record, key)
    if _is_empty(raw):
        raise _reject("missing_required", column, key, None, f"{key} is empty: every Bubble thing has one")
    try:
        return v.parse_datetime(raw)
    except ValueError as exc:
        raise _reject("unparseable_date", column, key, raw, f"{key} {exc}") from None


def _map_field(entity: Entity, spec: Field, raw: object, refs: Mapping[str, RefLookup]) -> object:
    if _is_empty(raw):
        if spec.required:
            raise _reject(
                "missing_required",
                spec.column,
                spec.source,
                None,
                f"{spec.source} is empty but {entity.table}.{spec.column} requires a value: fill it in Bubble",
            )
        return list(spec.default) if isinstance(spec.default, tuple) else spec.default
    try:
        value = _convert(spec, raw)
    except ValueError as exc:
        raise _reject(_reason_for(spec), spec.column, spec.source, raw, _message(spec, exc)) from None
    if spec.kind is Kind.REF:
        return _resolve(spec, str(value), refs)
    _check_range(spec, value, raw)
    return value


def _convert(spec: Field, raw: object) -> object:
    match spec.kind:
        case Kind.TEXT:
            return str(raw)
        case Kind.CURRENCY:
            return v.parse_currency(raw)
        case Kind.EMAIL:
            return v.parse_email(raw)
        case Kind.BOOL:
            return v.parse_bool(raw)
        case Kind.NUMBER:
            return v.parse_decimal(raw)
        case Kind.INTEGER:
            return v.parse_integer(raw)
        case Kind.DATE:
            return v.parse_datetime(raw)
        case Kind.LIST:
            return v.parse_list(raw)
        case Kind.JSON:
            return v.parse_json(raw)
        case Kind.ENUM:
            return v.parse_enum(raw, dict(spec.values or {}))
        case Kind.URL:
            return v.normalize_url(raw)
        case Kind.REF:
            return str(raw).strip()
        case Kind.PASSWORD:
            return _password(str(raw))
    raise AssertionError(spec.kind)


def _password(value: str) -> str | None:
    """Exports replace plain text with a bcrypt hash; only hashes may arrive here."""
    if is_strong_hash(value):
        return value
    if bcrypt_cost(value) is not None:
        return None  # too weak to keep, and cannot be rehashed: the user resets their password
    raise ValueError("is not a bcrypt hash: passwords must be hashed by the export, never loaded as text")


_REASONS = {
    Kind.EMAIL: "invalid_email",
    Kind.ENUM: "unknown_enum",
    Kind.DATE: "unparseable_date",
    Kind.NUMBER: "unparseable_number",
    Kind.INTEGER: "unparseable_number",
    Kind.JSON: "invalid_json",
}


def _reason_for(spec: Field) -> str:
    return _REASONS.get(spec.kind, "invalid_value")


def _message(spec: Field, exc: ValueError) -> str:
    if spec.kind is Kind.ENUM:
        return f"{spec.source} {exc}: fix the value in Bubble or add it to the {spec.column} mapping"
    if spec.kind is Kind.PASSWORD:
        return f"{spec.source} {exc}"
    return f"{spec.source} {exc}: correct it in Bubble"


def _check_range(spec: Field, value: object, raw: object) -> None:
    if spec.min is None and spec.max is None:
        return
    low_ok = spec.min is None or (value > spec.min if spec.min_exclusive else value >= spec.min)
    high_ok = spec.max is None or value <= spec.max
    if not (low_ok and high_ok):
        low = "" if spec.min is None else (f"> {spec.min:g}" if spec.min_exclusive else f">= {spec.min:g}")
        high = "" if spec.max is None else f"<= {spec.max:g}"
        bounds = " and ".join(b for b in (low, high) if b)
        raise _reject("out_of_range", spec.column, spec.source, raw, f"{spec.source} {raw!r} must be {bounds}")


def _resolve(spec: Field, target: str, refs: Mapping[str, RefLookup]) -> int:
    lookup_ = refs.get(spec.ref or "")
    if lookup_ is not None and target in lookup_.ids:
        return lookup_.ids[target]
    if lookup_ is not None and target in lookup_.rejected:
        raise _reject(
            "rejected_reference",
            spec.column,
            spec.source,
            target,
            f"{spec.source} points to {spec.ref} {target}, which was rejected "
            f"({lookup_.rejected[target]}): fix that record in Bubble first",
        )
    raise _reject(
        "missing_reference",
        spec.column,
        spec.source,
        target,
        f"{spec.source} points to {spec.ref} {target}, which is not in the Bubble export "
        "(deleted in Bubble, or hidden from the API token by privacy rules)",
    )


def _claim_unique_email(entity: Entity, row: dict[str, object], owners: dict[str, str]) -> None:
    for spec in entity.fields:
        if spec.kind is not Kind.EMAIL:
            continue
        email, bubble_id = str(row[spec.column]), str(row["bubble_id"])
        owner = owners.setdefault(email, bubble_id)
        if owner != bubble_id:
            raise _reject(
                "duplicate_email",
                spec.column,
                spec.source,
                email,
                f"email {email} already belongs to {entity.name} {owner}, created earlier: "
                "merge the accounts or change one email in Bubble",
            )


def _reject(reason: str, column: str, source: str, raw: object, message: str) -> _Rejected:
    secret = "password" in source.lower() or "password" in column
    return _Rejected(reason, column, source, display_value(raw, secret=secret), message)
