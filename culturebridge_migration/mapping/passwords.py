"""Legacy passwords: hashed with bcrypt before anything touches disk; never kept in plain text.

bcrypt releases the GIL, so a thread pool uses every core.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

import bcrypt

BCRYPT_COST = 12
_BCRYPT = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")


def bcrypt_cost(value: str) -> int | None:
    """The cost of a bcrypt hash, or None when the value is not one."""
    match = _BCRYPT.match(value)
    return int(match.group(1)) if match else None


def is_strong_hash(value: str) -> bool:
    cost = bcrypt_cost(value)
    return cost is not None and cost >= BCRYPT_COST


def secure_password(value: str, cost: int = BCRYPT_COST) -> str | None:
    """What Phase 2 may keep for a Legacy Password value.

    A bcrypt hash of cost >= 12 is kept; plain text is hashed. A weaker bcrypt hash cannot be
    upgraded without the plain text, so it is dropped and the user resets their password.
    """
    cost_of_value = bcrypt_cost(value)
    if cost_of_value is not None:
        return value if cost_of_value >= BCRYPT_COST else None
    if not value:
        return None
    return bcrypt.hashpw(value.encode(), bcrypt.gensalt(cost)).decode()


def secure_passwords(
    values: Iterable[str],
    *,
    workers: int | None = None,
    cost: int = BCRYPT_COST,
    on_done: Callable[[int], None] | None = None,
) -> list[str | None]:
    """`secure_password` over many values on a thread pool, in order."""
    values = list(values)
    results: list[str | None] = []
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        for index, result in enumerate(pool.map(lambda v: secure_password(v, cost), values), 1):
            results.append(result)
            if on_done:
                on_done(index)
    return results


def protect_record_passwords(
    records: list[dict],
    keys: Iterable[str],
    *,
    known_hashes: Mapping[tuple[str, str], str] | None = None,
    workers: int | None = None,
) -> int:
    """Replace every password value under `keys` by what Phase 2 may keep, in place. Returns how many were hashed.

    Runs before an export touches disk, so no file ever holds a plain-text password.
    `known_hashes` maps (Bubble _id, Modified Date) to the hash Phase 2 already holds: a record
    Bubble has not modified since keeps its hash, so a re-run costs no bcrypt work for it.
    """
    known_hashes = known_hashes or {}
    targets, plain = [], 0
    for record in records:
        for key in keys:
            if not record.get(key):
                continue
            known = known_hashes.get((record.get("_id"), record.get("Modified Date")))
            if known is not None:
                record[key] = known
            else:
                targets.append((record, key))
                plain += bcrypt_cost(str(record[key])) is None
    secured = secure_passwords((str(record[key]) for record, key in targets), workers=workers)
    for (record, key), value in zip(targets, secured, strict=True):
        if value is None:
            del record[key]
        else:
            record[key] = value
    return plain
