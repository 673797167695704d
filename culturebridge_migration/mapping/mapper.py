"""Bubble records -> Phase 2 rows or rejects, driven only by the field table in `entities`.

Pure: no database, no Dagster. References are resolved through lookups the caller passes in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from culturebridge_migration.mapping import values as v
from culturebridge_migration.mapping.entities import CREATED_KEY, ID_KEY, MODIFIED_KEY, Entity, Field, Kind
from culturebridge_migration.mapping.passwords import bcrypt_cost, is_strong_hash
from culturebridge_migration.mapping.rejects import Reject, RejectReason, display_value

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
    return path_getter(key)(record)


def path_getter(key: str) -> Callable[[Mapping[str, object]], object]:
    """`lookup` for one key, with a dotted key split once instead of for every record."""
    if "." not in key:
        return lambda record: record.get(key, _MISSING)
    parts = key.split(".")

    def get(record: Mapping[str, object]) -> object:
        if key in record:
            return record[key]
        node: object = record
        for part in parts:
            if not isinstance(node, Mapping) or part not in node:
                return _MISSING
            node = node[part]
        return node

    return get


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
    plan = _plan(entity, refs)
    email_columns = [(spec.column, spec.source) for spec in entity.fields if spec.kind is Kind.EMAIL]
    rows: list[dict[str, object]] = []
    rejects: list[Reject] = []
    # Earlier Created Date wins a duplicate email, so map in creation order. Each Created Date is
    # parsed once: for the order, and (when it parsed) as the row's created_at.
    records = list(records)
    created = [_created(record) for record in records]
    order = sorted(range(len(records)), key=lambda i: _UNPARSEABLE if created[i] is None else (0, created[i]))
    for i in order:
        record = records[i]
        try:
            row = _map_record(entity, plan, record, created[i])
            if email_columns:
                _claim_unique_email(entity, email_columns, row, owners)
        except _Rejected as r:
            bubble_id = str(record.get(ID_KEY) or "")
            rejects.append(
                Reject(
                    entity=entity.name,
                    bubble_id=bubble_id,
                    field=r.source,
                    column=r.column,
                    value=r.value,
                    reason=r.reason,
                    message=r.message,
                )
            )
            continue
        rows.append(row)
    return MappedBatch(rows, rejects)


# Sort key of a record whose Created Date does not parse: after every dated record (it is rejected).
_UNPARSEABLE = (1, datetime.min.replace(tzinfo=UTC))


def _created(record: Mapping[str, object]) -> datetime | None:
    try:
        return v.parse_datetime(record.get(CREATED_KEY))
    except ValueError:
        return None


# One field's mapping, compiled once per batch from its `Field`: (column, record -> value, is_password).
_Step = tuple[str, Callable[[Mapping[str, object]], object], bool]


def _plan(entity: Entity, refs: Mapping[str, RefLookup]) -> list[_Step]:
    """Per field: (column, mapper of a record, is_password). Built from the field table, once per batch."""
    return [(spec.column, _field_mapper(entity, spec, refs), spec.kind is Kind.PASSWORD) for spec in entity.fields]


def _map_record(
    entity: Entity, plan: list[_Step], record: Mapping[str, object], created: datetime | None
) -> dict[str, object]:
    bubble_id = record.get(ID_KEY)
    if _is_empty(bubble_id):
        raise _reject(
            RejectReason.MISSING_REQUIRED, "bubble_id", ID_KEY, None, "record has no _id: it cannot be tracked"
        )
    row: dict[str, object] = {"bubble_id": bubble_id if type(bubble_id) is str else str(bubble_id)}
    for column, map_field, is_password in plan:
        row[column] = value = map_field(record)
        if is_password:
            row["password_reset_required"] = value is None
    if created is None:
        created = _timestamp(record, CREATED_KEY, "created_at")
    row["created_at"] = created
    modified = record.get(MODIFIED_KEY, _MISSING)
    if _is_empty(modified):
        row["updated_at"] = created
    else:
        try:
            row["updated_at"] = v.parse_datetime(modified)
        except ValueError as exc:
            raise _reject(
                RejectReason.UNPARSEABLE_DATE, "updated_at", MODIFIED_KEY, modified, f"{MODIFIED_KEY} {exc}"
            ) from None
    return row


def _timestamp(record: Mapping[str, object], key: str, column: str) -> datetime:
    raw = lookup(record, key)
    if _is_empty(raw):
        raise _reject(RejectReason.MISSING_REQUIRED, column, key, None, f"{key} is empty: every Bubble thing has one")
    try:
        return v.parse_datetime(raw)
    except ValueError as exc:
        raise _reject(RejectReason.UNPARSEABLE_DATE, column, key, raw, f"{key} {exc}") from None


def _field_mapper(
    entity: Entity, spec: Field, refs: Mapping[str, RefLookup]
) -> Callable[[Mapping[str, object]], object]:
    """One field's whole mapping (look up, empty -> default or reject, convert, resolve or range-check) as one closure."""
    get = path_getter(spec.source)
    convert = _converter(spec)
    is_ref = spec.kind is Kind.REF
    bounds = spec.bounds
    required = spec.required
    default, default_is_list = spec.default, isinstance(spec.default, tuple)
    reason = _reason_for(spec)
    ref = refs.get(spec.ref or "") if is_ref else None

    def map_field(record: Mapping[str, object]) -> object:
        raw = get(record)
        if raw is _MISSING or raw is None or (isinstance(raw, str) and not raw.strip()):
            if required:
                raise _reject(
                    RejectReason.MISSING_REQUIRED,
                    spec.column,
                    spec.source,
                    None,
                    f"{spec.source} is empty but {entity.table}.{spec.column} requires a value: fill it in Bubble",
                )
            return list(default) if default_is_list else default
        try:
            value = convert(raw)
        except ValueError as exc:
            raise _reject(reason, spec.column, spec.source, raw, _message(spec, exc)) from None
        if is_ref:
            return _resolve(spec, value, ref)
        if bounds is not None and value not in bounds:
            raise _reject(
                RejectReason.OUT_OF_RANGE,
                spec.column,
                spec.source,
                raw,
                f"{spec.source} {raw!r} must be {bounds.describe()}",
            )
        return value

    return map_field


def _converter(spec: Field) -> Callable[[object], object]:
    if spec.kind is Kind.ENUM:
        return v.enum_parser(dict(spec.values or {}))
    return _CONVERTERS[spec.kind]


def _text(raw: object) -> str:
    return raw if type(raw) is str else str(raw)


def ref_id(raw: object) -> str:
    """A reference's Bubble id as the lookups key it."""
    return str(raw).strip()


def _password_value(raw: object) -> str | None:
    return _password(str(raw))


def _password(value: str) -> str | None:
    """Exports replace plain text with a bcrypt hash; only hashes may arrive here."""
    if is_strong_hash(value):
        return value
    if bcrypt_cost(value) is not None:
        return None  # too weak to keep, and cannot be rehashed: the user resets their password
    raise ValueError("is not a bcrypt hash: passwords must be hashed by the export, never loaded as text")


# What turns a Bubble value into a Phase 2 value, per kind (option sets build theirs from their values).
_CONVERTERS: dict[Kind, Callable[[object], object]] = {
    Kind.TEXT: _text,
    Kind.CURRENCY: v.parse_currency,
    Kind.EMAIL: v.parse_email,
    Kind.BOOL: v.parse_bool,
    Kind.NUMBER: v.parse_decimal,
    Kind.INTEGER: v.parse_integer,
    Kind.DATE: v.parse_datetime,
    Kind.LIST: v.parse_list,
    Kind.JSON: v.parse_json,
    Kind.URL: v.normalize_url,
    Kind.REF: ref_id,
    Kind.PASSWORD: _password_value,
}

_REASONS = {
    Kind.EMAIL: RejectReason.INVALID_EMAIL,
    Kind.ENUM: RejectReason.UNKNOWN_ENUM,
    Kind.DATE: RejectReason.UNPARSEABLE_DATE,
    Kind.NUMBER: RejectReason.UNPARSEABLE_NUMBER,
    Kind.INTEGER: RejectReason.UNPARSEABLE_NUMBER,
    Kind.JSON: RejectReason.INVALID_JSON,
}


def _reason_for(spec: Field) -> RejectReason:
    return _REASONS.get(spec.kind, RejectReason.INVALID_VALUE)


def _message(spec: Field, exc: ValueError) -> str:
    if spec.kind is Kind.ENUM:
        return f"{spec.source} {exc}: fix the value in Bubble or add it to the {spec.column} mapping"
    if spec.kind is Kind.PASSWORD:
        return f"{spec.source} {exc}"
    return f"{spec.source} {exc}: correct it in Bubble"


def _resolve(spec: Field, target: str, lookup_: RefLookup | None) -> int:
    if lookup_ is not None:
        found = lookup_.ids.get(target, _MISSING)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
    if lookup_ is not None and target in lookup_.rejected:
        raise _reject(
            RejectReason.REJECTED_REFERENCE,
            spec.column,
            spec.source,
            target,
            f"{spec.source} points to {spec.ref} {target}, which was rejected "
            f"({lookup_.rejected[target]}): fix that record in Bubble first",
        )
    raise _reject(
        RejectReason.MISSING_REFERENCE,
        spec.column,
        spec.source,
        target,
        f"{spec.source} points to {spec.ref} {target}, which is not in the Bubble export "
        "(deleted in Bubble, or hidden from the API token by privacy rules)",
    )


def _claim_unique_email(
    entity: Entity, email_columns: list[tuple[str, str]], row: dict[str, object], owners: dict[str, str]
) -> None:
    bubble_id = str(row["bubble_id"])
    for column, source in email_columns:
        email = str(row[column])
        owner = owners.setdefault(email, bubble_id)
        if owner != bubble_id:
            raise _reject(
                RejectReason.DUPLICATE_EMAIL,
                column,
                source,
                email,
                f"email {email} already belongs to {entity.name} {owner}, created earlier: "
                "merge the accounts or change one email in Bubble",
            )


def _reject(reason: RejectReason, column: str, source: str, raw: object, message: str) -> _Rejected:
    secret = "password" in source.lower() or "password" in column
    # The plain value: a database driver would write an enum member by its name.
    return _Rejected(reason.value, column, source, display_value(raw, secret=secret), message)
