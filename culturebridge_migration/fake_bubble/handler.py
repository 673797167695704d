"""The HTTP side of the fake: routes, Bubble-shaped answers, armed faults and the request log.

Every request gets an HTTP answer unless a fault asked for a dropped or cut connection: an unexpected
error in a handler thread is answered with a 500 in Bubble's error body, never a silent close.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlparse

from culturebridge_migration.fake_bubble import writes
from culturebridge_migration.fake_bubble.constraints import ConstraintError, parse_constraints
from culturebridge_migration.fake_bubble.faults import Fault
from culturebridge_migration.fake_bubble.files import (
    FILES_PREFIX,
    RangeNotSatisfiable,
    StoredFile,
    byte_range,
    file_key,
    missing_key_body,
)
from culturebridge_migration.fake_bubble.workflows import error, log_the_user_in

if TYPE_CHECKING:
    from culturebridge_migration.fake_bubble.database import Database
    from culturebridge_migration.fake_bubble.server import FakeBubble

API_PREFIX = "/api/1.1"
TEST_PREFIX = "/version-test"


@dataclass
class RequestRecord:
    method: str
    path: str
    bubble_type: str | None
    cursor: int | None
    limit: int | None
    constraints: list | None
    status: int  # 0: the connection was dropped without an answer
    at: float = 0.0  # time.monotonic() when the request arrived
    in_flight: int = 0  # API requests being answered at that moment, this one included
    bytes_sent: int = 0  # body bytes written (fewer than Content-Length for a cut download)
    file: str | None = None  # the "host/path" key of a file download
    version: str = "live"  # "test" for /version-test/...


class Handler(BaseHTTPRequestHandler):
    fake: FakeBubble
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle's algorithm on, the body waits for the
    # client's delayed ACK, 40 ms on every kept-alive request that a real server does not add.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    # -- plumbing -------------------------------------------------------------------------------
    def _begin(self, record: RequestRecord | None) -> None:
        """Start answering: `record` (None for control endpoints) is logged with the answer."""
        self._record, self._answered = record, False

    def _send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = "application/json",
        headers: dict | None = None,
        *,
        send_body: bool = True,
        cut_at: int | None = None,
    ) -> None:
        """Answer; `cut_at` sends the full Content-Length but only that many body bytes, then closes."""
        written = body[:cut_at] if cut_at is not None else body
        written = written if send_body else b""
        self._log(status, len(written))
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(written)
        if cut_at is not None:
            self._close_now()

    def _json(self, status: int, payload: object, headers: dict | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers=headers)

    def _error(self, status: int, kind: str, message: str, headers: dict | None = None) -> None:
        self._json(status, {"statusCode": status, "body": {"status": kind, "message": message}}, headers)

    def _drop(self) -> None:
        self._log(0, 0)
        self._close_now()

    def _close_now(self) -> None:
        self.close_connection = True
        self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()

    def _log(self, status: int, bytes_sent: int) -> None:
        self._answered = True
        if self._record is not None:  # logged before the answer leaves, so a client never sees it first
            self._record.status, self._record.bytes_sent = status, bytes_sent
            self.fake._log(self._record)

    def _read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _guarded(self, route: Callable[[], None]) -> None:
        self._begin(None)
        try:
            route()
        except Exception as exc:  # an answer even for a bug here: a client must never be left hanging
            self.close_connection = True
            if not self._answered:
                with contextlib.suppress(OSError):
                    self._error(500, "SERVER_ERROR", f"Internal error in the local Bubble server: {exc!r}")

    # -- routing ----------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._guarded(self._route_get)

    def do_HEAD(self) -> None:
        self._guarded(self._route_head)

    def do_POST(self) -> None:
        self._guarded(self._route_post)

    def do_DELETE(self) -> None:
        self._guarded(self._route_delete)

    def do_PATCH(self) -> None:
        self._guarded(self._route_write)

    def do_PUT(self) -> None:
        self._guarded(self._route_write)

    def _route_get(self) -> None:
        url = urlparse(self.path)
        path, version = _version(url.path)
        if url.path == "/_fake/requests":
            with self.fake._lock:
                log = [r.__dict__ for r in self.fake.requests]
            return self._json(200, log)
        if url.path.startswith(FILES_PREFIX + "/"):
            return self._file(url.path, send_body=True)
        if path == f"{API_PREFIX}/meta":
            return self._meta(url.path, version)
        if path.startswith(f"{API_PREFIX}/obj/"):
            return self._data(url.path, path[len(f"{API_PREFIX}/obj/") :], version, url.query)
        self._error(404, "NOT_FOUND", f"no endpoint {url.path}")

    def _route_head(self) -> None:
        path = urlparse(self.path).path
        if path.startswith(FILES_PREFIX + "/"):
            return self._file(path, send_body=False)
        self._send(404, b"", send_body=False)

    def _route_post(self) -> None:
        path = urlparse(self.path).path
        if _version(path)[0].startswith(f"{API_PREFIX}/wf/"):
            return self._workflow(path)
        if _version(path)[0].startswith(f"{API_PREFIX}/obj/"):
            return self._route_write()
        if path == "/_fake/faults":
            return self._arm_fault()
        if path.startswith("/_fake/records/"):
            self.fake.put(unquote(path.rsplit("/", 1)[1]), json.loads(self._read_body() or b"{}"))
            return self._json(200, {"ok": True})
        if path.startswith("/_fake/files/"):
            key = self.fake.put_file(path[len("/_fake/files/") :], self._read_body(), self.headers.get("Content-Type"))
            return self._json(200, {"ok": True, "key": key, "url": f"{self.fake.files_url}/{key}"})
        self._error(404, "NOT_FOUND", f"no such control endpoint {path}")

    def _arm_fault(self) -> None:
        try:
            body = json.loads(self._read_body() or b"{}")
            kind, times = body.pop("kind"), int(body.pop("times", 1))
            self.fake.add_fault(kind, times, **body)
        except (KeyError, TypeError, ValueError) as exc:
            return self._error(400, "INVALID_DATA", f"a fault is {{'kind': ..., 'times': N, ...}}: {exc!r}")
        self._json(200, {"ok": True})

    def _route_delete(self) -> None:
        path = urlparse(self.path).path
        if _version(path)[0].startswith(f"{API_PREFIX}/obj/"):
            return self._route_write()
        if path == "/_fake/faults":
            self.fake.clear_faults()
            return self._json(200, {"ok": True})
        parts = path.split("/")
        if path.startswith("/_fake/records/") and len(parts) == 5:
            self.fake.delete(unquote(parts[3]), unquote(parts[4]))
            return self._json(200, {"ok": True})
        if path.startswith("/_fake/files/"):
            self.fake.delete_file(path[len("/_fake/files/") :])
            return self._json(200, {"ok": True})
        self._error(404, "NOT_FOUND", f"no such control endpoint {path}")

    # -- /meta ------------------------------------------------------------------------------------
    def _meta(self, path: str, version: str) -> None:
        self._begin(RequestRecord(self.command, path, None, None, None, None, 0, time.monotonic(), version=version))
        token = self.headers.get("Authorization")
        if token is not None and token != f"Bearer {self.fake.api_key}":  # /meta is public, a wrong key is not
            return self._error(401, "UNAUTHORIZED", "Invalid or missing API token")
        if self._api_fault_answered(self.fake.faults.take_api(None, None)):
            return None
        if self.fake.hide_meta:
            return self._error(404, "NOT_FOUND", "Swagger API documentation access is hidden for this app")
        self._json(200, self._database(version).meta())

    # -- the Data API -----------------------------------------------------------------------------
    def _data(self, path: str, rest: str, version: str, query_text: str) -> None:
        parts = [unquote(p) for p in rest.split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(query_text).items()}
        bubble_type = parts[0] if parts else None
        arrived = time.monotonic()
        self._begin(RequestRecord(self.command, path, bubble_type, None, None, None, 0, arrived, version=version))
        try:
            cursor = max(0, int(query.get("cursor", 0)))
            limit = max(1, min(100, int(query.get("limit", 100))))
            constraints = parse_constraints(query.get("constraints"))
        except ValueError as exc:
            return self._error(400, "INVALID_DATA", f"bad query: {exc}")
        except ConstraintError as exc:
            return self._error(exc.status, exc.kind, exc.message)
        self._record.cursor, self._record.limit, self._record.constraints = cursor, limit, constraints
        with self.fake._lock:
            self.fake._in_flight += 1
            self._record.in_flight = self.fake._in_flight
        try:
            self._answer(self._database(version), bubble_type, parts[1:], cursor, limit, constraints, query)
        finally:
            with self.fake._lock:
                self.fake._in_flight -= 1

    def _answer(
        self,
        db: Database,
        bubble_type: str | None,
        rest: list[str],
        cursor: int,
        limit: int,
        constraints: list,
        query: dict[str, str],
    ) -> None:
        fake = self.fake
        if self._turned_away():
            return None
        fault = fake.faults.take_api(bubble_type, cursor)
        if self._api_fault_answered(fault):
            return None
        if not bubble_type or not db.has_type(bubble_type):
            return self._error(404, "MISSING_DATA", f"Type {bubble_type!r} not found or not exposed to the Data API")
        if rest:
            thing = db.thing(bubble_type, rest[0])
            if thing is None:
                message = f"Missing object of type {bubble_type}: object with id {rest[0]} does not exist"
                return self._error(404, "MISSING_DATA", message)
            return self._json(200, {"response": thing})
        try:
            matched = db.search(bubble_type, constraints, query.get("sort_field"), query.get("descending") == "true")
        except ConstraintError as exc:
            return self._error(exc.status, exc.kind, exc.message)
        self._send_page(matched, cursor, limit, fault)

    def _send_page(self, matched: list[dict], cursor: int, limit: int, fault: Fault | None) -> None:
        results = matched[cursor : cursor + limit]
        page = {
            "cursor": cursor,
            "results": results,
            "count": len(results),
            "remaining": max(0, len(matched) - cursor - len(results)),
        }
        if fault and fault.kind == "short_page":
            page = {**page, "results": results[: len(results) // 2]}
        body = dumps({"response": page}).encode()
        if fault and fault.kind == "truncate":
            body = body[: len(body) // 2]
        self._send(200, body)

    def _turned_away(self) -> bool:
        """What Bubble does before any Data API or workflow request: its latency, the key, the plan's rate limit.
        True when it answered (401 or 429)."""
        fake = self.fake
        if fake.latency:
            time.sleep(fake.latency)
        if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
            self._error(401, "UNAUTHORIZED", "Invalid or missing API token")
            return True
        if fake._over_budget():
            self._error(429, "RATE_LIMITED", "Too many requests", {"Retry-After": "1"})
            return True
        return False

    def _api_fault_answered(self, fault: Fault | None) -> bool:
        """Play a Data API fault; True when that was the whole answer."""
        if fault is None:
            return False
        if fault.kind == "drop":
            self._drop()
        elif fault.kind == "429":
            self._error(429, "RATE_LIMITED", "Rate limit exceeded", _retry_after(fault))
        elif fault.kind == "500":
            status = int(fault.params.get("status", 500))
            self._error(status, "SERVER_ERROR", "Internal error")
        elif fault.kind == "unauthorized":
            self._error(401, "UNAUTHORIZED", "Invalid or missing API token")
        elif fault.kind == "non_json":
            status = int(fault.params.get("status", 200))
            self._send(status, b"<html><body>Bubble is down for maintenance</body></html>", "text/html")
        else:
            _wait_if_slow(fault)
            return False  # slow, truncate, short_page: the answer goes on
        return True

    def _database(self, version: str) -> Database:
        return self.fake.test_db if version == "test" else self.fake.live_db

    # -- API workflows ----------------------------------------------------------------------------
    def _workflow(self, path: str) -> None:
        """`POST /wf/NAME`: the login workflow of the live database; faults armed for "wf/NAME" (or any) hit it."""
        stripped, version = _version(path)
        name = unquote(stripped[len(f"{API_PREFIX}/wf/") :])
        record = RequestRecord(self.command, path, f"wf/{name}", None, None, None, 0, time.monotonic(), version=version)
        self._begin(record)
        body = self._read_body()  # read before any answer, so a kept-alive connection stays in step
        fake = self.fake
        if self._turned_away():
            return None
        if self._api_fault_answered(fake.faults.take_api(f"wf/{name}", None)):
            return None
        if name != fake.login_workflow or version != "live":
            answer = error(404, "NOT_FOUND", f"Workflow not found {name}")
        else:
            try:
                params = json.loads(body or b"{}")
            except ValueError:
                params = None
            if not isinstance(params, dict):
                return self._error(400, "INVALID_DATA", "the body is not a JSON object")
            answer = log_the_user_in(fake.live_db.records("user"), fake.passwords, params)
        self._json(answer.status, answer.body)

    # -- writes to the Data API ----------------------------------------------------------------------
    def _route_write(self) -> None:
        """POST /obj/TYPE and /obj/TYPE/bulk, PATCH, PUT and DELETE /obj/TYPE/ID, after the key, the rate
        limit and the faults armed for the type, as every Data API request."""
        path = urlparse(self.path).path
        stripped, version = _version(path)
        if not stripped.startswith(f"{API_PREFIX}/obj/"):
            return self._error(404, "NOT_FOUND", f"no endpoint {self.command} {path}")
        parts = [unquote(p) for p in stripped[len(f"{API_PREFIX}/obj/") :].split("/") if p]
        bubble_type = parts[0] if parts else None
        self._begin(
            RequestRecord(self.command, path, bubble_type, None, None, None, 0, time.monotonic(), version=version)
        )
        body = self._read_body()  # read before any answer, so a kept-alive connection stays in step
        if self._turned_away():
            return None
        fault = self.fake.faults.take_api(bubble_type, None)
        if self._api_fault_answered(fault):
            return None
        db = self._database(version)
        if not bubble_type or not db.has_type(bubble_type):
            return self._error(404, "MISSING_DATA", f"Type {bubble_type!r} not found or not exposed to the Data API")
        # Written before answering: a truncated (or slow, timed-out) answer leaves the client not knowing.
        self._send_write(self._write(db, self.command, bubble_type, parts[1:], body), fault)

    @staticmethod
    def _write(db: Database, method: str, bubble_type: str, rest: list[str], body: bytes) -> writes.WriteAnswer:
        if method == "POST" and not rest:
            return writes.create(db, bubble_type, body)
        if method == "POST" and rest == ["bulk"]:
            return writes.bulk_create(db, bubble_type, body)
        if method in ("PATCH", "PUT") and len(rest) == 1:
            return writes.change(db, bubble_type, rest[0], body, replace=method == "PUT")
        if method == "DELETE" and len(rest) == 1:
            return writes.delete(db, bubble_type, rest[0])
        return writes.error(404, "NOT_FOUND", f"no endpoint {method} /obj/{bubble_type}/{'/'.join(rest)}")

    def _send_write(self, answer: writes.WriteAnswer, fault: Fault | None) -> None:
        if answer.text is not None:
            body, content_type = answer.text.encode(), "text/plain"
        elif answer.body is not None:
            body, content_type = json.dumps(answer.body).encode(), "application/json"
        else:
            body, content_type = b"", None
        if fault and fault.kind == "truncate":
            body = body[: len(body) // 2]
        self._send(answer.status, body, content_type)

    # -- files ------------------------------------------------------------------------------------
    def _file(self, path: str, *, send_body: bool) -> None:
        key = file_key(path[len(FILES_PREFIX) + 1 :])
        self._begin(RequestRecord(self.command, path, None, None, None, None, 0, time.monotonic(), file=key))
        fault = self.fake.faults.take_file(key)
        if fault and fault.kind not in ("slow", "cut"):
            return self._file_fault(fault, key, send_body)
        _wait_if_slow(fault)
        stored = self.fake.files.get(key)
        if stored is None:
            return self._send(404, missing_key_body(key), "application/xml", send_body=send_body)
        self._send_stored(stored, send_body, fault if fault and fault.kind == "cut" else None)

    def _send_stored(self, stored: StoredFile, send_body: bool, cut: Fault | None) -> None:
        """The file, its part a Range asks for, or 304 for an ETag the client has; cut short if asked."""
        headers = {"ETag": stored.etag, "Accept-Ranges": "bytes"}
        if self.headers.get("If-None-Match") == stored.etag:
            return self._send(304, b"", None, headers, send_body=False)
        size = len(stored.content)
        try:
            span = byte_range(self.headers.get("Range"), size)
        except RangeNotSatisfiable:
            headers["Content-Range"] = f"bytes */{size}"
            return self._send(416, b"", stored.content_type, headers, send_body=send_body)
        status, body = 200, stored.content
        if span:
            status, body = 206, stored.content[span[0] : span[1] + 1]
            headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{size}"
        cut_at = _cut_point(cut, len(body)) if cut and send_body else None
        self._send(status, body, stored.content_type, headers, send_body=send_body, cut_at=cut_at)

    def _file_fault(self, fault: Fault, key: str, send_body: bool) -> None:
        """Answer a download the way the storage behind Bubble fails: S3-style XML error bodies."""
        if fault.kind == "drop":
            return self._drop()
        headers = None
        if fault.kind == "404":
            status, body = 404, missing_key_body(key)
        elif fault.kind == "429":
            headers = _retry_after(fault)
            status, body = (
                429,
                b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
            )
        else:
            status = int(fault.params.get("status", 500))
            body = b"<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>"
        self._send(status, body, "application/xml", headers, send_body=send_body)


class _Written(str):
    """JSON text already written, on `dumps`'s stack beside the values still to write."""


def dumps(value: object) -> str:
    """`json.dumps`, falling back to writing without recursion: Bubble serves what its users stored, however
    deeply nested (a 10,000-deep object planted in a record), and so does this server."""
    try:
        return json.dumps(value)
    except RecursionError:
        pass
    out: list[str] = []
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Written):
            out.append(item)
        elif isinstance(item, dict):
            parts: list[object] = [_Written("{")]
            for i, (key, child) in enumerate(item.items()):
                parts += [_Written(("," if i else "") + json.dumps(str(key)) + ":"), child]
            stack += reversed([*parts, _Written("}")])
        elif isinstance(item, list | tuple):
            parts = [_Written("[")]
            for i, child in enumerate(item):
                parts += [_Written(",")] if i else []
                parts.append(child)
            stack += reversed([*parts, _Written("]")])
        else:
            out.append(json.dumps(item))
    return "".join(out)


def _version(path: str) -> tuple[str, str]:
    """(the path without /version-test, "test" or "live")."""
    if path.startswith(TEST_PREFIX + "/"):
        return path[len(TEST_PREFIX) :], "test"
    return path, "live"


def _retry_after(fault: Fault) -> dict | None:
    """The Retry-After header a 429 fault asked for, if any (Bubble sends it only sometimes)."""
    seconds = fault.params.get("retry_after")
    return {"Retry-After": str(int(seconds))} if seconds is not None else None


def _wait_if_slow(fault: Fault | None) -> None:
    if fault is not None and fault.kind == "slow":
        time.sleep(float(fault.params.get("seconds", 5)))


def _cut_point(fault: Fault, size: int) -> int:
    """How many body bytes a cut download sends: `bytes=N`, else `fraction` (default half) of the body."""
    if "bytes" in fault.params:
        return max(0, min(size - 1, int(fault.params["bytes"])))
    return max(0, min(size - 1, int(size * float(fault.params.get("fraction", 0.5)))))
