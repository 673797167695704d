"""A reject: a source record that cannot be loaded as it is, and why, in words a person can act on."""

from __future__ import annotations

from dataclasses import asdict, dataclass

# The reasons DESIGN.md names, as stable codes for reports and checks.
REJECT_REASONS = (
    "missing_required",
    "invalid_email",
    "duplicate_email",
    "unknown_enum",
    "unparseable_date",
    "unparseable_number",
    "out_of_range",
    "invalid_value",
    "invalid_json",
    "missing_reference",
    "rejected_reference",
)

MASK = "***"
_MAX_VALUE_CHARS = 200


@dataclass(frozen=True)
class Reject:
    entity: str
    bubble_id: str
    column: str  # Phase 2 column the problem is about
    field: str  # Bubble field (key) it came from
    value: str | None  # the offending value, masked for passwords, shortened for long text
    reason: str  # one of REJECT_REASONS
    message: str  # what is wrong and what to do

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def display_value(value: object, *, secret: bool = False) -> str | None:
    if value is None:
        return None
    if secret:
        return MASK
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 1] + "…"
