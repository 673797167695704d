"""One login through the bridge: the decision (pure), bcrypt, Bubble's answer, the hash stored, the try audited.

A user with a Phase 2 hash is checked against it; Bubble is not asked. Inside the window, a user without one
is checked by Bubble, and on success Phase 2 keeps a bcrypt hash (cost 12) on the user Bubble named by its
_id. Every path does one bcrypt operation (a dummy check when there is nothing to check or store), so an
unknown e-mail answers in about the time of a wrong password. Tries of one account are serialized by an
advisory lock, so parallel guesses cannot slip past the limits.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from psycopg import sql

from culturebridge_migration.bridge.attempts import UNKNOWN_SOURCE, record_attempt, wait_seconds
from culturebridge_migration.bridge.bubble_login import Verdict, ask_bubble
from culturebridge_migration.bridge.config import BridgeConfig, config_from_env
from culturebridge_migration.bridge.window import window_end
from culturebridge_migration.loading.database import connect
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.loading.schema_evolution import ensure_schema
from culturebridge_migration.mapping.entities import ENTITIES, Kind
from culturebridge_migration.mapping.passwords import HASH_FROM_LOGIN_BRIDGE, check_password, hash_password
from culturebridge_migration.mapping.values import EMAIL_PATTERN

logger = logging.getLogger(__name__)
_EMAIL = re.compile(EMAIL_PATTERN)
NOT_AN_EMAIL = "(not an e-mail)"  # the audit's account for such a try, whatever was typed
USERS = ENTITIES["users"]
EMAIL_COLUMN = next(f.column for f in USERS.fields if f.kind is Kind.EMAIL)


class Outcome(StrEnum):
    OK = "ok"
    WRONG_PASSWORD = "wrong_password"
    UNKNOWN_EMAIL = "unknown_email"
    NOT_MIGRATED = "not_migrated"  # Bubble knows the password, Phase 2 has no such user (or it has its own hash now)
    TOO_MANY_TRIES = "too_many_tries"
    WINDOW_CLOSED = "window_closed"  # no Phase 2 hash and the bridge is closed: a password reset
    BUBBLE_UNAVAILABLE = "bubble_unavailable"


HTTP_STATUS = {
    Outcome.OK: 200,
    Outcome.WRONG_PASSWORD: 401,
    Outcome.UNKNOWN_EMAIL: 401,
    Outcome.NOT_MIGRATED: 401,
    Outcome.TOO_MANY_TRIES: 429,
    Outcome.WINDOW_CLOSED: 410,
    Outcome.BUBBLE_UNAVAILABLE: 503,
}


class Path(StrEnum):
    PHASE2 = "phase2"  # checked against the hash Phase 2 holds
    BUBBLE = "bubble"  # checked by Bubble's login workflow


@dataclass(frozen=True)
class LoginResult:
    outcome: Outcome
    user_id: int | None = None  # Phase 2's users.id, when the login succeeded
    path: Path | None = None
    retry_after: int | None = None  # seconds, with TOO_MANY_TRIES

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.outcome]


@dataclass(frozen=True)
class Account:
    """What Phase 2 holds of the e-mail given."""

    user_id: int
    password_hash: str | None


class Step(StrEnum):
    CHECK_HASH = "check_hash"
    ASK_BUBBLE = "ask_bubble"
    CLOSED = "closed"
    NO_SUCH_USER = "no_such_user"


def decide(account: Account | None, window_open: bool) -> Step:
    """What a login does (pure). An unknown e-mail asks Bubble too while the window is open: the same time as a
    user without a hash, and never a hash stored (NOT_MIGRATED)."""
    if account is not None and account.password_hash is not None:
        return Step.CHECK_HASH
    if not window_open:
        return Step.CLOSED if account is not None else Step.NO_SUCH_USER
    return Step.ASK_BUBBLE


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_hex(16))


def _burn_bcrypt(password: str) -> None:
    """One bcrypt check against a hash no password matches: the time a real check takes."""
    check_password(password, _dummy_hash())


class PasswordBridge:
    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self._ready = False
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """The bookkeeping (the attempts table) and the users' bridge columns, installed once per process."""
        with self._lock:
            if not self._ready:
                with connect(self.config.database_url) as conn:
                    ensure_schema(conn, self.config.schemas, owner=self.config.schema_owner)
                _dummy_hash()
                self._ready = True

    def login(self, email: str, password: str, source: str | None = None) -> LoginResult:
        """`source`: the end user's address (per-address limits apply to it); None: unknown, only per-account."""
        self.prepare()
        account_key = email.strip().lower()
        if not _EMAIL.match(account_key):  # a password typed into the e-mail field must not reach the audit
            account_key = NOT_AN_EMAIL
        with connect(self.config.database_url) as conn, conn.transaction():
            db = Phase2Database(conn, self.config.schemas)
            db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"culturebridge.password_bridge:{account_key}",))
            account = self._account(db, account_key)
            result = self._login(db, account, account_key, password, source)
            user_id = result.user_id if result.user_id is not None else (account.user_id if account else None)
            record_attempt(db, account_key, user_id, result.outcome, result.path, source or UNKNOWN_SOURCE)
        logger.info("password bridge: %s via %s for user %s from %s", result.outcome, result.path, user_id, source)
        return result

    def window_end(self) -> datetime | None:
        with connect(self.config.database_url) as conn:
            return window_end(Phase2Database(conn, self.config.schemas), self.config.until)

    # -- one login, inside the account's lock ----------------------------------------------------------
    def _login(
        self, db: Phase2Database, account: Account | None, account_key: str, password: str, source: str | None
    ) -> LoginResult:
        wait = wait_seconds(db, account_key, source, self.config.limits)
        if wait:
            return LoginResult(Outcome.TOO_MANY_TRIES, retry_after=wait)
        if account_key == NOT_AN_EMAIL:
            _burn_bcrypt(password)
            return LoginResult(Outcome.UNKNOWN_EMAIL)
        step = decide(account, self._window_open(db))
        if step is Step.CHECK_HASH:
            assert account is not None and account.password_hash is not None
            if check_password(password, account.password_hash):
                return LoginResult(Outcome.OK, account.user_id, Path.PHASE2)
            return LoginResult(Outcome.WRONG_PASSWORD, path=Path.PHASE2)
        if step is Step.CLOSED:
            return LoginResult(Outcome.WINDOW_CLOSED)
        if step is Step.NO_SUCH_USER:
            _burn_bcrypt(password)
            return LoginResult(Outcome.UNKNOWN_EMAIL)
        return self._through_bubble(db, account, account_key, password)

    def _through_bubble(
        self, db: Phase2Database, account: Account | None, account_key: str, password: str
    ) -> LoginResult:
        config = self.config
        if config.bubble_api_url is None:
            return LoginResult(Outcome.BUBBLE_UNAVAILABLE, path=Path.BUBBLE)
        answer = ask_bubble(
            config.bubble_api_url, config.bubble_api_key, config.login_workflow, account_key, password,
            config.bubble_timeout,
        )  # fmt: skip
        if answer.verdict is Verdict.UNKNOWN:
            logger.warning("password bridge: Bubble could not say (%s)", answer.detail)
            return LoginResult(Outcome.BUBBLE_UNAVAILABLE, path=Path.BUBBLE)
        if answer.verdict is Verdict.REFUSED:
            _burn_bcrypt(password)
            outcome = Outcome.WRONG_PASSWORD if account is not None else Outcome.UNKNOWN_EMAIL
            return LoginResult(outcome, path=Path.BUBBLE)
        if account is None:
            _burn_bcrypt(password)
            return LoginResult(Outcome.NOT_MIGRATED, path=Path.BUBBLE)
        user_id = self._store_hash(db, str(answer.user_id), hash_password(password))
        if user_id is None:
            return LoginResult(Outcome.NOT_MIGRATED, path=Path.BUBBLE)
        return LoginResult(Outcome.OK, user_id, Path.BUBBLE)

    def _account(self, db: Phase2Database, account_key: str) -> Account | None:
        row = db.execute(
            sql.SQL("SELECT id, password_hash FROM {} WHERE lower({}) = %s").format(
                db.table(USERS), sql.Identifier(EMAIL_COLUMN)
            ),
            (account_key,),
        ).fetchone()
        return None if row is None else Account(*row)

    def _window_open(self, db: Phase2Database) -> bool:
        end = window_end(db, self.config.until)
        return end is not None and bool(db.scalar("SELECT clock_timestamp() < %s", (end,)))

    def _store_hash(self, db: Phase2Database, bubble_id: str, hashed: str) -> int | None:
        """The hash, on the user Bubble named (by Bubble's _id, not the e-mail), unless it has one already."""
        return db.scalar(  # type: ignore[return-value]
            sql.SQL(
                "UPDATE {} SET password_hash = %s, password_hash_source = %s, password_hash_set_at = clock_timestamp(),"
                " password_reset_required = false WHERE bubble_id = %s AND password_hash IS NULL RETURNING id"
            ).format(db.table(USERS)),
            (hashed, HASH_FROM_LOGIN_BRIDGE, bubble_id),
        )


_DESCRIPTIONS = {
    Outcome.WRONG_PASSWORD: "cannot log in: wrong password",
    Outcome.UNKNOWN_EMAIL: "cannot log in: no such user in Phase 2 (or Bubble refused the password)",
    Outcome.NOT_MIGRATED: "cannot log in: Bubble knows the password, but Phase 2 has no such user to carry it to",
    Outcome.WINDOW_CLOSED: "cannot log in: no Phase 2 password and the bridge window is closed: a password reset",
    Outcome.BUBBLE_UNAVAILABLE: "unknown: Bubble's login workflow did not answer (try later; see the log)",
}


def describe_result(result: LoginResult) -> str:
    """A sentence for a person: whether the user can log in, and by which path."""
    if result.outcome is Outcome.OK and result.path is Path.PHASE2:
        return f"can log in: checked against the hash Phase 2 holds (user {result.user_id})"
    if result.outcome is Outcome.OK:
        return f"can log in: checked by Bubble; Phase 2 now keeps a bcrypt hash (user {result.user_id})"
    if result.outcome is Outcome.TOO_MANY_TRIES:
        return f"too many failed tries: wait {result.retry_after} s"
    return _DESCRIPTIONS[result.outcome]


@functools.cache
def _bridge_for(config: BridgeConfig) -> PasswordBridge:
    """One bridge per configuration: its schema is prepared once, and a changed environment gets a new one."""
    return PasswordBridge(config)


def login(email: str, password: str, source: str | None = None) -> LoginResult:
    """Log a user in through the bridge, configured by the environment (DATABASE_URL, BUBBLE_API_URL, ...).

    `source` is the end user's address, for the per-address limits and the audit (None: only the per-account
    limits apply; never pass the backend's own address, or every user shares one limit).
    """
    return _bridge_for(config_from_env()).login(email, password, source)
