"""The bridge's settings, read from the environment: the migration's own variables and the bridge's, whose
names, defaults and docs are rows of the settings table (settings.py)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from culturebridge_migration.loading.embedded_server import EMBEDDED_DIR, embedded_server_url
from culturebridge_migration.loading.phase2_db import Schemas
from culturebridge_migration.loading.schema_evolution import SchemaOwner
from culturebridge_migration.settings import BY_VARIABLE

DEFAULT_WORKFLOW = str(BY_VARIABLE["BUBBLE_LOGIN_WORKFLOW"].default)
DEFAULT_WINDOW = timedelta(days=30)  # after the last cutover, while Phase 1 stays up read-only


@dataclass(frozen=True)
class Limits:
    """Failed tries allowed before backoff, per account and per client address, and how the backoff grows.

    Failures count within `period`, and for an account only since its last success. Past the free tries each
    further failure doubles the wait from `base_delay`, up to `max_delay`; a try during the wait is refused (429).
    """

    account_free: int = 5
    address_free: int = 30
    period: timedelta = timedelta(minutes=15)
    base_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class BridgeConfig:
    database_url: str
    bubble_api_url: str | None  # None: Bubble is not asked (only Phase 2 hashes are checked)
    bubble_api_key: str = ""
    login_workflow: str = DEFAULT_WORKFLOW
    until: datetime | None = None  # None: DEFAULT_WINDOW after the last cutover (window.py)
    bubble_timeout: float = 10.0  # seconds; a user waits for it at login
    schemas: Schemas = field(default_factory=Schemas)
    schema_owner: SchemaOwner = SchemaOwner.MIGRATION  # MIGRATION_SCHEMA_OWNER: app, and the bridge evolves nothing
    limits: Limits = field(default_factory=Limits)


def parse_until(text: str) -> datetime:
    """MIGRATION_PASSWORD_BRIDGE_UNTIL: an ISO 8601 time (UTC when it has no zone), or a date: through that day (UTC)."""
    text = text.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text) + timedelta(days=1), time(), UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"MIGRATION_PASSWORD_BRIDGE_UNTIL={text!r} is not an ISO 8601 date or time (e.g. 2026-01-31 or "
            "2026-01-31T18:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def config_from_env(environ: Mapping[str, str] | None = None) -> BridgeConfig:
    """DATABASE_URL (else the embedded server), BUBBLE_API_URL, BUBBLE_API_KEY, BUBBLE_LOGIN_WORKFLOW,
    MIGRATION_PASSWORD_BRIDGE_UNTIL, MIGRATION_SCHEMA_OWNER."""
    env = os.environ if environ is None else environ
    url = env.get("BUBBLE_API_URL") or None
    if url and not env.get("BUBBLE_API_KEY"):
        raise ValueError("BUBBLE_API_URL is set but BUBBLE_API_KEY is not: set it to the admin API token")
    until = env.get("MIGRATION_PASSWORD_BRIDGE_UNTIL")
    return BridgeConfig(
        database_url=env.get("DATABASE_URL") or embedded_server_url(EMBEDDED_DIR),
        bubble_api_url=url.rstrip("/") if url else None,
        bubble_api_key=env.get("BUBBLE_API_KEY", ""),
        login_workflow=env.get("BUBBLE_LOGIN_WORKFLOW") or DEFAULT_WORKFLOW,
        until=parse_until(until) if until else None,
        schema_owner=SchemaOwner(env.get("MIGRATION_SCHEMA_OWNER") or BY_VARIABLE["MIGRATION_SCHEMA_OWNER"].default),
    )
