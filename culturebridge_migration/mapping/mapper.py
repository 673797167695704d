"""Bubble records -> Phase 2 rows or rejects, driven only by the field table in `entities`.

Pure: no database, no Dagster. References are resolved through lookups the caller passes in.
Every record becomes one row or one reject, and every value of a row is either mapped to its
column or kept verbatim in `bubble_extra` (see `coverage`). A value changed on the way (NUL
characters PostgreSQL cannot hold) is recorded as a `ValueFix`, never changed silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from culturebridge_migration.mapping import values as v
from culturebridge_migration.mapping.coverage import Coverage
from culturebridge_migration.mapping.entities import (
    CREATED_BY_KEY,
    CREATED_KEY,
    ID_KEY,
    MODIFIED_KEY,
    UNREADABLE_KEY,
    Entity,
    Field,
    Kind,
)
from culturebridge_migration.mapping.fixes import NUL_REMOVED, ValueFix, printable
from culturebridge_migration.mapping.passwords import HASH_FROM_MIGRATION, bcrypt_cost, is_strong_hash
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
    fixes: list[ValueFix] = field(default_factory=list)


class _Rejected(Exception):
    def __init__(self, reason: str, column: str, source: str, value: str | None, message: str) -> None:
        super().__init__(message)
        self.reason, self.column, self.source, self.value, self.message = reason, column, source, value, message


# -- reading a key ---------------------------------------------------------------------------------
def lookup(record: Mapping[str, object], key: str) -> object:
    """A record's value for a key: the literal key first, then a dotted path into nested objects."""
    return path_getter(key)(record)


def path_getter(key: str) -> Callable[[Mapping[str, object]], object]:
    """`lookup` for one key, split once instead of for every record. A `*` part matches any one key."""
    if "." not in key:
        return lambda record: record.get(key, _MISSING)
    parts = tuple(key.split("."))

    def get(record: Mapping[str, object]) -> object:
        if key in record:
            return record[key]
        return _walk(record, parts)

    return get


def _walk(node: object, parts: tuple[str, ...]) -> object:
    for i, part in enumerate(parts):
        if not isinstance(node, Mapping):
            return _MISSING
        if part == "*":  # the first branch that holds a value
            for child in node.values():
                found = _walk(child, parts[i + 1 :])
                if not is_empty(found):
                    return found
            return _MISSING
        if part not in node:
            return _MISSING
        node = node[part]
    return node


def get_value(record: Mapping[str, object], key: str) -> object:
    """`lookup`, with None for a missing key."""
    value = lookup(record, key)
    return None if value is _MISSING else value


def is_empty(value: object) -> bool:
    """Bubble leaves an empty field out; a missing key, None and blank text all mean empty."""
    return value is _MISSING or value is None or (isinstance(value, str) and not value.strip())


def row_columns(entity: Entity) -> list[str]:
    """The Phase 2 columns a mapped row carries, in table order (without the surrogate id)."""
    columns = ["bubble_id"] + [f.column for f in entity.fields]
    if entity.has_passwords:
        columns.append("password_reset_required")
    columns += ["bubble_created_by", "created_at", "updated_at", "bubble_extra"]
    # Last, where schema evolution adds them to tables made before them: new and evolved tables agree.
    return [*columns, "password_hash_source", "password_hash_set_at"] if entity.has_passwords else columns


# -- a batch ---------------------------------------------------------------------------------------
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
    owners = dict(taken_emails or {})
    plan = _Plan(entity, refs or {})
    email_columns = [(spec.column, spec.source) for spec in entity.fields if spec.kind is Kind.EMAIL]
    batch = MappedBatch([], [])
    # Earlier Created Date wins a duplicate email, so map in creation order. Each Created Date is
    # parsed once: for the order, and (when it parsed) as the row's created_at.
    records = list(records)
    created = [_created(record) for record in records]
    order = sorted(range(len(records)), key=lambda i: _UNPARSEABLE if created[i] is None else (0, created[i]))
    for i in order:
        record, fixes = records[i], []
        try:
            row = plan.map(record, created[i], fixes)
            if email_columns:
                _claim_unique_email(entity, email_columns, row, owners)
        except _Rejected as r:
            batch.rejects.append(
                Reject(
                    entity=entity.name,
                    bubble_id=_reject_id(record),
                    field=r.source,
                    column=r.column,
                    value=r.value,
                    reason=r.reason,
                    message=r.message,
                    created_at=v.format_bubble_datetime(created[i]) if created[i] is not None else None,
                )
            )
            continue
        batch.rows.append(row)
        batch.fixes += [ValueFix(entity.name, str(row["bubble_id"]), *fix) for fix in fixes]
    return batch


# Sort key of a record whose Created Date does not parse: after every dated record (it is rejected).
_UNPARSEABLE = (1, datetime.min.replace(tzinfo=UTC))


def _created(record: Mapping[str, object]) -> datetime | None:
    value = record.get(CREATED_KEY)
    if isinstance(value, list | dict):
        return None  # not a date, and (nested deep) not even one to show in an error
    try:
        return v.parse_datetime(value)
    except ValueError:
        return None


def _reject_id(record: Mapping[str, object]) -> str:
    """The id a reject is listed under: the record's _id, or what it holds instead, as text."""
    bubble_id = record.get(ID_KEY)
    if isinstance(bubble_id, str):
        return printable(bubble_id)
    if bubble_id is None:
        return ""
    try:
        return printable(json.dumps(bubble_id, default=str))
    except (RecursionError, ValueError):  # nested too deep, or a float json cannot write
        return printable(bubble_id)


# A change to one value: (field, column, original, stored, reason), completed with entity and id.
_Fix = tuple[str, str, str, str, str]


def _stored_text(value: object, source: str, column: str, fixes: list[_Fix]) -> object:
    """`value` as PostgreSQL can hold it: NULs removed (and recorded); a lone surrogate is a reject."""
    try:
        cleaned = v.without_nul(value)
    except v.UnstorableText as exc:
        raise _reject(
            RejectReason.INVALID_VALUE, column, source, value, f"{source} {exc}: correct the text in Bubble"
        ) from None
    if cleaned is not value:
        fixes.append((source, column, printable(value), printable(cleaned), NUL_REMOVED))
    return cleaned


_CONTAINERS = frozenset({list, dict})  # what JSON decodes a nested value to


class _Plan:
    """One entity's mapping, compiled once per batch from the field table."""

    def __init__(self, entity: Entity, refs: Mapping[str, RefLookup]) -> None:
        self.entity = entity
        self.fields = [
            (spec.column, _field_mapper(entity, spec, refs), spec.kind is Kind.PASSWORD) for spec in entity.fields
        ]
        self.coverage = Coverage(entity)
        # The column each top-level key feeds (its first part, for a dotted path); others go to bubble_extra.
        self.columns = {spec.source.split(".")[0]: spec.column for spec in entity.fields}

    def _refuse_unreadable(self, record: Mapping[str, object]) -> None:
        """The export's stand-in for a record it could not keep (see UNREADABLE_KEY) is a reject saying why."""
        note = record.get(UNREADABLE_KEY)
        if note is None:
            return
        note = note if isinstance(note, dict) else {}
        key = note.get("field")
        key = key if isinstance(key, str) else None
        raise _reject(
            RejectReason.NESTED_TOO_DEEP,
            "record" if key is None else self.columns.get(key, "bubble_extra"),
            ID_KEY if key is None else printable(key),
            None,
            printable(note.get("message") or "the export could not read this record: export it again", 1000),
        )

    def _refuse_deep(self, record: Mapping[str, object]) -> None:
        """A value nested past the limit is a reject naming its key, before any reader recurses into it."""
        if _CONTAINERS.isdisjoint(map(type, record.values())):
            return  # most records hold no list or object: decided without a loop in Python
        for key, value in record.items():
            if isinstance(value, list | dict) and (depth := v.nesting_depth(value)) > v.MAX_JSON_DEPTH:
                column, shown = self.columns.get(key, "bubble_extra"), printable(key)  # a key is any text too
                raise _reject(
                    RejectReason.NESTED_TOO_DEEP,
                    column,
                    shown,
                    value,
                    f"{shown} {v.too_deep(depth)}: simplify it in Bubble",
                )

    def map(self, record: Mapping[str, object], created: datetime | None, fixes: list[_Fix]) -> dict[str, object]:
        self._refuse_unreadable(record)
        row: dict[str, object] = {"bubble_id": _bubble_id(record)}
        self._refuse_deep(record)
        for column, map_field, is_password in self.fields:
            row[column] = value = map_field(record, fixes)
            if is_password:
                row["password_reset_required"] = value is None
                row["password_hash_source"] = None if value is None else HASH_FROM_MIGRATION
                row["password_hash_set_at"] = None  # the load's run says when; the login bridge sets its own
        creator = record.get(CREATED_BY_KEY)
        row["bubble_created_by"] = (
            None if creator is None else _stored_text(_text(creator), CREATED_BY_KEY, "bubble_created_by", fixes)
        )
        row["created_at"] = created if created is not None else _timestamp(record, CREATED_KEY, "created_at")
        row["updated_at"] = _modified(record, row["created_at"])  # type: ignore[arg-type]
        extra = self.coverage.extra(record)
        row["bubble_extra"] = None if extra is None else _stored_text(extra, "(unmapped fields)", "bubble_extra", fixes)
        return row


def _bubble_id(record: Mapping[str, object]) -> str:
    bubble_id = record.get(ID_KEY)
    problem = v.bubble_id_problem(bubble_id)
    if problem is not None:
        reason = RejectReason.MISSING_REQUIRED if is_empty(bubble_id) else RejectReason.INVALID_VALUE
        raise _reject(reason, "bubble_id", ID_KEY, None if is_empty(bubble_id) else bubble_id, problem)
    return bubble_id  # type: ignore[return-value]


def _modified(record: Mapping[str, object], created: datetime) -> datetime:
    modified = record.get(MODIFIED_KEY, _MISSING)
    if is_empty(modified):
        return created
    try:
        return v.parse_datetime(modified)
    except ValueError as exc:
        raise _reject(
            RejectReason.UNPARSEABLE_DATE, "updated_at", MODIFIED_KEY, modified, f"{MODIFIED_KEY} {exc}"
        ) from None


def _timestamp(record: Mapping[str, object], key: str, column: str) -> datetime:
    raw = lookup(record, key)
    if is_empty(raw):
        raise _reject(RejectReason.MISSING_REQUIRED, column, key, None, f"{key} is empty: every Bubble thing has one")
    try:
        return v.parse_datetime(raw)
    except ValueError as exc:
        raise _reject(RejectReason.UNPARSEABLE_DATE, column, key, raw, f"{key} {exc}") from None


# -- one field -------------------------------------------------------------------------------------
def _field_mapper(
    entity: Entity, spec: Field, refs: Mapping[str, RefLookup]
) -> Callable[[Mapping[str, object], list[_Fix]], object]:
    """One field's whole mapping (look up, empty -> default or reject, convert, resolve or range-check) as one closure."""
    get = path_getter(spec.source)
    fallback = path_getter(spec.fallback) if spec.fallback else None
    convert = _converter(spec)
    is_ref, is_json, is_list = spec.kind is Kind.REF, spec.kind is Kind.JSON, spec.kind is Kind.LIST
    bounds = spec.bounds
    quantum = Decimal(1).scaleb(-spec.digits[1]) if spec.kind is Kind.NUMBER else None
    required, limit = spec.required, spec.length_limit
    default, default_is_list = spec.default, isinstance(spec.default, tuple)
    reason = _reason_for(spec)
    ref = refs.get(spec.ref or "") if is_ref else None
    where = spec.source if fallback is None else f"{spec.source} (or {spec.fallback})"

    def map_field(record: Mapping[str, object], fixes: list[_Fix]) -> object:
        raw = get(record)
        if fallback is not None and is_empty(raw):
            raw = fallback(record)
        if raw is _MISSING or raw is None or (isinstance(raw, str) and not raw.strip()):
            if required:
                raise _reject(
                    RejectReason.MISSING_REQUIRED,
                    spec.column,
                    spec.source,
                    None,
                    f"{where} is empty but {entity.table}.{spec.column} requires a value: fill it in Bubble",
                )
            return list(default) if default_is_list else default
        if not is_json and type(raw) is not bool and not isinstance(raw, int | float):
            raw = _stored_text(raw, spec.source, spec.column, fixes)
        try:
            value = convert(raw)
        except v.NestedTooDeep as exc:
            raise _reject(
                RejectReason.NESTED_TOO_DEEP,
                spec.column,
                spec.source,
                raw,
                f"{spec.source} {exc}: simplify it in Bubble",
            ) from None
        except ValueError as exc:
            raise _reject(reason, spec.column, spec.source, raw, _message(spec, exc)) from None
        if is_json:  # a JSON text's own escapes (\u0000) become characters only once it is parsed
            value = _stored_text(value, spec.source, spec.column, fixes)
        if limit is not None and (length := _text_length(value)) > limit:
            raise _reject(
                RejectReason.TOO_LONG,
                spec.column,
                spec.source,
                raw,
                f"{spec.source} is {length:,} characters long{' (its items together)' if is_list else ''}; "
                f"{entity.table}.{spec.column} holds at most {limit:,}: shorten it in Bubble",
            )
        if is_ref:
            return _resolve(spec, value, ref)
        if quantum is not None:
            value = _rounded(spec, raw, value, quantum)
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


def _text_length(value: object) -> int:
    """The characters a text column holds of `value`; of a list of text, its items' together (0: not text)."""
    if type(value) is str:
        return len(value)
    return sum(len(item) for item in value if type(item) is str) if type(value) is list else 0


def _rounded(spec: Field, raw: object, value: Decimal, quantum: Decimal) -> Decimal:
    """The number as the numeric column will hold it, so the bounds are checked on what is stored."""
    stored = value.quantize(quantum, rounding=ROUND_HALF_UP)  # PostgreSQL's numeric rounds half away from zero
    if stored != value and spec.bounds is not None and stored not in spec.bounds:
        raise _reject(
            RejectReason.OUT_OF_RANGE,
            spec.column,
            spec.source,
            raw,
            f"{spec.source} {raw!r} is stored as {stored} ({spec.digits[1]} decimals), which must be "
            f"{spec.bounds.describe()}",
        )
    return stored


def _converter(spec: Field) -> Callable[[object], object]:
    if spec.kind is Kind.ENUM:
        return v.enum_parser(dict(spec.values or {}))
    return _CONVERTERS[spec.kind]


def _text(raw: object) -> str:
    """Text as Bubble sent it; an object or list in a text field is kept as JSON, never as Python's repr."""
    return raw if type(raw) is str else json.dumps(raw, ensure_ascii=False, default=str)


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
    Kind.URL: v.parse_web_url,
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


_MAX_MESSAGE_CHARS = 1_000  # a message quoting a planted 5 MB value stays a message


def _reject(reason: RejectReason, column: str, source: str, raw: object, message: str) -> _Rejected:
    secret = "password" in source.lower() or "password" in column
    if len(message) > _MAX_MESSAGE_CHARS:
        message = message[: _MAX_MESSAGE_CHARS - 1] + "…"
    # The plain value: a database driver would write an enum member by its name.
    return _Rejected(reason.value, column, source, display_value(raw, secret=secret), message)
