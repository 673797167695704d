"""Pure converters from Bubble values (API JSON or CSV export text) to Phase 2 values.

Each raises `ValueError` with a message a person can act on; the mapper turns that into a
reject. None of them guess: a value that is not clearly what the field holds is an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

_TRUE = {"yes", "true", "1", "y"}
_FALSE = {"no", "false", "0", "n"}

# Formats beside ISO 8601 that Bubble exports and people type. Naive ones are local time.
_DATE_FORMATS = (
    "%b %d, %Y %I:%M %p",  # CSV export: "Nov 5, 2025 2:03 pm"
    "%b %d, %Y %I:%M:%S %p",
    "%b %d, %Y",
    "%B %d, %Y %I:%M %p",
    "%B %d, %Y",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)

# Deliberately simple: one @, no spaces, a dot in the domain. Shared with the valid_emails check's SQL.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_EMAIL = re.compile(EMAIL_PATTERN)
_THOUSANDS = re.compile(r"-?\d{1,3}(,\d{3})+(\.\d+)?")


def parse_datetime(value: object, tz: str = "UTC") -> datetime:
    """Parse ISO 8601, Bubble's CSV format or a common format; naive values are in `tz`. Returns UTC."""
    if type(value) is str and value[-1:] == "Z":
        # The Data API's form, 2025-11-05T14:03:22.120Z: nearly every date of an export. Anything
        # that does not parse to UTC here takes the general path below.
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is UTC:
                return parsed
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            parsed = datetime.fromtimestamp(value / 1000, UTC)  # Bubble's epoch milliseconds
        except (OverflowError, OSError, ValueError):  # out of range, inf or nan: a reject, not a crash
            raise ValueError(f"{value!r} is not a date (epoch milliseconds out of range)") from None
    elif isinstance(value, str) and value.strip():
        parsed = _parse_date_text(value.strip())
    else:
        raise ValueError(f"{value!r} is not a date")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz))
    return parsed.astimezone(UTC)


def _parse_date_text(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    normalized = re.sub(r"\s+", " ", text).replace("am", "AM").replace("pm", "PM")
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(normalized, fmt)
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a date in ISO 8601 or Bubble's export format")


def format_bubble_datetime(value: datetime) -> str:
    """The Data API's form: 2025-11-05T14:03:22.120Z."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_bool(value: object) -> bool:
    if value is True or value is False:
        return value  # type: ignore[return-value]
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not yes/no")


def parse_decimal(value: object) -> Decimal:
    """A number; text may carry a $ and thousands separators (1,234.50), never a decimal comma (12,50)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    # A float's repr is its shortest exact text (0.1 -> "0.1"), so the Decimal holds what Bubble sent.
    text = str(value).strip().removeprefix("$") if isinstance(value, str | Decimal) else repr(value)
    if "," in text:
        if not _THOUSANDS.fullmatch(text):
            raise ValueError(f"{value!r} is not a number (use a dot for decimals)")
        text = text.replace(",", "")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return number


def parse_integer(value: object) -> int:
    if type(value) is int:
        return value
    number = parse_decimal(value)
    if number != number.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number")
    return int(number)


def parse_list(value: object) -> list[str]:
    """A Bubble list: a JSON array from the API, or ' , '-joined text from the CSV export."""
    if isinstance(value, list):
        items = value
    elif isinstance(value, str):
        items = value.split(" , ") if value.strip() else []
    else:
        raise ValueError(f"{value!r} is not a list")
    result = []
    for item in items:
        text = (item if type(item) is str else str(item)).strip()
        if text:
            result.append(text)
    return result


def parse_json(value: object) -> object:
    """A text field holding JSON (or already-decoded JSON from the API)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON ({exc.msg} at character {exc.pos})") from None


def parse_email(value: object) -> str:
    email = str(value).strip().lower()
    if not _EMAIL.match(email):
        raise ValueError(f"{value!r} is not a valid email address")
    return email


def enum_parser(values: dict[str, str]) -> Callable[[object], str]:
    """Option set display text -> Phase 2 value, matching regardless of case and surrounding spaces.

    The lookup table is built once per option set, not per value.
    """
    by_lower = {k.lower(): v for k, v in values.items()}
    exact = {k: by_lower[k.lower()] for k in values}  # the display texts as Bubble writes them
    choices = ", ".join(values)

    def parse(value: object) -> str:
        if type(value) is str:
            found = exact.get(value)
            if found is not None:
                return found
        text = str(value).strip().lower()
        if text in by_lower:
            return by_lower[text]
        raise ValueError(f"{value!r} is not one of {choices}")

    return parse


# Shared with the table's CHECK constraint.
CURRENCY_PATTERN = r"^[A-Z]{3}$"
_CURRENCY = re.compile(CURRENCY_PATTERN)


def parse_currency(value: object) -> str:
    code = str(value).strip().upper()
    if not _CURRENCY.match(code):
        raise ValueError(f"{value!r} is not an ISO 4217 currency code like USD")
    return code


def normalize_url(value: object) -> str:
    """Bubble serves uploaded files as protocol-relative URLs (//s3.amazonaws.com/...)."""
    url = str(value).strip()
    return "https:" + url if url.startswith("//") else url
