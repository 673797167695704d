"""A local server that speaks Bubble's Data API, for tests, demos and benchmarks.

Faithful where a client can tell: bearer auth, `/obj/{type}` searches with cursor/limit (capped at
100), constraints, sorting, the *silent* 50,000-item search cap, Bubble-shaped error bodies, and
switchable faults (429 with or without Retry-After, 5xx, slow answers, truncated or non-JSON bodies,
short pages, dropped connections, a key revoked mid-run). Loopback only.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

from culturebridge_migration.mapping.values import parse_datetime

API_PREFIX = "/api/1.1"
FAULT_KINDS = ("429", "500", "slow", "truncate", "non_json", "short_page", "drop", "unauthorized")


@dataclass
class RequestRecord:
    method: str
    path: str
    bubble_type: str | None
    cursor: int | None
    limit: int | None
    constraints: list | None
    status: int
    at: float = 0.0  # time.monotonic() when the request arrived
    in_flight: int = 0  # API requests being answered at that moment, this one included


@dataclass
class Fault:
    kind: str
    times: int
    bubble_type: str | None = None
    cursor: int | None = None
    params: dict = field(default_factory=dict)

    def matches(self, bubble_type: str | None, cursor: int | None) -> bool:
        return (self.bubble_type in (None, bubble_type)) and (self.cursor in (None, cursor))


class FakeBubble:
    def __init__(
        self,
        data: dict[str, list[dict]] | None = None,
        *,
        api_key: str = "test-key",
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        search_cap: int = 50_000,
        rate_limit_per_minute: int | None = None,
    ) -> None:
        self._data: dict[str, dict[str, dict]] = {t: {r["_id"]: r for r in rs} for t, rs in (data or {}).items()}
        self.api_key, self.host, self.port = api_key, host, port
        self.latency, self.search_cap, self.rate_limit_per_minute = latency, search_cap, rate_limit_per_minute
        self.requests: list[RequestRecord] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._cache: dict[tuple, list[dict]] = {}
        self._recent: deque[float] = deque()
        self._server: ThreadingHTTPServer | None = None
        self._in_flight = 0

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeBubble:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True, name="fake-bubble").start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeBubble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    # -- data -----------------------------------------------------------------------------------
    def put(self, bubble_type: str, record: dict) -> None:
        with self._lock:
            self._data.setdefault(bubble_type, {})[record["_id"]] = dict(record)
            self._versions[bubble_type] = self._versions.get(bubble_type, 0) + 1

    def delete(self, bubble_type: str, thing_id: str) -> None:
        with self._lock:
            self._data.get(bubble_type, {}).pop(thing_id, None)
            self._versions[bubble_type] = self._versions.get(bubble_type, 0) + 1

    def records(self, bubble_type: str) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._data.get(bubble_type, {}).values()]

    # -- faults ---------------------------------------------------------------------------------
    def add_fault(
        self, kind: str, times: int = 1, *, bubble_type: str | None = None, cursor: int | None = None, **params: object
    ) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        with self._lock:
            self._faults.append(Fault(kind, times, bubble_type, cursor, dict(params)))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, bubble_type: str | None, cursor: int | None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(bubble_type, cursor):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _over_budget(self) -> bool:
        if not self.rate_limit_per_minute:
            return False
        now = time.monotonic()
        with self._lock:
            while self._recent and now - self._recent[0] > 60:
                self._recent.popleft()
            if len(self._recent) >= self.rate_limit_per_minute:
                return True
            self._recent.append(now)
        return False

    # -- search ---------------------------------------------------------------------------------
    def search(self, bubble_type: str, constraints: list, sort_field: str | None, descending: bool) -> list[dict]:
        """Matching records, sorted, capped silently at `search_cap`; cached until the type changes."""
        with self._lock:
            version = self._versions.get(bubble_type, 0)
            key = (bubble_type, json.dumps(constraints, sort_keys=True), sort_field, descending, version)
            if key in self._cache:
                return self._cache[key]
            records = list(self._data[bubble_type].values())
        matched = [r for r in records if all(_satisfies(r, c) for c in constraints)]
        if sort_field:
            present = [r for r in matched if sort_field in r]
            present.sort(key=lambda r: _sort_value(r[sort_field]), reverse=descending)
            matched = present + [r for r in matched if sort_field not in r]
        matched = matched[: self.search_cap]
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if k[0] != bubble_type or k[-1] == version}
            self._cache[key] = matched
        return matched

    def has_type(self, bubble_type: str) -> bool:
        with self._lock:
            return bubble_type in self._data


def _sort_value(value: object) -> tuple:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value, "")
    if isinstance(value, str):
        try:
            return (1, parse_datetime(value).timestamp(), "")
        except ValueError:
            return (2, 0, value)
    return (3, 0, json.dumps(value, sort_keys=True))


def _comparable(value: object) -> object:
    if isinstance(value, str):
        try:
            return parse_datetime(value)
        except ValueError:
            return value
    return value


def _satisfies(record: dict, constraint: dict) -> bool:
    key, kind, expected = constraint["key"], constraint["constraint_type"], constraint.get("value")
    present = key in record and record[key] not in (None, "", [])
    if kind == "is_empty":
        return not present
    if kind == "is_not_empty":
        return present
    if not present:
        return kind in ("not equal", "not in")
    actual = record[key]
    if kind in ("in", "not in"):
        inside = _comparable(actual) in [_comparable(v) for v in expected or []]
        return inside if kind == "in" else not inside
    left, right = _comparable(actual), _comparable(expected)
    if isinstance(left, datetime) != isinstance(right, datetime):
        left, right = str(actual), str(expected)
    try:
        return {
            "equals": lambda: left == right,
            "not equal": lambda: left != right,
            "greater than": lambda: left > right,
            "less than": lambda: left < right,
        }[kind]()
    except TypeError:
        return False


class _BadRequest(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    fake: FakeBubble
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle's algorithm on, the body waits for the
    # client's delayed ACK, 40 ms on every kept-alive request that a real server does not add.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    # -- plumbing -------------------------------------------------------------------------------
    def _send(
        self, status: int, body: bytes, content_type: str = "application/json", headers: dict | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: object, headers: dict | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers=headers)

    def _error(self, status: int, kind: str, message: str, headers: dict | None = None) -> None:
        self._json(status, {"statusCode": status, "body": {"status": kind, "message": message}}, headers)

    def _log(
        self,
        path: str,
        bubble_type: str | None,
        cursor: int | None,
        limit: int | None,
        constraints: list | None,
        status: int,
        arrived: tuple[float, int] = (0.0, 0),
    ) -> None:
        with self.fake._lock:
            self.fake.requests.append(
                RequestRecord(self.command, path, bubble_type, cursor, limit, constraints, status, *arrived)
            )

    def _read_body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    # -- control endpoints (no auth; loopback only) ---------------------------------------------
    def do_POST(self) -> None:
        path = urlparse(self.path).path
        if path == "/_fake/faults":
            body = self._read_body()
            kind, times = body.pop("kind"), int(body.pop("times", 1))
            self.fake.add_fault(kind, times, **body)
            return self._json(200, {"ok": True})
        if path.startswith("/_fake/records/"):
            self.fake.put(unquote(path.rsplit("/", 1)[1]), self._read_body())
            return self._json(200, {"ok": True})
        self._error(404, "NOT_FOUND", f"no such control endpoint {path}")

    def do_DELETE(self) -> None:
        path = urlparse(self.path).path
        if path == "/_fake/faults":
            self.fake.clear_faults()
            return self._json(200, {"ok": True})
        parts = path.split("/")
        if path.startswith("/_fake/records/") and len(parts) == 5:
            self.fake.delete(unquote(parts[3]), unquote(parts[4]))
            return self._json(200, {"ok": True})
        self._error(404, "NOT_FOUND", f"no such control endpoint {path}")

    # -- the Data API ---------------------------------------------------------------------------
    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/_fake/requests":
            with self.fake._lock:
                log = [r.__dict__ for r in self.fake.requests]
            return self._json(200, log)
        if not url.path.startswith(f"{API_PREFIX}/obj/"):
            return self._error(404, "NOT_FOUND", f"no endpoint {url.path}")
        parts = [unquote(p) for p in url.path[len(f"{API_PREFIX}/obj/") :].split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        bubble_type = parts[0] if parts else None
        try:
            cursor = max(0, int(query.get("cursor", 0)))
            limit = max(1, min(100, int(query.get("limit", 100))))
            constraints = json.loads(query.get("constraints", "[]"))
            if not isinstance(constraints, list):
                raise ValueError("constraints must be a list")
        except ValueError as exc:
            self._log(url.path, bubble_type, None, None, None, 400)
            return self._error(400, "INVALID_DATA", f"bad query: {exc}")
        with self.fake._lock:
            self.fake._in_flight += 1
            arrived = (time.monotonic(), self.fake._in_flight)
        try:
            status = self._answer(bubble_type, parts[1:], cursor, limit, constraints, query)
        finally:
            with self.fake._lock:
                self.fake._in_flight -= 1
        self._log(url.path, bubble_type, cursor, limit, constraints, status, arrived)

    def _answer(self, bubble_type, rest, cursor, limit, constraints, query) -> int:
        fake = self.fake
        if fake.latency:
            time.sleep(fake.latency)
        if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
            self._error(401, "UNAUTHORIZED", "Invalid or missing API token")
            return 401
        if fake._over_budget():
            self._error(429, "RATE_LIMITED", "Too many requests", {"Retry-After": "1"})
            return 429
        fault = fake._take_fault(bubble_type, cursor)
        if fault and fault.kind == "drop":
            self.close_connection = True
            self.connection.close()
            return 0
        if fault and fault.kind == "429":
            retry_after = fault.params.get("retry_after")
            headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else None
            self._error(429, "RATE_LIMITED", "Rate limit exceeded", headers)
            return 429
        if fault and fault.kind == "500":
            status = int(fault.params.get("status", 500))
            self._error(status, "SERVER_ERROR", "Internal error")
            return status
        if fault and fault.kind == "unauthorized":
            self._error(401, "UNAUTHORIZED", "Invalid or missing API token")
            return 401
        if fault and fault.kind == "non_json":
            status = int(fault.params.get("status", 200))
            self._send(status, b"<html><body>Bubble is down for maintenance</body></html>", "text/html")
            return status
        if fault and fault.kind == "slow":
            time.sleep(float(fault.params.get("seconds", 5)))
        if not bubble_type or not fake.has_type(bubble_type):
            self._error(404, "MISSING_DATA", f"Type {bubble_type!r} not found or not exposed to the Data API")
            return 404
        if rest:
            thing = next((r for r in fake.records(bubble_type) if r["_id"] == rest[0]), None)
            if thing is None:
                self._error(404, "MISSING_DATA", f"Thing {rest[0]} not found")
                return 404
            self._json(200, {"response": thing})
            return 200
        matched = fake.search(bubble_type, constraints, query.get("sort_field"), query.get("descending") == "true")
        results = matched[cursor : cursor + limit]
        page = {
            "cursor": cursor,
            "results": results,
            "count": len(results),
            "remaining": max(0, len(matched) - cursor - len(results)),
        }
        if fault and fault.kind == "short_page":
            page = {**page, "results": results[: len(results) // 2]}
        body = json.dumps({"response": page}).encode()
        if fault and fault.kind == "truncate":
            body = body[: len(body) // 2]
        self._send(200, body)
        return 200
