"""Bubble's Data API: every record of a type, complete or a clear error.

- HTTP-level faults (429 with or without Retry-After, 5xx, connection errors, timeouts) are
  retried with backoff by urllib3's `Retry`; what is left after that is a `BubbleError`.
- Body-level faults (truncated or non-JSON bodies, a page shorter than it announces) are
  retried a few times per page, then a `BubbleError` names the type, page and what to do.
- Pages are sorted by Created Date so they are stable while Bubble keeps changing; records
  are de-duplicated by _id; what arrived is compared with the total Bubble announced.
- One search returns at most 50,000 items, silently: a search that reaches the cap is never
  taken as complete, the export continues in the next window of Created Date.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from culturebridge_migration.mapping.entities import CREATED_KEY, ID_KEY, MODIFIED_KEY
from culturebridge_migration.mapping.values import format_bubble_datetime, parse_datetime

logger = logging.getLogger(__name__)

BUBBLE_PAGE_LIMIT = 100
BUBBLE_SEARCH_CAP = 50_000
_BODY_ATTEMPTS = 3


class BubbleError(RuntimeError):
    """The export cannot go on; the message names the type, the page and what to do."""


@dataclass(frozen=True)
class Page:
    cursor: int
    results: list[dict]
    count: int
    remaining: int

    @property
    def total(self) -> int:
        return self.cursor + self.count + self.remaining


@dataclass
class ExportResult:
    records: list[dict]
    announced_total: int
    pages: int = 0
    notes: list[str] = field(default_factory=list)  # things the operator should know, e.g. deletions mid-export


ProgressCallback = Callable[[int, int], None]  # (records so far, announced total)


class RequestBudget:
    """At most `per_minute` requests in any minute, shared by every thread of a client."""

    def __init__(self, per_minute: int | None) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        time.sleep(max(0.0, slot - now))


def _retrying_session(api_key: str, max_retries: int, backoff: float, pool_size: int) -> requests.Session:
    retry = Retry(
        total=max_retries,
        connect=max_retries,
        read=max_retries,
        status=max_retries,
        backoff_factor=backoff,
        backoff_max=30,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=True,
        raise_on_status=False,  # the last response reaches us, so the error can say what Bubble said
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({"Authorization": f"Bearer {api_key}", "Accept": "application/json"})
    return session


class BubbleClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        page_size: int = BUBBLE_PAGE_LIMIT,
        timeout: float = 30.0,
        max_retries: int = 6,
        backoff: float = 0.5,
        search_cap: int = BUBBLE_SEARCH_CAP,
        requests_per_minute: int | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.page_size = max(1, min(page_size, BUBBLE_PAGE_LIMIT))
        self.timeout = timeout
        self.search_cap = search_cap
        self.budget = RequestBudget(requests_per_minute)
        self.session = _retrying_session(api_key, max_retries, backoff, pool_size=8)

    def close(self) -> None:
        self.session.close()

    # -- one page -----------------------------------------------------------------------------
    def fetch_page(self, bubble_type: str, cursor: int, constraints: list[dict] | None = None) -> Page:
        params = {
            "cursor": cursor,
            "limit": self.page_size,
            "sort_field": CREATED_KEY,
            "descending": "false",
        }
        if constraints:
            params["constraints"] = json.dumps(constraints)
        where = f"type {bubble_type!r}, page at cursor {cursor}"
        for attempt in range(1, _BODY_ATTEMPTS + 1):
            response = self._get(f"{self.base_url}/obj/{bubble_type}", params, where)
            try:
                return self._parse_page(response, cursor, where)
            except BubbleError as exc:
                if attempt == _BODY_ATTEMPTS:
                    raise
                logger.warning("%s; asking again (%d/%d)", exc, attempt, _BODY_ATTEMPTS)
        raise AssertionError("unreachable")

    def _get(self, url: str, params: dict, where: str) -> requests.Response:
        self.budget.wait()
        try:
            response = self.session.get(url, params=params, timeout=self.timeout)
        except requests.exceptions.RetryError as exc:
            raise BubbleError(f"Bubble kept failing for {where} after retries ({exc}); try again later") from None
        except requests.exceptions.Timeout:
            raise BubbleError(
                f"Bubble did not answer {where} within {self.timeout:g}s, even after retries: "
                "try again later or raise the timeout"
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise BubbleError(
                f"Cannot reach Bubble at {self.base_url} ({where}): {_root_cause(exc)}. "
                "Check BUBBLE_API_URL (like https://APP.bubbleapps.io/api/1.1) and the network"
            ) from None
        self._raise_for_status(response, where)
        return response

    def _raise_for_status(self, response: requests.Response, where: str) -> None:
        status = response.status_code
        if status < 400:
            return
        message = _bubble_message(response)
        if status in (401, 403):
            raise BubbleError(
                f"Bubble refused the API key ({status}) for {where}: {message}. Set BUBBLE_API_KEY to an admin "
                "API token (Settings > API); a revoked or user token cannot export everything"
            )
        if status == 404:
            raise BubbleError(
                f"Bubble has no such data type ({where}): {message}. Expose the type in Settings > API "
                "(Enable Data API, tick the type) or correct the type name in the field map"
            )
        if status == 429:
            raise BubbleError(f"Bubble kept rate-limiting {where} (429) after retries: lower requests_per_minute")
        raise BubbleError(f"Bubble answered {status} for {where} after retries: {message}; try again later")

    def _parse_page(self, response: requests.Response, cursor: int, where: str) -> Page:
        try:
            body = response.json()["response"]
            page = Page(int(body["cursor"]), list(body["results"]), int(body["count"]), int(body["remaining"]))
        except (ValueError, KeyError, TypeError) as exc:
            preview = response.text[:80].replace("\n", " ")
            raise BubbleError(
                f"Bubble sent an unreadable body for {where} ({type(exc).__name__}: {preview!r})"
            ) from None
        if page.count != len(page.results):
            raise BubbleError(f"Bubble's page for {where} holds {len(page.results)} results but announces {page.count}")
        if page.cursor != cursor:
            raise BubbleError(f"Bubble answered cursor {page.cursor} for {where}")
        return page

    # -- a whole type -------------------------------------------------------------------------
    def export(
        self,
        bubble_type: str,
        *,
        modified_after: datetime | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ExportResult:
        """Every record of a type (changed after `modified_after`, when given), in Created Date order."""
        base = []
        if modified_after is not None:
            base.append(
                {
                    "key": MODIFIED_KEY,
                    "constraint_type": "greater than",
                    "value": format_bubble_datetime(modified_after),
                }
            )
        records: dict[str, dict] = {}
        result = ExportResult([], 0)
        before_window = 0
        window_start: datetime | None = None
        while True:
            constraints = list(base)
            if window_start is not None:
                # 1 ms earlier, so records sharing the boundary's Created Date are not lost; _id de-duplicates.
                constraints.append(
                    {
                        "key": CREATED_KEY,
                        "constraint_type": "greater than",
                        "value": format_bubble_datetime(window_start - timedelta(milliseconds=1)),
                    }
                )
            total, last = self._export_window(bubble_type, constraints, records, result, before_window, on_progress)
            if total < self.search_cap:
                result.announced_total = before_window + total
                break
            # The search hit the cap: the rest lies beyond the last Created Date seen.
            if last is None:
                raise BubbleError(f"type {bubble_type!r}: the search reached Bubble's cap but returned no records")
            new_start = parse_datetime(last[CREATED_KEY])
            if window_start is not None and new_start <= window_start:
                raise BubbleError(
                    f"type {bubble_type!r}: more than {self.search_cap} records share Created Date {last[CREATED_KEY]}; "
                    "they cannot be exported through the Data API in windows"
                )
            window_start = new_start
            before_window = sum(1 for r in records.values() if parse_datetime(r[CREATED_KEY]) < window_start)
            logger.info("type %r: search cap reached, continuing after %s", bubble_type, last[CREATED_KEY])
        result.records = list(records.values())
        self._verify(bubble_type, result)
        return result

    def _export_window(
        self,
        bubble_type: str,
        constraints: list[dict],
        records: dict[str, dict],
        result: ExportResult,
        before_window: int,
        on_progress: ProgressCallback | None,
    ) -> tuple[int, dict | None]:
        """Page through one search. Returns the search's final announced total and its last record."""
        cursor, total, last = 0, None, None
        while True:
            page = self.fetch_page(bubble_type, cursor, constraints)
            result.pages += 1
            if total is not None and page.total < total:
                # Records before the cursor were deleted, shifting every offset: step back so none is skipped.
                shift = min(cursor, total - page.total)
                result.notes.append(f"{total - page.total} record(s) deleted in Bubble during the export")
                total, cursor = page.total, cursor - shift
                continue
            total = page.total
            for record in page.results:
                records.setdefault(record[ID_KEY], record)
                last = record
            if on_progress:
                on_progress(len(records), before_window + min(total, self.search_cap))
            cursor += page.count
            if page.remaining <= 0 or page.count == 0 or cursor >= self.search_cap:
                return total, last

    def _verify(self, bubble_type: str, result: ExportResult) -> None:
        arrived, announced = len(result.records), result.announced_total
        if arrived < announced:
            raise BubbleError(
                f"type {bubble_type!r}: Bubble announced {announced} records but only {arrived} arrived; "
                "nothing was saved. Run the export again; if it repeats, check the API token's privacy rules"
            )
        if arrived > announced:
            result.notes.append(
                f"{arrived - announced} record(s) arrived beyond the final total (deleted in Bubble meanwhile); "
                "the deletion sweep reports them"
            )

    def exported_ids(self, bubble_type: str) -> set[str]:
        return {r[ID_KEY] for r in self.export(bubble_type).records}


def _bubble_message(response: requests.Response) -> str:
    try:
        body = response.json()
        inner = body.get("body", body) if isinstance(body, dict) else {}
        return str(inner.get("message") or inner.get("status") or body)[:200]
    except ValueError:
        return response.text[:120].replace("\n", " ") or response.reason


def _root_cause(exc: BaseException) -> str:
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    return str(exc).split(":")[-1].strip() or type(exc).__name__


def sorted_by_created(records: Iterable[dict]) -> list[dict]:
    return sorted(records, key=lambda r: (r.get(CREATED_KEY, ""), r.get(ID_KEY, "")))
