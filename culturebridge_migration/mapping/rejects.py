"""A reject: a source record that cannot be loaded as it is, and why, in words a person can act on."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from enum import StrEnum


class RejectReason(StrEnum):
    """The reasons DESIGN.md names, as stable codes for reports and checks."""

    MISSING_REQUIRED = "missing_required"
    INVALID_EMAIL = "invalid_email"
    DUPLICATE_EMAIL = "duplicate_email"
    UNKNOWN_ENUM = "unknown_enum"
    UNPARSEABLE_DATE = "unparseable_date"
    UNPARSEABLE_NUMBER = "unparseable_number"
    OUT_OF_RANGE = "out_of_range"
    INVALID_VALUE = "invalid_value"
    INVALID_JSON = "invalid_json"
    NESTED_TOO_DEEP = "nested_too_deep"  # lists or objects nested past MAX_JSON_DEPTH
    TOO_LONG = "too_long"  # text longer than its column's maximum length
    MISSING_REFERENCE = "missing_reference"
    REJECTED_REFERENCE = "rejected_reference"
    REFUSED_BY_DATABASE = "refused_by_database"  # mapped fine, but PostgreSQL refused the row


MASK = "***"
_MAX_VALUE_CHARS = 200


@dataclass(frozen=True)
class Reject:
    entity: str
    bubble_id: str
    field: str  # Bubble field (key) it came from
    column: str  # Phase 2 column the problem is about
    value: str | None  # the offending value, masked for passwords, shortened for long text
    reason: str  # a RejectReason
    message: str  # what is wrong and what to do
    # The record's Created Date as Bubble writes it (None when it has none that parses): a rejected
    # record is still a record Bubble has, and the deletion census places it by this date.
    created_at: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return dataclasses.asdict(self)


# A reject's parts in order: the rejects table, the errors CSV and the JSON report all follow it.
REJECT_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Reject))


def display_value(value: object, *, secret: bool = False) -> str | None:
    if value is None:
        return None
    return MASK if secret else printable(value)


# Control characters and lone surrogates: shown escaped, so a report line stays one line and storable.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def printable(value: object, limit: int = _MAX_VALUE_CHARS) -> str:
    """A value as a person can read it in a report: control characters escaped, long text shortened."""
    text = value if isinstance(value, str) else _repr(value)
    text = _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _repr(value: object) -> str:
    try:
        return repr(value)
    except RecursionError:  # a hostile value nested thousands deep: named, never a crash of the report
        return f"({type(value).__name__} nested too deeply to show)"
