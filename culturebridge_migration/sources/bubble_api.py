"""Bubble's Data API: every record of a type, complete or a clear error.

- HTTP-level faults (429 with or without Retry-After, 5xx, connection errors, timeouts) are
  retried with backoff by urllib3's `Retry`; what is left after that is a `BubbleError`.
- Body-level faults (truncated or non-JSON bodies, a page shorter than it announces) are
  retried a few times per page, then a `BubbleError` names the type, page and what to do.
- Pages are sorted by Created Date so they are stable while Bubble keeps changing; records
  are de-duplicated by _id; what arrived is compared with the total Bubble announced.
- One search returns at most 50,000 items, silently: a search that reaches the cap is never
  taken as complete, the export continues in the next window of Created Date.
- Memory stays bounded by a window: records go to a `sink` (the export file) page by page, in
  order; only the current window's ids are kept, to de-duplicate.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import requests

from culturebridge_migration.mapping.entities import BUILT_IN_KEYS, CREATED_KEY, UNREADABLE_KEY
from culturebridge_migration.mapping.values import MAX_JSON_DEPTH, nesting_depth, pruned_json_text, too_deep
from culturebridge_migration.redaction import redact_url, scrub
from culturebridge_migration.sources.hooks import ExportHooks
from culturebridge_migration.sources.http import RetryPolicy, json_body
from culturebridge_migration.sources.request_slots import RequestSlots
from culturebridge_migration.sources.search_windows import SearchCapError, WindowedSearch
from culturebridge_migration.sources.shared_budget import SharedBudget, budget_folder

logger = logging.getLogger(__name__)

BUBBLE_PAGE_LIMIT = 100
BUBBLE_SEARCH_CAP = 50_000


class BubbleError(RuntimeError):
    """The export cannot go on; the message names the type, the page and what to do."""


class BubbleNotFound(BubbleError):
    """Bubble answered 404: no such type, thing or field (or, for /meta, the app hides it)."""


class BubbleThingMissing(BubbleNotFound):
    """Bubble has no thing of that id (404 MISSING_DATA): deleted, or never there."""


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
    records: list[dict]  # every record, in order; empty when they were streamed to a sink
    announced_total: int
    pages: int = 0
    notes: list[str] = field(default_factory=list)  # things the operator should know, e.g. deletions mid-export
    unique_ids: int = 0  # distinct ids handed over (the export file may hold more records: a defect)
    duplicate_ids: list[str] = field(default_factory=list)  # ids Bubble sent twice in one search
    unavailable: list[str] = field(default_factory=list)  # mapped keys this source's format cannot hold


class BubbleClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        page_size: int = BUBBLE_PAGE_LIMIT,
        timeout: float = 30.0,
        max_retries: int = RetryPolicy.max_retries,
        backoff: float = RetryPolicy.backoff,
        search_cap: int = BUBBLE_SEARCH_CAP,
        requests_per_minute: int | None = None,
        workers: int = 4,
    ) -> None:
        address = urlsplit(base_url)
        if address.scheme not in ("http", "https") or not address.hostname:
            raise BubbleError(
                # Not echoed: without a scheme, a user:password@ in it is not recognised as one to hide.
                "BUBBLE_API_URL is not a web address (http(s)://host/...): set it to the app's Data API, like "
                "https://APP.bubbleapps.io/api/1.1 (or .../version-test/api/1.1)"
            )
        if address.username is not None:  # it would go out as Basic auth and end in a bare 401
            raise BubbleError(
                "BUBBLE_API_URL holds a user name or password (https://user:password@...): remove it from the "
                "URL, which is only the app's address (like https://APP.bubbleapps.io/api/1.1), and put the "
                "API token in BUBBLE_API_KEY"
            )
        self.base_url = base_url.rstrip("/")
        self.shown_url = redact_url(self.base_url)  # what messages say: no password or token from the URL
        self.workers = max(1, workers)
        self.page_size = max(1, min(page_size, BUBBLE_PAGE_LIMIT))
        self.timeout = timeout
        self.search_cap = search_cap
        # One bound on requests in flight for the whole client, however many types export through it at once,
        # within the app's, which every client on this machine shares (shared_budget.py), requests per minute too.
        self._in_flight = RequestSlots(self.workers)
        self._app_budget = SharedBudget(budget_folder(self.base_url), self.workers, requests_per_minute)
        self._ranks: dict[str, int] = {}  # bubble type -> its rank when requests are scarce (`rank_types`)
        self.retry = RetryPolicy(max_retries, backoff)  # the census and body re-reads follow it too
        self.session = self.retry.session(
            pool_size=max(8, self.workers),
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
        )

    def close(self) -> None:
        self.session.close()

    def rank_types(self, bubble_types: Iterable[str]) -> None:
        """When requests are scarce, these types' requests go first, in this order; any other request after."""
        self._ranks = {bubble_type: rank for rank, bubble_type in enumerate(bubble_types)}

    # -- one page -----------------------------------------------------------------------------
    def fetch_page(
        self, bubble_type: str, cursor: int, constraints: list[dict] | None = None, *, limit: int | None = None
    ) -> Page:
        params = {
            "cursor": cursor,
            "limit": limit or self.page_size,
            "sort_field": CREATED_KEY,
            "descending": "false",
        }
        if constraints:
            params["constraints"] = json.dumps(constraints)
        where = f"type {bubble_type!r}, page at cursor {cursor}"
        for attempt in self.retry.tries():
            # One path segment whatever the name holds: a "/" or "?" in it must not reach another URL.
            response = self._get(f"{self.base_url}/obj/{quote(bubble_type, safe='')}", params, where, bubble_type)
            try:
                return self._parse_page(response, cursor, where)
            except _PageTooDeep:  # asking again gives the same page: ask for smaller ones instead
                return self._split_page(bubble_type, cursor, constraints, params["limit"], response)
            except BubbleError as exc:
                if attempt == self.retry.attempts:
                    raise
                logger.warning("%s; asking again (%d/%d)", exc, attempt, self.retry.attempts)
        raise AssertionError("unreachable")

    def _split_page(
        self, bubble_type: str, cursor: int, constraints: list[dict] | None, limit: int, response: requests.Response
    ) -> Page:
        """A page too deep to parse, fetched again as two halves, down to one record.

        The others load; the record that is still too deep alone is read with its deep parts cut off
        (`pruned_json_text`) and stands in as a reject with its position and, where readable, its _id.
        """
        if limit <= 1:
            return self._parse_page(response, cursor, f"type {bubble_type!r}, record at cursor {cursor}", prune=True)
        half = limit // 2
        first = self.fetch_page(bubble_type, cursor, constraints, limit=half)
        if first.count < half or first.remaining <= 0:
            return first
        rest = self.fetch_page(bubble_type, cursor + half, constraints, limit=limit - half)
        return Page(cursor, first.results + rest.results, first.count + rest.count, rest.remaining)

    def meta(self) -> tuple[dict | None, str]:
        """Bubble's /meta document, or None and why not (hidden by the app: 404; or not a JSON object)."""
        where = "the schema at /meta"
        try:
            response = self._get(f"{self.base_url}/meta", {}, where)
        except BubbleNotFound:
            return None, "the app hides /meta (Settings > API: 'Hide Swagger API documentation access')"
        try:
            document = json_body(response)
        except ValueError:
            return None, f"/meta did not answer JSON ({response.text[:60]!r})"
        return (document, "") if isinstance(document, dict) else (None, "/meta did not answer a JSON object")

    def exists(self, bubble_type: str, bubble_id: str) -> bool:
        """Whether Bubble still has the thing: `GET /obj/TYPE/ID` answers it, or 404 "Missing object"."""
        path = f"{self.base_url}/obj/{quote(bubble_type, safe='')}/{quote(bubble_id, safe='')}"
        try:
            self._get(path, {}, f"type {bubble_type!r}, thing {bubble_id!r}", bubble_type)
        except BubbleThingMissing:
            return False
        return True

    def alive_among(self, bubble_type: str, bubble_ids: Iterable[str]) -> set[str]:
        """Of `bubble_ids`, those Bubble still answers by id: one `GET /obj/TYPE/ID` each, `workers` at a time."""
        candidates = sorted(set(bubble_ids))
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="by-id") as pool:
            answers = list(pool.map(lambda bubble_id: self.exists(bubble_type, bubble_id), candidates))
        return {bubble_id for bubble_id, live in zip(candidates, answers, strict=True) if live}

    def find_in(self, bubble_type: str, key: str, values: Iterable[str], *, batch: int = 100) -> list[dict]:
        """The records whose `key` is one of `values`: one search (`in`) per `batch` values, paged.

        A 404 "Field not found" answers none: no thing of the type has the field yet.
        """
        wanted, found = sorted(set(values)), []
        for start in range(0, len(wanted), batch):
            constraints = [{"key": key, "constraint_type": "in", "value": wanted[start : start + batch]}]
            cursor = 0
            while True:
                try:
                    page = self.fetch_page(bubble_type, cursor, constraints)
                except BubbleNotFound as exc:
                    if "Field not found" in str(exc):
                        break
                    raise
                found += page.results
                if page.remaining <= 0 or not page.results:
                    break
                cursor += page.count
        return found

    def count(self, bubble_type: str, constraints: list[dict] | None = None) -> int:
        """How many records match: Bubble announces a search's total even for a one-record page.

        A total at or above the search cap is a lower bound only (the cap can be silent).
        """
        return self.fetch_page(bubble_type, 0, constraints, limit=1).total

    @contextmanager
    def request_slot(self, bubble_type: str | None = None) -> Iterator[None]:
        """A place among the requests in flight and in the budget: every request to Bubble, read or write, takes one."""
        with self._in_flight.slot(self._ranks.get(bubble_type or "", len(self._ranks))), self._app_budget.slot():
            self._app_budget.wait()
            yield

    def _get(self, url: str, params: dict, where: str, bubble_type: str | None = None) -> requests.Response:
        try:
            with self.request_slot(bubble_type):
                response = self.session.get(url, params=params, timeout=self.timeout)
        except requests.exceptions.RetryError as exc:
            raise BubbleError(
                f"Bubble kept failing for {where} after retries ({scrub(str(exc), self.base_url)}); try again later"
            ) from None
        except requests.exceptions.Timeout:
            raise BubbleError(
                f"Bubble did not answer {where} within {self.timeout:g}s, even after retries: "
                "try again later or raise the timeout"
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise BubbleError(
                f"Cannot reach Bubble at {self.shown_url} ({where}): {scrub(_root_cause(exc), self.base_url)}. "
                "Check BUBBLE_API_URL (like https://APP.bubbleapps.io/api/1.1) and the network"
            ) from None
        self.raise_for_status(response, where)
        return response

    def raise_for_status(self, response: requests.Response, where: str) -> None:
        status = response.status_code
        if status < 400:
            return
        message = bubble_message(response)
        if status in (401, 403):
            raise BubbleError(
                f"Bubble refused the API key ({status}) for {where}: {message}. Set BUBBLE_API_KEY to an admin "
                "API token (Settings > API); a revoked or user token cannot export everything"
            )
        if status == 404 and message.startswith("Field not found"):
            raise BubbleNotFound(
                f"Bubble answered {message!r} for {where}: the type has no such field; correct the key in the "
                "field map (MIGRATION_FIELD_MAP) or run `culturebridge discover` to see the app's fields"
            )
        if status == 404 and message.startswith("Missing object"):
            raise BubbleThingMissing(f"Bubble has no such thing ({where}): {message}")
        if status == 404:
            raise BubbleNotFound(
                f"Bubble has no such data type ({where}): {message}. Expose the type in Settings > API "
                "(Enable Data API, tick the type) or correct the type name in the field map"
            )
        if status == 429:
            raise BubbleError(f"Bubble kept rate-limiting {where} (429) after retries: lower requests_per_minute")
        raise BubbleError(f"Bubble answered {status} for {where} after retries: {message}; try again later")

    def _parse_page(self, response: requests.Response, cursor: int, where: str, *, prune: bool = False) -> Page:
        try:
            body = _page_document(response, prune)["response"]
            results = [_readable(record, cursor + i) for i, record in enumerate(body["results"])]
            page = Page(int(body["cursor"]), results, int(body["count"]), int(body["remaining"]))
        except RecursionError:  # one record nests thousands deep: Python's parser gives up on the page
            raise _PageTooDeep(where) from None
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
    def export(self, bubble_type: str, hooks: ExportHooks | None = None) -> ExportResult:
        """Every record of a type (changed after `hooks.modified_after`, when given), in Created Date order."""
        hooks = hooks or ExportHooks()
        result = ExportResult([], 0)
        search = WindowedSearch(bubble_type, self.search_cap, hooks.sink or result.records.extend)
        try:
            while True:
                constraints = hooks.modified_constraints() + search.constraints()
                total = self._export_window(bubble_type, constraints, result, search.before_window, hooks, search.take)
                if search.close_window(total):
                    break
                logger.info("type %r: search cap reached, continuing after %s", bubble_type, search.last_created)
        except SearchCapError as exc:
            raise BubbleError(str(exc)) from None
        result.announced_total, result.unique_ids = search.announced_total, search.count
        result.duplicate_ids = [str(key) for key in search.duplicates]
        self._verify(bubble_type, result)
        return result

    def _export_window(
        self,
        bubble_type: str,
        constraints: list[dict],
        result: ExportResult,
        before_window: int,
        hooks: ExportHooks,
        take: Callable[[list[dict], bool], None],
    ) -> int:
        """Fetch one search's pages, concurrently once the first page told the total.

        Hands the records to `take` page by page, in order, as soon as every earlier page is in,
        so memory holds the pages in flight, not the search. Returns the search's announced total.
        If the total moved while the pages were fetched (records deleted shift every later
        offset), the search is read again page by page, stepping back over the gap; `take` sees
        those records again, and the collector keeps each _id once.
        """
        search = json.dumps([bubble_type, constraints, self.page_size])
        saved_pages = hooks.checkpoint.pages(search) if hooks.checkpoint else {}
        saved = {c: Page(c, p.results, len(p.results), p.total - c - len(p.results)) for c, p in saved_pages.items()}
        if saved:
            result.notes.append(f"resumed from checkpoint: {len(saved)} page(s) already exported")
        first = saved.pop(0, None) or self._fetch(bubble_type, 0, constraints, search, result, hooks)
        total = first.total
        cursors = range(0, min(total, self.search_cap), self.page_size)
        todo = [c for c in cursors[1:] if c not in saved]
        take(first.results)
        done, changed = first.count, False
        # Twice as many threads as requests in flight: one hashes and checkpoints its page while
        # another's request takes the slot.
        with ThreadPoolExecutor(max_workers=2 * self.workers) as pool:
            fetched = pool.map(lambda c: self._fetch(bubble_type, c, constraints, search, result, hooks), todo)
            try:
                for cursor in cursors[1:]:
                    page = saved.pop(cursor, None) or next(fetched)
                    changed |= page.total != total
                    take(page.results)
                    done += page.count
                    if hooks.on_progress:
                        hooks.on_progress(before_window + done, before_window + min(total, self.search_cap))
            finally:
                fetched.close()  # on an error, the pages not yet started are cancelled, not fetched
        if changed or any(page.total != total for page in saved.values()):
            result.notes.append("Bubble changed during the export; the search was read again page by page")
            return self._export_window_sequentially(bubble_type, constraints, result, search, hooks, take)
        return total

    def _fetch(
        self,
        bubble_type: str,
        cursor: int,
        constraints: list[dict],
        search: str,
        result: ExportResult,
        hooks: ExportHooks,
    ) -> Page:
        page = self.fetch_page(bubble_type, cursor, constraints)
        if hooks.prepare:
            hooks.prepare(page.results)
        if hooks.checkpoint:
            hooks.checkpoint.save(search, page.cursor, page.total, page.results)
        result.pages += 1
        return page

    def _export_window_sequentially(
        self,
        bubble_type: str,
        constraints: list[dict],
        result: ExportResult,
        search: str,
        hooks: ExportHooks,
        take: Callable[[list[dict], bool], None],
    ) -> int:
        cursor, total = 0, None
        while True:
            page = self._fetch(bubble_type, cursor, constraints, search, result, hooks)
            if total is not None and page.total < total:
                # Records before the cursor were deleted, shifting every offset: step back so none is skipped.
                shift = min(cursor, total - page.total)
                result.notes.append(f"{total - page.total} record(s) deleted in Bubble during the export")
                total, cursor = page.total, cursor - shift
                continue
            total = page.total
            take(page.results, True)  # read again on purpose: records already handed on are expected
            cursor += page.count
            if page.remaining <= 0 or page.count == 0 or cursor >= self.search_cap:
                return total

    def _verify(self, bubble_type: str, result: ExportResult) -> None:
        arrived, announced = result.unique_ids, result.announced_total
        if result.duplicate_ids:
            result.notes.append(
                f"Bubble sent {len(result.duplicate_ids)} _id(s) twice in one search (e.g. {result.duplicate_ids[0]}): "
                "its pages overlapped, so records may be missing; run the export again"
            )
        if arrived < announced:
            # Not raised: the export's blocking completeness check fails on it, so no table loads it.
            result.notes.append(
                f"Bubble announced {announced} records but only {arrived} arrived: run the export again; "
                "if it repeats, check the API token's privacy rules"
            )
        if arrived > announced:
            result.notes.append(
                f"{arrived - announced} record(s) arrived beyond the final total (deleted in Bubble meanwhile); "
                "the deletion sweep reports them"
            )


def _page_document(response: requests.Response, prune: bool) -> dict:
    return json.loads(pruned_json_text(response.text, _PAGE_DEPTH)) if prune else json_body(response)


class _PageTooDeep(BubbleError):
    """A page nests too deep for Python's JSON parser (a record planted to break the export)."""


# A record of a page sits 3 levels down ({"response": {"results": [{...}]}}); a pruned value keeps one
# level more than a value may have, so it is still seen as too deep.
_PAGE_DEPTH = 3 + MAX_JSON_DEPTH + 1


_CONTAINERS = frozenset({list, dict})


def _readable(record: object, position: int) -> dict:
    """`record`, or the stand-in the mapper rejects (see UNREADABLE_KEY) when it cannot be kept safely.

    A value nested past MAX_JSON_DEPTH would break every reader after this one (the export file, the
    checks, the reports), so it goes no further; the stand-in keeps the record's _id and dates where
    they are plain values, so the reject can be found in Bubble and placed by the deletion census.
    """
    if not isinstance(record, dict):
        why = f"Bubble sent a {type(record).__name__} where a record belongs (position {position} of the search)"
        return {UNREADABLE_KEY: {"field": None, "message": f"{why}: export again; if it repeats, report it to Bubble"}}
    if _CONTAINERS.isdisjoint(map(type, record.values())):
        return record  # nothing nested: decided without a loop in Python, for every record of every page
    for key, value in record.items():
        if isinstance(value, list | dict) and (depth := nesting_depth(value)) > MAX_JSON_DEPTH:
            kept = {k: record[k] for k in BUILT_IN_KEYS if isinstance(record.get(k), str | int | float)}
            message = (
                f"{key} {too_deep(depth)} (the record at position {position} of the search): simplify it in Bubble"
            )
            return {**kept, UNREADABLE_KEY: {"field": key, "message": message}}
    return record


def bubble_message(response: requests.Response) -> str:
    try:
        body = json_body(response)
        inner = body.get("body", body) if isinstance(body, dict) else {}
        return str(inner.get("message") or inner.get("status") or body)[:200]
    except ValueError:
        return response.text[:120].replace("\n", " ") or response.reason


def _root_cause(exc: BaseException) -> str:
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    if isinstance(exc, socket.gaierror):  # DNS: the host name is wrong (or no DNS), not Bubble being down
        return f"its host name does not resolve ({exc.strerror or exc})"
    return str(exc).split(":")[-1].strip() or type(exc).__name__
