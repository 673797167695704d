"""Pure converters from Bubble values (API JSON or CSV export text) to Phase 2 values.

Each raises `ValueError` with a message a person can act on; the mapper turns that into a
reject. None of them guess: a value that is not clearly what the field holds is an error.
"""

from __future__ import annotations

import json
import math
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
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00:00-02:00 is past the last date Python holds once in UTC
        raise ValueError(f"{value!r} is out of the range of dates (after converting to UTC)") from None


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


# How deeply lists and objects may nest in one value. Bubble's own values nest a few levels (a
# sign-up's authentication.Google.email is 3); a JSON text a person typed has no reason to pass a
# dozen. A limit keeps every reader of a value (the parsers, the export file, PostgreSQL's jsonb)
# far from Python's recursion limit, which a 10,000-deep document planted in a text field hits.
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?')


def nesting_depth(value: object, limit: int = MAX_JSON_DEPTH) -> int:
    """How deeply lists and objects nest in `value` (a scalar: 0, `[1]`: 1), counted without recursion.

    Stops at the first container deeper than `limit`, so a hostile value costs no more than a legal one.
    """
    if not isinstance(value, list | dict):
        return 0
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        children = node.values() if isinstance(node, dict) else node
        stack += [(child, depth + 1) for child in children if isinstance(child, list | dict)]
    return deepest


def text_nesting_depth(text: str) -> int:
    """How deeply the arrays and objects of a JSON text nest, read without parsing it (no recursion)."""
    depth = deepest = 0
    for bracket in re.findall(r"[\[\]{}]", _JSON_STRING.sub("", text)):  # brackets inside strings do not count
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def pruned_json_text(text: str, keep: int) -> str:
    """The JSON text with every array or object deeper than `keep` levels replaced by `[]`.

    Without recursion: what is left parses safely, and a pruned value still nests deeper than `keep`
    levels, so the reader sees it is too deep and says where, without reading what is too deep.
    """
    parts, depth, start = [], 0, 0
    for token in _JSON_TOKEN.finditer(text):
        bracket = token.group()
        if bracket[0] == '"':
            continue
        if bracket in "[{":
            depth += 1
            if depth == keep + 1:
                parts.append(text[start : token.start()])
        else:
            if depth == keep + 1:
                parts.append("[]")
                start = token.end()
            depth -= 1
    parts.append(text[start:])
    return "".join(parts)


class NestedTooDeep(ValueError):
    """A value nests lists or objects deeper than `MAX_JSON_DEPTH`."""


def too_deep(depth: int) -> str:
    """Why a value nested `depth` deep is refused, for a reject's message."""
    shown = f"more than {MAX_JSON_DEPTH}" if depth > MAX_JSON_DEPTH + 1 else str(depth)
    return f"nests lists or objects {shown} levels deep; at most {MAX_JSON_DEPTH} are accepted"


def parse_json(value: object) -> object:
    """A text field holding JSON (or already-decoded JSON from the API).

    NaN and Infinity are JavaScript, not JSON: PostgreSQL's jsonb refuses them, so they are errors here.
    A value nested deeper than `MAX_JSON_DEPTH` is an error too, found before anything recurses into it.
    """
    if not isinstance(value, str):
        if (depth := nesting_depth(value)) > MAX_JSON_DEPTH:
            raise NestedTooDeep(too_deep(depth))
        _refuse_non_finite(value)
        return value
    # Counting brackets first costs a scan only when there are enough of them to be too many.
    if value.count("[") + value.count("{") > MAX_JSON_DEPTH and (depth := text_nesting_depth(value)) > MAX_JSON_DEPTH:
        raise NestedTooDeep(too_deep(depth))
    try:
        return json.loads(value, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON ({exc.msg} at character {exc.pos})") from None


def _not_json(constant: str) -> object:
    raise ValueError(f"is not valid JSON ({constant} is not a JSON number)")


def _refuse_non_finite(value: object) -> None:
    stack = [value]  # without recursion: the depth was checked, but a loop needs no limit at all
    while stack:
        node = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            raise ValueError(f"is not valid JSON ({node!r} is not a JSON number)")
        if isinstance(node, dict):
            stack += node.values()
        elif isinstance(node, list):
            stack += node


# Characters no PostgreSQL text can hold: NUL, and UTF-16 surrogates that pair with nothing.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def has_unstorable(text: str) -> bool:
    """True when `text` holds a character PostgreSQL text cannot store (NUL, a lone surrogate)."""
    return _UNSTORABLE.search(text) is not None


class UnstorableText(ValueError):
    """A value holds a lone UTF-16 surrogate: no UTF-8 text, and so no PostgreSQL column, can hold it."""


def without_nul(value: object) -> object:
    """`value` with every NUL character removed from its text, however deeply nested.

    NUL carries no meaning in text and PostgreSQL cannot store it, so it is dropped (the caller
    records the change). A lone surrogate cannot be dropped without guessing what was meant: it
    raises `UnstorableText`. Returns `value` itself when nothing had to change.
    """
    if type(value) is str:
        if _UNSTORABLE.search(value) is None:
            return value
        if re.search("[\ud800-\udfff]", value):
            raise UnstorableText(f"{value!r} holds a lone UTF-16 surrogate, which no database text can store")
        return value.replace("\x00", "")
    if isinstance(value, list):
        cleaned = [without_nul(item) for item in value]
        return value if all(a is b for a, b in zip(cleaned, value, strict=True)) else cleaned
    if isinstance(value, dict):
        pairs = [(without_nul(k), without_nul(item)) for k, item in value.items()]
        unchanged = all(a is k and b is item for (a, b), (k, item) in zip(pairs, value.items(), strict=True))
        return value if unchanged else dict(pairs)
    return value


# Bubble's ids look like 1699999999999x123456789012345678 (32 characters) and are opaque; anything
# far longer, or holding a control character, did not come from Bubble's id generator.
MAX_ID_LENGTH = 128
_NOT_IN_AN_ID = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def bubble_id_problem(value: object) -> str | None:
    """Why `value` cannot be a Bubble _id, in words for a reject; None when it can be one.

    The one test of an _id: the mapper rejects a record by it, and every list of exported ids (the
    deletion sweep's, the checks' sample) keeps only the ids that pass it.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return "record has no _id: it cannot be tracked"
    if type(value) is not str:
        return f"_id is a {type(value).__name__}, not text: Bubble ids are text; check the source of this record"
    if len(value) > MAX_ID_LENGTH:
        return f"_id is {len(value):,} characters long; Bubble ids are at most {MAX_ID_LENGTH}: check the source of this record"
    if _NOT_IN_AN_ID.search(value):
        return (
            "_id holds a control character (NUL, a line break, ...) or a lone surrogate, which Bubble ids never "
            "hold: check the source of this record"
        )
    return None


def bubble_id(value: object) -> str | None:
    """`value` when it is a Bubble _id (see `bubble_id_problem`), else None."""
    return value if type(value) is str and bubble_id_problem(value) is None else None  # type: ignore[return-value]


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


# A link Phase 2 may show or follow: http(s), a host, and no space or control character. Matched
# regardless of case. The URL columns' CHECK (STORED_URL_PATTERN) also takes the file:// links of files
# copied to a local folder without MIGRATION_FILES_PUBLIC_URL; nothing else (javascript:, data:, ...).
WEB_URL_PATTERN = r"^https?://[^\x01-\x20\x7f/?#]+([/?#][^\x01-\x20\x7f]*)?$"
STORED_URL_PATTERN = r"^(https?://[^\x01-\x20\x7f/?#]+|file://)([/?#][^\x01-\x20\x7f]*)?$"
_WEB_URL = re.compile(WEB_URL_PATTERN, re.IGNORECASE)


def normalize_url(value: object) -> str:
    """Bubble serves uploaded files as protocol-relative URLs (//s3.amazonaws.com/...)."""
    url = str(value).strip()
    return "https:" + url if url.startswith("//") else url


def parse_web_url(value: object) -> str:
    """A URL column's value: an http(s) link, a protocol-relative one made https; anything else an error."""
    url = normalize_url(value)
    if not _WEB_URL.match(url):
        raise ValueError("is not a web link (http:// or https://, a host, no spaces)")
    return url
