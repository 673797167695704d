"""Dagster's SQLite event log, held open while the run's steps write to it.

Dagster stores each event through a connection of its own, opened and closed. When that connection is
the file's last, SQLite checkpoints its write-ahead log into the database and syncs both to disk on
close: ~10 ms an event here, against ~1 ms while another connection keeps the file open. A cutover
stores ~500 events (a check's result alone is three), so these syncs were seconds of its downtime.
The resource keeps the run's shard and the cross-run index open for as long as Dagster keeps the
resource: the whole run under the in-process executor, a step under the multiprocess one. It reads
nothing and writes nothing; on another storage (PostgreSQL) it does nothing.
"""

import sqlite3
from pathlib import Path

import dagster as dg
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from pydantic import PrivateAttr


class EventLogResource(dg.ConfigurableResource):
    """Holds the instance's SQLite event log files open for the run (see the module's docstring)."""

    _held: list[sqlite3.Connection] = PrivateAttr(default_factory=list)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        storage = context.instance.event_log_storage if context.instance else None
        if not isinstance(storage, SqliteEventLogStorage) or context.run is None:
            return
        for shard in (context.run.run_id, INDEX_SHARD_NAME):
            path = Path(storage.path_for_shard(shard))
            if path.exists():  # never created here: Dagster makes a shard with its tables
                self._held.append(_hold(path))

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        while self._held:
            self._held.pop().close()


def _hold(path: Path) -> sqlite3.Connection:
    """A connection that has opened the write-ahead log (so SQLite counts it) and holds no transaction."""
    conn = sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True, check_same_thread=False)
    conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    return conn
