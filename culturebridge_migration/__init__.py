"""CultureBridge Phase 1 (Bubble.io) -> Phase 2 (PostgreSQL) migration, as a Dagster asset graph."""

from culturebridge_migration.definitions import defs

__all__ = ["defs"]
