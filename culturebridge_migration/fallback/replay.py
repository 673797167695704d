"""The fallback: the Phase 2 app's changes since cutover written back to Bubble, so DNS can point at Phase 1
again without losing a sign-up, a booking or a payment (DESIGN.md §5).

Per type, in load order (a booking after its client): the rows the app created go out by bulk create, each
carrying its Phase 2 id in `phase2_id`; the rows it changed by PATCH; the rows it deleted by DELETE, last and
in reverse order. Each written row is recorded in the ledger, so a rerun writes only what is left. Before a
create is sent its rows are marked, and a rerun after a crash looks them up by `phase2_id` first: a create
Bubble made but whose answer was lost is adopted, not made twice. A Bubble record modified after cutover
(or after the fallback's own last write) is a conflict: listed with both versions, never overwritten. A
write Bubble refuses is a dead letter with Bubble's reason. A rehearsal reads the same and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from culturebridge_migration.fallback import ledger
from culturebridge_migration.loading.change_capture import NetChange
from culturebridge_migration.loading.phase2_db import Phase2Database
from culturebridge_migration.mapping.entities import ID_KEY, MODIFIED_KEY, Entity, load_order
from culturebridge_migration.mapping.reverse import PHASE2_ID_FIELD, UnresolvedReference, bubble_fields
from culturebridge_migration.mapping.values import parse_datetime
from culturebridge_migration.sources.bubble_api import BubbleClient, BubbleThingMissing
from culturebridge_migration.sources.bubble_writes import BubbleWriter, BubbleWriteRefused

OPERATIONS = ("insert", "update", "delete")
Log = Callable[[str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    """A change not written: a `conflict` (Bubble changed the record since cutover) or a `dead_letter`."""

    kind: str
    entity: str
    row_id: int
    bubble_id: str | None
    operation: str
    reason: str
    phase2: dict | None = None  # the row as Phase 2 has it, in Bubble's fields
    bubble: dict | None = None  # the record as Bubble has it


@dataclass
class Replay:
    """What one fallback run found and did, per type and operation."""

    rehearsal: bool
    inserts: frozenset[tuple[str, int]] = frozenset()  # (table, row id) of every row to create in this run
    planned: dict[str, dict[str, int]] = field(default_factory=dict)  # entity -> operation -> rows
    done: dict[str, dict[str, int]] = field(default_factory=dict)  # entity -> operation -> rows written
    adopted: int = 0  # creates a crashed run made, found again by phase2_id
    problems: list[Problem] = field(default_factory=list)

    def count(self, book: dict[str, dict[str, int]], entity: str, operation: str) -> None:
        book.setdefault(entity, dict.fromkeys(OPERATIONS, 0))[operation] += 1


def replay(db: Phase2Database, client: BubbleClient, *, rehearsal: bool = False, log: Log = lambda _: None) -> Replay:
    """Write every pending change to Bubble (or, rehearsing, find what would be written and what would not)."""
    started = ledger.capture_started(db)
    outcome = Replay(rehearsal)
    if started is None:
        log("change capture was never installed (a cutover installs it): there is nothing to fall back")
        return outcome
    changes = ledger.pending(db)
    outcome.inserts = frozenset((c.table_name, c.row_id) for c in changes if c.operation == "insert")
    order = load_order(db.entities)
    writer = BubbleWriter(client)
    for name in order:
        entity = db.entities[name]
        mine = [c for c in changes if c.table_name == entity.table and c.operation != "delete"]
        if mine:
            _TypeReplay(db, client, writer, entity, started, outcome).upserts(mine)
            log(f"{name}: {_tally(outcome, name, ('insert', 'update'))}")  # progress, type by type
    for name in reversed(order):
        entity = db.entities[name]
        gone = [c for c in changes if c.table_name == entity.table and c.operation == "delete"]
        if gone:
            _TypeReplay(db, client, writer, entity, started, outcome).deletes(gone)
            log(f"{name}: {_tally(outcome, name, ('delete',))}")
    return outcome


def _tally(outcome: Replay, name: str, operations: tuple[str, ...]) -> str:
    planned, done = outcome.planned.get(name, {}), outcome.done.get(name, {})
    verb = "to write" if outcome.rehearsal else "written"
    return (
        ", ".join(
            f"{op} {done.get(op, 0) if not outcome.rehearsal else planned.get(op, 0)} {verb}"
            + ("" if outcome.rehearsal else f" of {planned.get(op, 0)}")
            for op in operations
            if planned.get(op)
        )
        or "nothing to write"
    )


@dataclass
class _TypeReplay:
    db: Phase2Database
    client: BubbleClient
    writer: BubbleWriter
    entity: Entity
    started: datetime
    outcome: Replay

    def __post_init__(self) -> None:
        self._ledger = ledger.written(self.db, self.entity.table)  # as it was when this type's turn began

    # -- creates and changes --------------------------------------------------------------------------
    def upserts(self, changes: list[NetChange]) -> None:
        """The type's creates and changes (its deletes come last, in `deletes`)."""
        rows = ledger.rows(self.db, self.entity, [c.row_id for c in changes])
        inserts = [c for c in changes if c.operation == "insert" and c.row_id in rows]
        updates = [c for c in changes if c.operation == "update" and c.row_id in rows]
        for change in inserts + updates:
            self.outcome.count(self.outcome.planned, self.entity.name, change.operation)
        self._creates(inserts, rows)
        current = self._bubble_records([c.bubble_id for c in updates if c.bubble_id])
        patches = []
        for change in updates:
            fields = self._fields(change, rows[change.row_id], clear_empty=True)
            if fields is not None and self._unchanged_in_bubble(change, current, fields):
                patches.append((change, fields))
        if not self.outcome.rehearsal:
            self._send_each(patches, self._patch)

    def _creates(self, inserts: list[NetChange], rows: dict[int, dict]) -> None:
        if not inserts:
            return
        table = self.entity.table
        sent_before = {row_id for row_id, (sending, _) in self._ledger.items() if sending}
        found = self._made_before([c.row_id for c in inserts if c.row_id in sent_before])
        to_create: list[tuple[NetChange, dict]] = []
        for change in inserts:
            if change.row_id in found:
                self.outcome.adopted += 1
                self._done(change, found[change.row_id], created=True)
                continue
            fields = self._fields(change, rows[change.row_id])
            if fields is not None:
                to_create.append((change, fields))
        if self.outcome.rehearsal or not to_create:
            return
        ledger.mark_sending(self.db, table, [c.row_id for c, _ in to_create])
        results = self.writer.bulk_create(self.entity.bubble_type, [f for _, f in to_create])
        refused = []
        for (change, fields), result in zip(to_create, results, strict=True):
            if result.ok:
                self._done(change, result.id, created=True)
            else:
                refused.append(change.row_id)
                self._problem("dead_letter", change, f"Bubble refused the create: {result.error}", fields)
        ledger.clear_sending(self.db, table, refused)

    def _made_before(self, row_ids: list[int]) -> dict[int, str]:
        """Of rows whose create a crashed run sent, those Bubble made: row id -> the Bubble id."""
        if not row_ids:
            return {}
        records = self.client.find_in(self.entity.bubble_type, PHASE2_ID_FIELD, [str(i) for i in row_ids])
        found = {}
        for record in records:  # what a person may have typed into phase2_id in Bubble is not trusted
            marker = str(record.get(PHASE2_ID_FIELD, ""))
            if marker.isascii() and marker.isdigit() and isinstance(record.get(ID_KEY), str):
                found[int(marker)] = record[ID_KEY]
        return found

    def _patch(self, change: NetChange, fields: dict) -> Problem | None:
        try:
            self.writer.patch(self.entity.bubble_type, change.bubble_id or "", fields)
        except BubbleWriteRefused as exc:
            return self._problem_of("dead_letter", change, f"Bubble refused the change: {exc.reason}", fields)
        except BubbleThingMissing:
            return self._problem_of("conflict", change, "the record was deleted in Bubble after cutover", fields)
        return None

    # -- deletes ----------------------------------------------------------------------------------------
    def deletes(self, changes: list[NetChange]) -> None:
        current = self._bubble_records([c.bubble_id for c in changes if c.bubble_id])
        doomed: list[tuple[NetChange, None]] = []
        for change in changes:
            self.outcome.count(self.outcome.planned, self.entity.name, "delete")
            if not change.bubble_id or change.bubble_id not in current:  # never in Bubble, or already gone
                if not self.outcome.rehearsal:
                    self._done(change, change.bubble_id)
                continue
            if self._unchanged_in_bubble(change, current, None) and not self.outcome.rehearsal:
                doomed.append((change, None))
        self._send_each(doomed, self._delete)

    def _delete(self, change: NetChange, _: None) -> Problem | None:
        self.writer.delete(self.entity.bubble_type, change.bubble_id or "")  # already gone is as good
        return None

    # -- shared --------------------------------------------------------------------------------------------
    def _send_each(self, writes: list[tuple[NetChange, T]], send: Callable[[NetChange, T], Problem | None]) -> None:
        """One request per write, as many at once as the client allows; each recorded here as its answer comes
        (the database connection is this thread's), so a crash midway keeps what was done."""
        with ThreadPoolExecutor(max_workers=self.client.workers, thread_name_prefix="fallback") as pool:
            for (change, _), problem in zip(writes, pool.map(lambda w: send(*w), writes), strict=True):
                if problem is None:
                    self._done(change, change.bubble_id)
                else:
                    self.outcome.problems.append(problem)

    def _bubble_records(self, bubble_ids: list[str]) -> dict[str, dict]:
        return {r.get(ID_KEY): r for r in self.client.find_in(self.entity.bubble_type, ID_KEY, bubble_ids)}

    def _unchanged_in_bubble(self, change: NetChange, current: dict[str, dict], fields: dict | None) -> bool:
        """Whether Bubble's record is as the fallback last knew it; if not, a conflict is listed."""
        record = current.get(change.bubble_id or "")
        if record is None:
            self._problem("conflict", change, "the record was deleted in Bubble after cutover", fields)
            return False
        since = self._ledger.get(change.row_id, (False, self.started))[1]
        try:
            modified = parse_datetime(record.get(MODIFIED_KEY))
        except ValueError:
            return True
        if modified > max(since, self.started):
            reason = f"Bubble's record was modified at {modified.isoformat()}, after cutover: not overwritten"
            self._problem("conflict", change, reason, fields, record)
            return False
        return True

    def _fields(self, change: NetChange, row: dict, *, clear_empty: bool = False) -> dict | None:
        try:
            return bubble_fields(self.entity, row, ledger.bubble_id_of(self.db), clear_empty=clear_empty)
        except UnresolvedReference as exc:
            if self.outcome.rehearsal and self._created_in_this_fallback(exc):
                return {}
            self._problem("dead_letter", change, str(exc))
        except ValueError as exc:
            self._problem("dead_letter", change, f"cannot be put in Bubble's form: {exc}")
        return None

    def _created_in_this_fallback(self, exc: UnresolvedReference) -> bool:
        return (self.db.entities[exc.target].table, int(exc.phase2_id)) in self.outcome.inserts  # type: ignore[call-overload]

    def _done(self, change: NetChange, bubble_id: str | None, *, created: bool = False) -> None:
        ledger.record_written(self.db, self.entity, change, bubble_id, created=created)
        self.outcome.count(self.outcome.done, self.entity.name, change.operation)

    def _problem(
        self, kind: str, change: NetChange, reason: str, fields: dict | None = None, record: dict | None = None
    ) -> None:
        self.outcome.problems.append(self._problem_of(kind, change, reason, fields, record))

    def _problem_of(
        self, kind: str, change: NetChange, reason: str, fields: dict | None = None, record: dict | None = None
    ) -> Problem:
        return Problem(
            kind, self.entity.name, change.row_id, change.bubble_id, change.operation, reason, fields, record
        )
