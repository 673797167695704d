"""Legacy passwords: hashed with bcrypt before anything touches disk; never kept in plain text.

bcrypt releases the GIL, so a thread pool uses every core.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor

import bcrypt

BCRYPT_COST = 12
_BCRYPT = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")
# The same rule for the database's CHECK: a bcrypt hash of cost 12..39, never plain text. A regex
# cannot say ">= BCRYPT_COST", so it is written out; a test holds it to `is_strong_hash`.
STRONG_HASH_SQL_PATTERN = r"^\$2[aby]\$(1[2-9]|[23][0-9])\$[./A-Za-z0-9]{53}$"
BCRYPT_MAX_BYTES = 72  # bcrypt reads no more; bcrypt 5 refuses longer input, older versions cut it silently

# Where the hash a user row holds came from (users.password_hash_source): the migration (a Legacy Password),
# the login bridge (the user's Bubble password, at their first login after cutover), NULL: the Phase 2 app.
HASH_FROM_MIGRATION = "migration"
HASH_FROM_LOGIN_BRIDGE = "login_bridge"
HASH_SOURCES = (HASH_FROM_MIGRATION, HASH_FROM_LOGIN_BRIDGE)
# What a migration run keeps of a row whose hash did not come from the migration, when Bubble brings none:
# the password a user carried over (or set in Phase 2) outlives any later load of their record.
KEPT_PASSWORD_COLUMNS = ("password_hash", "password_hash_source", "password_hash_set_at", "password_reset_required")


def bcrypt_cost(value: str) -> int | None:
    """The cost of a bcrypt hash, or None when the value is not one."""
    match = _BCRYPT.match(value)
    return int(match.group(1)) if match else None


def is_strong_hash(value: str) -> bool:
    cost = bcrypt_cost(value)
    return cost is not None and cost >= BCRYPT_COST


def _bcrypt_input(password: str) -> bytes:
    """The bytes bcrypt reads: at most 72, cut the same way when hashing and when checking."""
    # surrogatepass: a lone surrogate (valid JSON, not UTF-8) is bytes like any other, never a crash of a login.
    return password.encode("utf-8", "surrogatepass")[:BCRYPT_MAX_BYTES]


def hash_password(password: str, cost: int = BCRYPT_COST) -> str:
    return bcrypt.hashpw(_bcrypt_input(password), bcrypt.gensalt(cost)).decode()


def check_password(password: str, hashed: str) -> bool:
    """Whether `password` is the one `hashed` (a bcrypt hash) was made from."""
    return bcrypt.checkpw(_bcrypt_input(password), hashed.encode())


def keeps_password(stored: Mapping[str, object]) -> bool:
    """Whether a migration run must keep a stored row's password when Bubble brings none (KEPT_PASSWORD_COLUMNS)."""
    return stored.get("password_hash") is not None and stored.get("password_hash_source") != HASH_FROM_MIGRATION


def secure_password(value: str, cost: int = BCRYPT_COST) -> str | None:
    """What Phase 2 may keep for a Legacy Password value.

    A bcrypt hash of cost >= 12 is kept; plain text is hashed. A weaker bcrypt hash cannot be
    upgraded without the plain text, so it is dropped and the user resets their password. So is text
    bcrypt cannot hash (more than 72 bytes in UTF-8, or a lone surrogate, which has no UTF-8): one
    such value must not stop the export of every user.
    """
    cost_of_value = bcrypt_cost(value)
    if cost_of_value is not None:
        return value if cost_of_value >= BCRYPT_COST else None
    try:
        plain = value.encode()
    except UnicodeEncodeError:
        return None
    if not plain or len(plain) > BCRYPT_MAX_BYTES:  # bcrypt would check only a part of it: a reset is safer
        return None
    return hash_password(value, cost)


def secure_passwords(
    values: Iterable[str], *, workers: int | None = None, cost: int = BCRYPT_COST, pool: Executor | None = None
) -> list[str | None]:
    """`secure_password` over many values on a thread pool (`pool`, else one of `workers` threads), in order."""
    if pool is not None:
        return list(pool.map(lambda v: secure_password(v, cost), values))
    with ThreadPoolExecutor(max_workers=hashing_threads(workers)) as own:
        return list(own.map(lambda v: secure_password(v, cost), values))


def hashing_threads(workers: int | None) -> int:
    return workers or os.cpu_count() or 2


def protect_record_passwords(
    records: list[dict],
    keys: Iterable[str],
    *,
    known_hashes: Mapping[tuple[str, str], str] | None = None,
    workers: int | None = None,
    pool: Executor | None = None,
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
            version = (record.get("_id"), record.get("Modified Date"))
            # A hostile _id or date (a list) is no key of a known hash: hashed afresh, rejected by the mapper.
            known = known_hashes.get(version) if all(type(part) is str for part in version) else None
            if known is not None:
                record[key] = known
            else:
                targets.append((record, key))
                plain += bcrypt_cost(str(record[key])) is None
    secured = secure_passwords((str(record[key]) for record, key in targets), workers=workers, pool=pool)
    for (record, key), value in zip(targets, secured, strict=True):
        if value is None:
            del record[key]
        else:
            record[key] = value
    return plain


class PasswordGuard:
    """Hashes each page's plain legacy passwords as it arrives, before a checkpoint or export file sees it.

    Records Bubble has not modified since the last load keep the hash Phase 2 already holds
    (`known_hashes`: (Bubble _id, Modified Date) -> hash). Counts what it hashed, and the wall time
    during which any page was being hashed (counted once however many pages hash at once).
    Every page hashes on the guard's one pool of `workers` threads (the cores by default): pages arrive on
    many threads at once, and a pool each put sixteen hashes on two cores, starving the export's requests.
    `close` ends the pool's threads.
    """

    def __init__(
        self, keys: Iterable[str], known_hashes: Mapping[tuple[str, str], str] | None = None, workers: int | None = None
    ) -> None:
        self.keys = list(keys)
        self.known = known_hashes or {}
        self.workers, self.hashed, self.seconds = workers, 0, 0.0
        self._lock = threading.Lock()  # pages arrive on several threads at once
        self._busy, self._busy_since = 0, 0.0  # pages being secured now, and since when
        self._pool: ThreadPoolExecutor | None = None  # made by the first page to hash

    def __call__(self, records: list[dict]) -> None:
        if not self.keys:
            return
        self._busy_changes(+1)
        hashed = 0
        try:
            hashed = protect_record_passwords(records, self.keys, known_hashes=self.known, pool=self._hashing_pool())
        finally:
            self._busy_changes(-1, hashed)

    def _hashing_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(hashing_threads(self.workers), thread_name_prefix="bcrypt")
            return self._pool

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()

    def _busy_changes(self, by: int, hashed: int = 0) -> None:
        # One lock for the busy time and the count: concurrent pages lost updates to a bare counter.
        with self._lock:
            now = time.perf_counter()
            if self._busy:
                self.seconds += now - self._busy_since
            self._busy, self._busy_since = self._busy + by, now
            self.hashed += hashed
