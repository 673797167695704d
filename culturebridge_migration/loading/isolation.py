"""Rows PostgreSQL refuses, found and set aside so the rest of the table loads, as pgloader does.

A COPY or an upsert of many rows fails as a whole when one row breaks a constraint (one of ours,
or one the app team added later) or holds a value PostgreSQL cannot store. Each batch therefore runs
in a savepoint; a batch that fails for a reason about its data is split in two and each half tried
again, until every refused row stands alone. Each such row becomes a reject in PostgreSQL's own
words; every other row loads in the same run. An error that is not about a row (the server went
away, the disk is full) is not caught here: it fails the step, and the table's transaction leaves
the table as it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

import psycopg

from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import Entity, Kind
from culturebridge_migration.mapping.rejects import Reject, RejectReason, display_value, printable
from culturebridge_migration.mapping.values import format_bubble_datetime, has_unstorable

# Errors about the rows being written: a value, a constraint, a size limit, text that cannot be encoded.
ROW_ERRORS = (psycopg.DataError, psycopg.IntegrityError, psycopg.errors.ProgramLimitExceeded, UnicodeEncodeError)

T = TypeVar("T")
R = TypeVar("R")


def isolate(
    db: Phase2Database,
    items: Sequence[T],
    attempt: Callable[[Sequence[T]], R],
    add: Callable[[R, R], R],
    none: R,
) -> tuple[R, list[tuple[T, Exception]]]:
    """Run `attempt` on `items` in a savepoint; on a row error, on each half, down to single items.

    Returns the combined results of the attempts that succeeded, and each refused item with its error.
    """
    refused: list[tuple[T, Exception]] = []

    def attempt_part(part: Sequence[T]) -> R:
        try:
            with db.transaction():
                return attempt(part)
        except ROW_ERRORS as exc:
            if len(part) == 1:
                refused.append((part[0], exc))
                return none
            middle = len(part) // 2
            return add(attempt_part(part[:middle]), attempt_part(part[middle:]))

    return (attempt_part(items) if items else none), refused


# -- a refused row, as a person can act on it -----------------------------------------------------
_ADVICE = {
    "23514": "a CHECK constraint of the table refuses it: correct the record in Bubble, or the constraint",
    "23505": "another row already holds this value: correct one of them in Bubble",
    "23502": "the column needs a value: fill it in Bubble",
    "23503": "it points at a row that is not in Phase 2",
    "54000": "a value is larger than PostgreSQL allows: shorten it in Bubble",
}


def refusal_reject(entity: Entity, row: Mapping[str, object], error: Exception) -> Reject:
    """The reject of a row PostgreSQL refused, naming its column where PostgreSQL or the row tells it."""
    column = _refused_column(entity, row, error)
    fields = {f.column: f for f in entity.fields}
    spec = fields.get(column or "")
    return Reject(
        entity=entity.name,
        bubble_id=printable(str(row.get("bubble_id", ""))),
        field=spec.source if spec else (column or "(row)"),
        column=column or "(row)",
        value=display_value(row.get(column), secret=spec is not None and spec.kind is Kind.PASSWORD)
        if column
        else None,
        reason=RejectReason.REFUSED_BY_DATABASE.value,
        message=_refusal_message(error),
        created_at=format_bubble_datetime(created) if isinstance(created := row.get("created_at"), datetime) else None,
    )


def _refused_column(entity: Entity, row: Mapping[str, object], error: Exception) -> str | None:
    if isinstance(error, UnicodeEncodeError):
        return next((c for c, v in row.items() if isinstance(v, str) and has_unstorable(v)), None)
    diag = getattr(error, "diag", None)
    if diag is None:
        return None
    if diag.column_name:
        return diag.column_name
    # Our constraints are named <table>_<column>_check / _fkey (loading/schema.py); the app's may say nothing.
    match = re.fullmatch(rf"{re.escape(entity.table)}_(\w+?)_(check\d*|fkey|key)", diag.constraint_name or "")
    return match.group(1) if match and match.group(1) in row else None


def _refusal_message(error: Exception) -> str:
    if isinstance(error, UnicodeEncodeError):
        return (
            f"PostgreSQL cannot store this text ({error.reason} at character {error.start}): correct the text in Bubble"
        )
    diag = getattr(error, "diag", None)
    words = (diag.message_primary if diag and diag.message_primary else str(error)).strip()
    detail = f" ({diag.message_detail.strip()})" if diag and diag.message_detail else ""
    code = getattr(error, "sqlstate", "") or ""
    advice = _ADVICE.get(code) or (
        "a value does not fit its column" if code.startswith("22") else "see PostgreSQL's words"
    )
    return f"PostgreSQL refused the row: {words}{detail}; {advice}"
