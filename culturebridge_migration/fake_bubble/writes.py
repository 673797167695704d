"""Writes to the Data API as Bubble takes them: create, bulk create, modify (PATCH), replace (PUT), delete.

Bubble gives every new thing its `_id`, `Created Date`, `Modified Date` and `Created By`; a body that
tries to set one is refused whole (400), as is a bulk body of more than 1,000 lines. A bulk create
answers one line per line sent, in order, so one bad line fails alone. A field set to null is cleared:
Bubble's records leave an empty field out. A field the type lacks is refused when the server knows the
type's fields (a `/meta` given whole); from records alone it cannot tell, and takes any key.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from culturebridge_migration.fake_bubble.database import Database
from culturebridge_migration.mapping.entities import BUILT_IN_KEYS, CREATED_BY_KEY, CREATED_KEY, ID_KEY, MODIFIED_KEY
from culturebridge_migration.mapping.values import format_bubble_datetime, parse_datetime

BULK_LIMIT = 1_000
ADMIN_CREATOR = "admin_user_fake_bubble"  # what Bubble puts in Created By for a thing the admin token made


@dataclass(frozen=True)
class WriteAnswer:
    status: int
    body: dict | None = None  # a JSON answer; None with `text` (bulk) or for a 204
    text: str | None = None  # newline-delimited JSON: a bulk create's one status per line


def error(status: int, kind: str, message: str) -> WriteAnswer:
    return WriteAnswer(status, {"statusCode": status, "body": {"status": kind, "message": message}})


def missing_thing(bubble_type: str, thing_id: str) -> WriteAnswer:
    message = f"Missing object of type {bubble_type}: object with id {thing_id} does not exist"
    return error(404, "MISSING_DATA", message)


def stamp(after: object = None) -> str:
    """Now in Bubble's form, and always after `after` (a thing's last Modified Date), so each change shows."""
    moment = datetime.now(UTC)
    try:
        last = parse_datetime(after) if after is not None else None
    except ValueError:
        last = None
    if last is not None and moment <= last:
        moment = last + timedelta(milliseconds=1)
    return format_bubble_datetime(moment)


def new_id() -> str:
    """Like Bubble's: milliseconds since the epoch, `x`, 18 digits."""
    return f"{int(time.time() * 1000)}x{secrets.randbelow(10**18):018d}"


def create(db: Database, bubble_type: str, body: bytes) -> WriteAnswer:
    """`POST /obj/TYPE`: 201 `{"status": "success", "id": ...}`."""
    fields, problem = _fields(body, db.writable_keys(bubble_type))
    if problem:
        return error(400, "INVALID_DATA", problem)
    return WriteAnswer(201, {"status": "success", "id": _insert(db, bubble_type, fields)})


def bulk_create(db: Database, bubble_type: str, body: bytes) -> WriteAnswer:
    """`POST /obj/TYPE/bulk`: a JSON object per line in, a status per line out (200, text/plain)."""
    sent = [line for line in body.decode("utf-8", errors="replace").splitlines() if line.strip()]
    if len(sent) > BULK_LIMIT:
        return error(400, "INVALID_DATA", f"A bulk request takes at most {BULK_LIMIT} items; it sent {len(sent)}")
    answers, writable = [], db.writable_keys(bubble_type)
    for line in sent:
        fields, problem = _fields(line.encode(), writable)
        if problem:
            answers.append({"status": "error", "message": problem})
        else:
            answers.append({"status": "success", "id": _insert(db, bubble_type, fields)})
    return WriteAnswer(200, text="\n".join(json.dumps(a) for a in answers))


def change(db: Database, bubble_type: str, thing_id: str, body: bytes, *, replace: bool) -> WriteAnswer:
    """`PATCH` (the fields sent) or `PUT` (every settable field: the ones not sent are cleared): 204."""
    fields, problem = _fields(body, db.writable_keys(bubble_type))
    if problem:
        return error(400, "INVALID_DATA", problem)

    def changed(thing: dict) -> dict:
        kept = {k: v for k, v in thing.items() if k in BUILT_IN_KEYS} if replace else dict(thing)
        merged = {**kept, **fields, MODIFIED_KEY: stamp(thing.get(MODIFIED_KEY))}
        return {k: v for k, v in merged.items() if v is not None}

    found = db.update(bubble_type, thing_id, changed)
    return WriteAnswer(204) if found else missing_thing(bubble_type, thing_id)


def delete(db: Database, bubble_type: str, thing_id: str) -> WriteAnswer:
    """`DELETE /obj/TYPE/ID`: 204, or 404 for a thing that is not there."""
    return WriteAnswer(204) if db.delete(bubble_type, thing_id) else missing_thing(bubble_type, thing_id)


def _insert(db: Database, bubble_type: str, fields: dict) -> str:
    thing_id, now = new_id(), stamp()
    own = {ID_KEY: thing_id, CREATED_KEY: now, MODIFIED_KEY: now, CREATED_BY_KEY: ADMIN_CREATOR}
    db.put(bubble_type, {**own, **{k: v for k, v in fields.items() if v is not None}})
    return thing_id


def _fields(body: bytes, writable: frozenset[str] | None) -> tuple[dict, str | None]:
    """The body's fields, or why Bubble refuses them: not a JSON object, a field Bubble sets itself, or
    one the type lacks (when `writable` names the type's fields)."""
    try:
        fields = json.loads(body or b"{}")
    except ValueError:
        return {}, "the body is not valid JSON"
    if not isinstance(fields, dict):
        return {}, "the body is not a JSON object"
    owned = [key for key in BUILT_IN_KEYS if key in fields]
    if owned:
        return {}, f"Field {owned[0]} cannot be modified: Bubble sets it"
    unknown = [key for key in fields if writable is not None and key not in writable]
    if unknown:
        return {}, f"Unrecognized field {unknown[0]}: the type has no such field"
    return fields, None
