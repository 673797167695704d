"""The one table of field mappings: Bubble type and field -> Phase 2 table and column, with every rule.

Everything that differs between Bubble apps (type names, field key names) is data here and can be
overridden from configuration (see `apply_field_overrides`). Every rule about a value lives here
once: the mapper applies it to each record, `loading/schema.py` turns it into the table's SQL
(types, NOT NULL, defaults, CHECK constraints, foreign keys) and `validation/rules.py` into the
asset checks that re-check Phase 2 as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class Kind(StrEnum):
    TEXT = "text"
    EMAIL = "email"
    BOOL = "bool"
    NUMBER = "number"  # numeric (money, ratings)
    INTEGER = "integer"
    DATE = "date"
    LIST = "list"  # list of text -> text[]
    JSON = "json"  # text holding JSON -> jsonb
    ENUM = "enum"  # option set display text -> lower-case value
    REF = "ref"  # another thing's _id -> foreign key
    URL = "url"  # image/file: may start with //
    CURRENCY = "currency"  # ISO 4217 code
    PASSWORD = "password"  # Legacy Password -> bcrypt hash, never plain text


_SQL_TYPES = {
    Kind.BOOL: "boolean",
    Kind.INTEGER: "integer",
    Kind.DATE: "timestamptz",
    Kind.LIST: "text[]",
    Kind.JSON: "jsonb",
    Kind.REF: "bigint",
}


@dataclass(frozen=True)
class Bounds:
    """An inclusive (or, at the low end, exclusive) range of numbers: one rule for mapper, CHECK and check."""

    low: Decimal | None = None
    high: Decimal | None = None
    low_exclusive: bool = False

    def __contains__(self, value: Decimal | int) -> bool:
        above = self.low is None or (value > self.low if self.low_exclusive else value >= self.low)
        return above and (self.high is None or value <= self.high)

    def describe(self) -> str:
        """Like `>= 25 and <= 500`, for messages a person reads."""
        low = None if self.low is None else f"{'>' if self.low_exclusive else '>='} {self.low}"
        high = None if self.high is None else f"<= {self.high}"
        return " and ".join(part for part in (low, high) if part)

    def sql(self, column: str) -> str:
        """The same range as a SQL condition on `column` (a plain identifier of ours)."""
        low = None if self.low is None else f"{column} {'>' if self.low_exclusive else '>='} {self.low}"
        high = None if self.high is None else f"{column} <= {self.high}"
        return " AND ".join(part for part in (low, high) if part)


def between(low: str, high: str) -> Bounds:
    return Bounds(Decimal(low), Decimal(high))


def above(low: str, *, up_to: str) -> Bounds:
    return Bounds(Decimal(low), Decimal(up_to), low_exclusive=True)


# The longest text a column takes, in characters: the mapper rejects a longer value, naming the
# limit, and the table's CHECK refuses it too. A name: what Phase 2's sign-up form accepts; a title or a
# short label (a phone, a country, a charge id): a line a person types; free text (a bio, notes, a
# comment): a long essay; a community post: a long article. A link: what browsers and CDNs serve
# reliably; an email: RFC 5321's limit. Far above what people write, far below a planted 5 MB value.
NAME_LENGTH = 200
LINE_LENGTH = 500
ESSAY_LENGTH = 50_000
ARTICLE_LENGTH = 100_000
URL_LENGTH = 2_048
EMAIL_LENGTH = 254
LIST_LENGTH = 10_000  # a list of text (tags, languages): its items together
_TEXT_LENGTHS = {Kind.TEXT: LINE_LENGTH, Kind.URL: URL_LENGTH, Kind.EMAIL: EMAIL_LENGTH, Kind.LIST: LIST_LENGTH}


@dataclass(frozen=True)
class Field:
    column: str  # Phase 2 column
    source: str  # Bubble key (display name or field id); dotted paths walk nested objects
    kind: Kind = Kind.TEXT
    fallback: str | None = None  # where to look when `source` is empty; `*` matches any one key
    required: bool = False
    default: object = None
    values: Mapping[str, str] | None = None  # ENUM: Bubble display text -> Phase 2 value
    ref: str | None = None  # REF: the entity referenced
    bounds: Bounds | None = None  # NUMBER/INTEGER: the values Phase 2 accepts
    digits: tuple[int, int] = (10, 2)  # NUMBER: numeric(precision, scale); values are rounded to the scale
    rule: str | None = None  # name of the asset check that re-checks the bounds on Phase 2, if any
    label: str = ""  # how a person calls the value, for check descriptions
    max_length: int | None = None  # text, a link, a list of text: the most characters (else the kind's default)

    @property
    def sql_type(self) -> str:
        if self.kind is Kind.NUMBER:
            return f"numeric({self.digits[0]},{self.digits[1]})"
        return _SQL_TYPES.get(self.kind, "text")

    @property
    def length_limit(self) -> int | None:
        """The most characters the column takes (a list: its items together); None for a value that is not text."""
        return self.max_length or _TEXT_LENGTHS.get(self.kind)

    @property
    def not_null(self) -> bool:
        """A required value, or one with a default: the column never holds NULL."""
        return self.required or self.default is not None

    @property
    def stored_values(self) -> tuple[str, ...]:
        """ENUM: the Phase 2 values, each once, in the order the field table names them."""
        return tuple(dict.fromkeys((self.values or {}).values()))


@dataclass(frozen=True)
class Entity:
    name: str  # asset name, e.g. "users"
    bubble_type: str  # Data API type, e.g. "user"
    table: str  # Phase 2 table
    fields: tuple[Field, ...]
    noun: str = ""  # one record, as a person says it: "coach profile"
    csv_prefix: str = ""  # CSV export file name part, e.g. "All-Users"
    ignored: tuple[str, ...] = ()  # Bubble keys deliberately left behind (from the field map's "_ignore")

    @property
    def refs(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.kind is Kind.REF)

    @property
    def upstream(self) -> tuple[str, ...]:
        """Entities this one references, in field order, without repeats."""
        return tuple(dict.fromkeys(f.ref for f in self.refs if f.ref))

    @property
    def has_passwords(self) -> bool:
        return any(f.kind is Kind.PASSWORD for f in self.fields)

    def field(self, column: str) -> Field:
        return next(f for f in self.fields if f.column == column)


# Built-in Bubble fields every record has.
ID_KEY = "_id"
CREATED_KEY = "Created Date"
MODIFIED_KEY = "Modified Date"
CREATED_BY_KEY = "Created By"  # a User _id, or a placeholder like admin_user_...: kept as text, never a key
PHASE2_ID_FIELD = "phase2_id"  # the Bubble text field each type needs: the Phase 2 id of a thing the fallback made
BUILT_IN_KEYS = (ID_KEY, CREATED_KEY, MODIFIED_KEY, CREATED_BY_KEY)
# The key of a stand-in the export writes for a record it could not keep as Bubble sent it (one nested
# too deep to read safely): the record's _id and dates where readable, and why. The mapper rejects it.
UNREADABLE_KEY = "_unreadable_record"
# Keys Bubble itself gives records, the same in every app (never renamed, never in /meta's fields).
BUBBLE_OWN_KEYS = frozenset({*BUILT_IN_KEYS, "Slug", "user_signed_up", "authentication"})

ROLE = {"Client": "client", "Coach": "coach", "Admin": "admin"}
ACCOUNT_STATUS = {
    "Active": "active",
    "Inactive": "inactive",
    "Suspended": "suspended",
    "Pending Verification": "pending",
}
BOOKING_STATUS = {
    "Pending": "pending",
    "Requested": "pending",
    "Confirmed": "confirmed",
    "Accepted": "confirmed",
    "Completed": "completed",
    "Done": "completed",
    "Cancelled": "cancelled",
    "Canceled": "cancelled",
    "Declined": "cancelled",
}
PAYMENT_STATUS = {
    "Pending": "pending",
    "Paid": "succeeded",
    "Succeeded": "succeeded",
    "Failed": "failed",
    "Refunded": "refunded",
}
RESOURCE_TYPE = {"Article": "article", "Video": "video", "Guide": "guide", "Worksheet": "worksheet"}

# numeric(10,2) holds at most 99,999,999.99.
LARGEST_AMOUNT = "99999999.99"


def _ref(column: str, source: str, entity: str, required: bool = True, label: str = "") -> Field:
    return Field(column, source, Kind.REF, required=required, ref=entity, label=label)


def _list(column: str, source: str) -> Field:
    return Field(column, source, Kind.LIST, default=())


def _flag(column: str, source: str) -> Field:
    return Field(column, source, Kind.BOOL, default=False)


ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity(
            "users",
            "user",
            "users",
            (
                # Email sign-ups keep it under authentication.email; Google, Facebook, LinkedIn, ...
                # sign-ups under authentication.<Provider>.email.
                Field(
                    "email",
                    "authentication.email.email",
                    Kind.EMAIL,
                    required=True,
                    fallback="authentication.*.email",
                    rule="valid_emails",
                ),
                _flag("email_verified", "authentication.email.email_confirmed"),
                Field("first_name", "First Name", max_length=NAME_LENGTH),
                Field("last_name", "Last Name", max_length=NAME_LENGTH),
                Field("role", "Role", Kind.ENUM, required=True, values=ROLE),
                # Bubble leaves an option set empty when nobody set it; an account with no
                # status has been usable in Phase 1, so it stays usable in Phase 2.
                Field("status", "Account Status", Kind.ENUM, default="active", values=ACCOUNT_STATUS),
                Field("phone", "Phone"),
                Field("timezone", "Timezone"),
                Field("profile_photo_url", "Profile Photo", Kind.URL),
                Field("password_hash", "Legacy Password", Kind.PASSWORD),
                # Bubble's own flag: registered users, as opposed to its temporary ones.
                Field("signed_up", "user_signed_up", Kind.BOOL),
            ),
            noun="user",
            csv_prefix="All-Users",
        ),
        Entity(
            "client_profiles",
            "clientprofile",
            "client_profiles",
            (
                _ref("user_id", "User", "users"),
                Field("quiz_answers", "Quiz Answers", Kind.JSON),
                _list("goals", "Goals"),
                _list("preferred_languages", "Preferred Languages"),
                Field("current_country", "Current Country"),
                Field("target_country", "Target Country"),
                _flag("onboarding_complete", "Onboarding Complete"),
            ),
            noun="client profile",
            csv_prefix="All-ClientProfiles",
        ),
        Entity(
            "coach_profiles",
            "coachprofile",
            "coach_profiles",
            (
                _ref("user_id", "User", "users"),
                Field("bio", "Bio", max_length=ESSAY_LENGTH),
                _list("expertise", "Expertise"),
                _list("languages", "Languages"),
                _list("countries", "Countries"),
                Field(
                    "hourly_rate",
                    "Hourly Rate",
                    Kind.NUMBER,
                    bounds=between("25", "500"),
                    rule="hourly_rate_in_range",
                    label="hourly rate (USD)",
                ),
                Field("years_experience", "Years Experience", Kind.INTEGER, bounds=between("0", "80")),
                Field("rating", "Rating", Kind.NUMBER, bounds=between("0", "5"), digits=(3, 2)),
                _flag("verified", "Verified"),
                Field("availability", "Availability", Kind.JSON),
            ),
            noun="coach profile",
            csv_prefix="All-CoachProfiles",
        ),
        Entity(
            "bookings",
            "booking",
            "bookings",
            (
                _ref("client_id", "Client", "users"),
                _ref("coach_id", "Coach", "users"),
                Field("session_start", "Session Start", Kind.DATE, required=True),
                Field(
                    "duration_minutes",
                    "Duration Minutes",
                    Kind.INTEGER,
                    required=True,
                    bounds=above("0", up_to="1440"),  # a session longer than a day is a typo
                    rule="duration_positive",
                    label="duration in minutes",
                ),
                Field("status", "Status", Kind.ENUM, required=True, values=BOOKING_STATUS),
                Field("session_type", "Session Type"),
                Field("notes", "Notes", max_length=ESSAY_LENGTH),
                Field("meeting_link", "Meeting Link", max_length=URL_LENGTH),  # text: Bubble apps paste any link
            ),
            noun="booking",
            csv_prefix="All-Bookings",
        ),
        Entity(
            "payments",
            "payment",
            "payments",
            (
                _ref("booking_id", "Booking", "bookings"),
                Field(
                    "amount",
                    "Amount",
                    Kind.NUMBER,
                    required=True,
                    bounds=above("0", up_to=LARGEST_AMOUNT),
                    rule="amount_positive",
                    label="amount",
                ),
                Field("currency", "Currency", Kind.CURRENCY, default="USD"),
                Field("status", "Status", Kind.ENUM, required=True, values=PAYMENT_STATUS),
                Field("stripe_charge_id", "Stripe Charge ID"),
                Field("paid_at", "Paid At", Kind.DATE),
            ),
            noun="payment",
            csv_prefix="All-Payments",
        ),
        Entity(
            "posts",
            "post",
            "community_posts",
            (
                _ref("author_id", "Author", "users"),
                Field("title", "Title", required=True),
                Field("body", "Body", max_length=ARTICLE_LENGTH),
                _list("tags", "Tags"),
            ),
            noun="community post",
            csv_prefix="All-Posts",
        ),
        Entity(
            "comments",
            "comment",
            "community_comments",
            (
                _ref("post_id", "Post", "posts"),
                _ref("author_id", "Author", "users"),
                Field("body", "Body", required=True, max_length=ESSAY_LENGTH),
            ),
            noun="comment",
            csv_prefix="All-Comments",
        ),
        Entity(
            "resources",
            "resource",
            "resources",
            (
                Field("title", "Title", required=True),
                Field("url", "URL", Kind.URL),
                Field("resource_type", "Resource Type", Kind.ENUM, values=RESOURCE_TYPE),
                _list("tags", "Tags"),
                _ref("uploaded_by", "Uploaded By", "users", required=False, label="uploader"),
                Field("file_url", "File", Kind.URL),
            ),
            noun="resource",
            csv_prefix="All-Resources",
        ),
    )
}


EXTRA_PREFIX = "extra."  # the entity name of a Bubble type no table migrates


def extra_entity(bubble_type: str, csv_prefix: str = "") -> Entity:
    """A Bubble type no table migrates: exported like the others, and kept verbatim in the migration schema."""
    return Entity(f"{EXTRA_PREFIX}{bubble_type}", bubble_type, "bubble_records", (), f"{bubble_type} thing", csv_prefix)


def load_order(entities: Mapping[str, Entity]) -> list[str]:
    """Every entity after the entities it references (a topological sort); the table's order breaks ties.

    Derived, not written down: a new type cannot be loaded before what it references.
    """
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered:
            return
        if name in visiting:
            raise ValueError(f"the field table's references form a cycle through {name!r}")
        if name not in entities:
            raise ValueError(f"a field references unknown entity {name!r}")
        visiting.add(name)
        for upstream in entities[name].upstream:
            visit(upstream)
        visiting.discard(name)
        ordered.append(name)

    for name in entities:
        visit(name)
    return ordered


def apply_field_overrides(
    entities: Mapping[str, Entity], overrides: Mapping[str, Mapping[str, object]]
) -> dict[str, Entity]:
    """Return the table with Bubble key names replaced, e.g. {"users": {"first_name": "first_name_text"}}.

    The special column "_type" renames the Bubble type itself; "_ignore" lists Bubble keys left
    behind on purpose (they are then neither kept in bubble_extra nor reported as unmapped). Unknown
    entities or columns, and two columns read from one key, are errors: a typo in configuration must
    not silently fall back to the default name.
    """
    result = dict(entities)
    for name, columns in overrides.items():
        if name not in entities:
            raise ValueError(f"field map names unknown entity {name!r}; known: {', '.join(entities)}")
        entity = entities[name]
        known = {f.column for f in entity.fields}
        unknown = set(columns) - known - {"_type", "_ignore"}
        if unknown:
            raise ValueError(f"field map for {name!r} names unknown columns {sorted(unknown)}; known: {sorted(known)}")
        ignored = _key_list(name, columns, "_ignore")
        wrong = [column for column in known & set(columns) if not isinstance(columns[column], str)]
        if wrong:
            raise ValueError(f"field map for {name!r}: the Bubble key of {sorted(wrong)} must be text")
        fields = tuple(dataclasses.replace(f, source=str(columns.get(f.column, f.source))) for f in entity.fields)
        _refuse_shared_keys(name, fields)
        result[name] = dataclasses.replace(
            entity,
            fields=fields,
            bubble_type=columns.get("_type", entity.bubble_type),
            ignored=tuple(dict.fromkeys([*entity.ignored, *ignored])),
        )
    return result


def _key_list(entity: str, columns: Mapping[str, object], name: str) -> list[str]:
    keys = columns.get(name, [])
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise ValueError(f"field map for {entity!r}: {name!r} must be a list of names")
    return keys


def _refuse_shared_keys(entity: str, fields: tuple[Field, ...]) -> None:
    """Two columns read from one Bubble key is a typo in the field map, not a mapping."""
    readers: dict[str, str] = {}
    for spec in fields:
        first = readers.setdefault(spec.source, spec.column)
        if first != spec.column:
            raise ValueError(
                f"field map for {entity!r} reads Bubble key {spec.source!r} into both {first!r} and {spec.column!r}"
            )


__all__ = [
    "CREATED_KEY",
    "ENTITIES",
    "ID_KEY",
    "MODIFIED_KEY",
    "Bounds",
    "Entity",
    "Field",
    "Kind",
    "apply_field_overrides",
    "load_order",
]
