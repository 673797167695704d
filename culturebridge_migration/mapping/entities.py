"""The one table of field mappings: Bubble type and field -> Phase 2 table and column.

Everything that differs between Bubble apps (type names, field key names) is data here and
can be overridden from configuration (see `apply_field_overrides`); the mapping code reads
only this table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Field:
    column: str  # Phase 2 column
    source: str  # Bubble key (display name or field id); dotted paths walk nested objects
    kind: Kind = Kind.TEXT
    required: bool = False
    default: object = None
    values: Mapping[str, str] | None = None  # ENUM: Bubble display text -> Phase 2 value
    ref: str | None = None  # REF: the entity referenced
    min: float | None = None  # inclusive bounds for NUMBER/INTEGER
    max: float | None = None
    min_exclusive: bool = False  # True: value must be > min
    sql_type: str = "text"


@dataclass(frozen=True)
class Entity:
    name: str  # asset name, e.g. "users"
    bubble_type: str  # Data API type, e.g. "user"
    table: str  # Phase 2 table
    fields: tuple[Field, ...]
    csv_prefix: str = ""  # CSV export file name part, e.g. "All-Users"

    @property
    def refs(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.kind is Kind.REF)

    @property
    def upstream(self) -> tuple[str, ...]:
        """Entities this one references, in field order, without repeats."""
        return tuple(dict.fromkeys(f.ref for f in self.refs if f.ref))

    def field(self, column: str) -> Field:
        return next(f for f in self.fields if f.column == column)


# Built-in Bubble fields every record has.
ID_KEY = "_id"
CREATED_KEY = "Created Date"
MODIFIED_KEY = "Modified Date"

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


def _ref(column: str, source: str, entity: str, required: bool = True) -> Field:
    return Field(column, source, Kind.REF, required=required, ref=entity, sql_type="bigint")


def _list(column: str, source: str) -> Field:
    return Field(column, source, Kind.LIST, default=(), sql_type="text[]")


ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity(
            "users",
            "user",
            "users",
            (
                Field("email", "authentication.email.email", Kind.EMAIL, required=True),
                Field(
                    "email_verified",
                    "authentication.email.email_confirmed",
                    Kind.BOOL,
                    default=False,
                    sql_type="boolean",
                ),
                Field("first_name", "First Name"),
                Field("last_name", "Last Name"),
                Field("role", "Role", Kind.ENUM, required=True, values=ROLE),
                # Bubble leaves an option set empty when nobody set it; an account with no
                # status has been usable in Phase 1, so it stays usable in Phase 2.
                Field("status", "Account Status", Kind.ENUM, default="active", values=ACCOUNT_STATUS),
                Field("phone", "Phone"),
                Field("timezone", "Timezone"),
                Field("profile_photo_url", "Profile Photo", Kind.URL),
                Field("password_hash", "Legacy Password", Kind.PASSWORD),
            ),
            csv_prefix="All-Users",
        ),
        Entity(
            "client_profiles",
            "clientprofile",
            "client_profiles",
            (
                _ref("user_id", "User", "users"),
                Field("quiz_answers", "Quiz Answers", Kind.JSON, sql_type="jsonb"),
                _list("goals", "Goals"),
                _list("preferred_languages", "Preferred Languages"),
                Field("current_country", "Current Country"),
                Field("target_country", "Target Country"),
                Field(
                    "onboarding_complete",
                    "Onboarding Complete",
                    Kind.BOOL,
                    default=False,
                    sql_type="boolean",
                ),
            ),
            csv_prefix="All-ClientProfiles",
        ),
        Entity(
            "coach_profiles",
            "coachprofile",
            "coach_profiles",
            (
                _ref("user_id", "User", "users"),
                Field("bio", "Bio"),
                _list("expertise", "Expertise"),
                _list("languages", "Languages"),
                _list("countries", "Countries"),
                Field("hourly_rate", "Hourly Rate", Kind.NUMBER, min=25, max=500, sql_type="numeric(10,2)"),
                Field("years_experience", "Years Experience", Kind.INTEGER, min=0, max=80, sql_type="integer"),
                Field("rating", "Rating", Kind.NUMBER, min=0, max=5, sql_type="numeric(3,2)"),
                Field("verified", "Verified", Kind.BOOL, default=False, sql_type="boolean"),
                Field("availability", "Availability", Kind.JSON, sql_type="jsonb"),
            ),
            csv_prefix="All-CoachProfiles",
        ),
        Entity(
            "bookings",
            "booking",
            "bookings",
            (
                _ref("client_id", "Client", "users"),
                _ref("coach_id", "Coach", "users"),
                Field("session_start", "Session Start", Kind.DATE, required=True, sql_type="timestamptz"),
                Field(
                    "duration_minutes",
                    "Duration Minutes",
                    Kind.INTEGER,
                    required=True,
                    min=0,
                    min_exclusive=True,
                    max=1440,
                    sql_type="integer",
                ),
                Field("status", "Status", Kind.ENUM, required=True, values=BOOKING_STATUS),
                Field("session_type", "Session Type"),
                Field("notes", "Notes"),
                Field("meeting_link", "Meeting Link"),
            ),
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
                    min=0,
                    min_exclusive=True,
                    max=99_999_999.99,
                    sql_type="numeric(10,2)",
                ),
                Field("currency", "Currency", Kind.CURRENCY, default="USD"),
                Field("status", "Status", Kind.ENUM, required=True, values=PAYMENT_STATUS),
                Field("stripe_charge_id", "Stripe Charge ID"),
                Field("paid_at", "Paid At", Kind.DATE, sql_type="timestamptz"),
            ),
            csv_prefix="All-Payments",
        ),
        Entity(
            "posts",
            "post",
            "community_posts",
            (
                _ref("author_id", "Author", "users"),
                Field("title", "Title", required=True),
                Field("body", "Body"),
                _list("tags", "Tags"),
            ),
            csv_prefix="All-Posts",
        ),
        Entity(
            "comments",
            "comment",
            "community_comments",
            (
                _ref("post_id", "Post", "posts"),
                _ref("author_id", "Author", "users"),
                Field("body", "Body", required=True),
            ),
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
                _ref("uploaded_by", "Uploaded By", "users", required=False),
                Field("file_url", "File", Kind.URL),
            ),
            csv_prefix="All-Resources",
        ),
    )
}

# Load order: every entity after the entities it references.
ENTITY_ORDER: tuple[str, ...] = tuple(ENTITIES)


def apply_field_overrides(
    entities: Mapping[str, Entity], overrides: Mapping[str, Mapping[str, str]]
) -> dict[str, Entity]:
    """Return the table with Bubble key names replaced, e.g. {"users": {"first_name": "first_name_text"}}.

    The special column "_type" renames the Bubble type itself. Unknown entities or columns are
    errors: a typo in configuration must not silently fall back to the default name.
    """
    result = dict(entities)
    for name, columns in overrides.items():
        if name not in entities:
            raise ValueError(f"field map names unknown entity {name!r}; known: {', '.join(entities)}")
        entity = entities[name]
        known = {f.column for f in entity.fields}
        unknown = set(columns) - known - {"_type"}
        if unknown:
            raise ValueError(f"field map for {name!r} names unknown columns {sorted(unknown)}; known: {sorted(known)}")
        fields = tuple(dataclasses.replace(f, source=columns.get(f.column, f.source)) for f in entity.fields)
        result[name] = dataclasses.replace(entity, fields=fields, bubble_type=columns.get("_type", entity.bubble_type))
    return result


__all__ = [
    "CREATED_KEY",
    "ENTITIES",
    "ENTITY_ORDER",
    "ID_KEY",
    "MODIFIED_KEY",
    "Entity",
    "Field",
    "Kind",
    "apply_field_overrides",
]
