"""A local server that speaks Bubble's Data API, for tests, demos and benchmarks.

Faithful where a client can tell: bearer auth, `/obj/{type}` searches with cursor/limit (capped at
100), every constraint type of Bubble's manual with Bubble's errors for a bad one, sorting, the *silent*
50,000-item search cap, Bubble-shaped error bodies, `/meta` (inferred from the data or given, or hidden),
the version-test database at `/version-test/api/1.1`, Bubble-hosted files at CDN-like paths, and
the login API workflow (`POST /wf/culturebridge_login`: "Log the user in"), writes (create, bulk create,
PATCH, PUT, DELETE: `writes.py`), and
switchable faults (429 with or without Retry-After, 5xx, slow answers, truncated or non-JSON bodies,
short pages, dropped connections, a key revoked mid-run; for files also 404 and downloads cut mid-body).
Loopback only.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping

from culturebridge_migration.fake_bubble.database import Database
from culturebridge_migration.fake_bubble.faults import Fault, FaultBook
from culturebridge_migration.fake_bubble.files import FILES_PREFIX, FileStore, file_key
from culturebridge_migration.fake_bubble.handler import API_PREFIX, TEST_PREFIX, Handler, RequestRecord
from culturebridge_migration.fake_bubble.meta import FieldKinds
from culturebridge_migration.fake_bubble.workflows import LOGIN_WORKFLOW
from culturebridge_migration.threaded_server import ThreadedServer

__all__ = ["API_PREFIX", "FakeBubble", "RequestRecord"]


class FakeBubble(ThreadedServer):
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
        files: Mapping[str, bytes] | None = None,
        test_data: dict[str, list[dict]] | None = None,
        meta: Mapping | None = None,
        test_meta: Mapping | None = None,
        field_kinds: FieldKinds | None = None,
        type_displays: Mapping[str, str] | None = None,
        hide_meta: bool = False,
        passwords: Mapping[str, str] | None = None,
        login_workflow: str = LOGIN_WORKFLOW,
    ) -> None:
        """`data` is the live database, `test_data` version-test's (empty by default); `files` maps Bubble
        file URLs or "host/path" keys to their bytes. `/meta` is inferred from each database unless `meta`
        / `test_meta` give it whole; `field_kinds` (type -> key -> kind, e.g. `{"user": {"Role":
        "option.os_role"}}`) says what values cannot, `type_displays` the types' display names;
        `hide_meta` answers it 404 as an app with "Hide Swagger API documentation access" does.
        `passwords` maps a user's _id to the password the API workflow `login_workflow` ("Log the user in")
        accepts for the live database's users.
        """
        hints = {"search_cap": search_cap, "field_kinds": field_kinds, "type_displays": type_displays}
        self.live_db = Database(data, meta=meta, app_version="live", **hints)
        self.test_db = Database(test_data, meta=test_meta, app_version="test", **hints)
        self.files = FileStore(files)
        self.api_key, self.host, self.port = api_key, host, port
        self.latency, self.rate_limit_per_minute, self.hide_meta = latency, rate_limit_per_minute, hide_meta
        self.passwords, self.login_workflow = dict(passwords or {}), login_workflow
        self.requests: list[RequestRecord] = []
        self.faults = FaultBook()
        self._lock = threading.Lock()
        self._recent: deque[float] = deque()
        self._in_flight = 0

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeBubble:
        if not self.hide_meta:  # Bubble keeps its schema: its /meta never waits for 590k records to be read
            self.live_db.meta()
            self.test_db.meta()
        self._serve(type("Handler", (Handler,), {"fake": self}), poll_interval=0.05, name="fake-bubble")
        return self

    @property
    def url(self) -> str:
        """The live Data API root, as BUBBLE_API_URL: `http://127.0.0.1:PORT/api/1.1`."""
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    @property
    def test_url(self) -> str:
        """The version-test Data API root: `http://127.0.0.1:PORT/version-test/api/1.1`."""
        return f"http://{self.host}:{self.port}{TEST_PREFIX}{API_PREFIX}"

    @property
    def files_url(self) -> str:
        """Where files are served: the file at Bubble URL `//HOST/PATH` is at `{files_url}/HOST/PATH`."""
        return f"http://{self.host}:{self.port}{FILES_PREFIX}"

    # -- data (the live database unless test=True) -----------------------------------------------
    def put(self, bubble_type: str, record: dict, *, test: bool = False) -> None:
        self._db(test).put(bubble_type, record)

    def delete(self, bubble_type: str, thing_id: str, *, test: bool = False) -> None:
        self._db(test).delete(bubble_type, thing_id)

    def records(self, bubble_type: str, *, test: bool = False) -> list[dict]:
        return self._db(test).records(bubble_type)

    def search(
        self, bubble_type: str, constraints: list, sort_field: str | None, descending: bool, *, test: bool = False
    ) -> list[dict]:
        """Matching records, sorted, capped silently at `search_cap`; cached until the type changes."""
        return self._db(test).search(bubble_type, constraints, sort_field, descending)

    def has_type(self, bubble_type: str, *, test: bool = False) -> bool:
        return self._db(test).has_type(bubble_type)

    def meta(self, *, test: bool = False) -> dict:
        """The `/meta` document the server answers (even while hidden)."""
        return self._db(test).meta()

    def _db(self, test: bool) -> Database:
        return self.test_db if test else self.live_db

    @property
    def search_cap(self) -> int:
        return self.live_db.search_cap

    @search_cap.setter
    def search_cap(self, value: int) -> None:
        self.live_db.search_cap = self.test_db.search_cap = value

    # -- files ----------------------------------------------------------------------------------
    def put_file(self, url_or_key: str, content: bytes, content_type: str | None = None) -> str:
        """Serve `content` for a Bubble file URL (or "host/path" key); the Content-Type is guessed from the
        extension unless given. Returns the key."""
        return self.files.put(url_or_key, content, content_type)

    def delete_file(self, url_or_key: str) -> None:
        self.files.delete(url_or_key)

    def file_url(self, url_or_key: str) -> str:
        """Where this server serves a Bubble file URL: `{files_url}/HOST/PATH`."""
        return f"{self.files_url}/{file_key(url_or_key)}"

    def file_requests(self) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.requests if r.file is not None]

    # -- faults ---------------------------------------------------------------------------------
    def add_fault(
        self,
        kind: str,
        times: int = 1,
        *,
        bubble_type: str | None = None,
        cursor: int | None = None,
        file: str | None = None,
        **params: object,
    ) -> None:
        """Arm a fault for the next `times` matching requests. Without `file` it hits Data API requests,
        writes included (of `bubble_type`, at `cursor`, when given; a write has no cursor): 429 (retry_after=), 500 (status=), slow (seconds=),
        truncate, non_json, short_page, drop, unauthorized. With `file` (a file URL or key, or "*" for
        every file) it hits downloads: 404, 429 (retry_after=), 500 (status=), slow (seconds=), drop, and
        cut (the full Content-Length, then `fraction=` (default 0.5) or `bytes=` of the body, then close).
        """
        target = file if file in (None, "*") else file_key(file)
        self.faults.add(Fault(kind, times, bubble_type, cursor, dict(params), target))

    def clear_faults(self) -> None:
        self.faults.clear()

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

    def login_requests(self) -> list[RequestRecord]:
        """The calls of the login workflow so far (answered or not)."""
        with self._lock:
            return [r for r in self.requests if r.bubble_type == f"wf/{self.login_workflow}"]

    def _log(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)
