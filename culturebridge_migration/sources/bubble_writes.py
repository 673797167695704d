"""Writes to Bubble's Data API through a `BubbleClient`: its session, key, URL, budget and retry policy.

Bubble's create is not idempotent: a create (or a bulk create) sent again after Bubble may have
processed it makes the thing twice. So a create is sent again only when Bubble cannot have processed
it: a 429 (refused before processing; a connection that never opened is tried again by urllib3, as for
reads). After a 5xx, a timeout, a
dropped connection or an answer that cannot be read, `WriteOutcomeUnknown` says so, and the caller
looks the thing up (by the `phase2_id` it carries) before creating it again. A PATCH or DELETE gives the
same result however often it is sent, so they are retried like reads. A write Bubble refuses (400) is
`BubbleWriteRefused` with Bubble's reason, for the caller's list of what could not be applied.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import requests
from urllib3.exceptions import ConnectTimeoutError

from culturebridge_migration.redaction import scrub
from culturebridge_migration.sources.bubble_api import BubbleClient, BubbleError, BubbleThingMissing, bubble_message
from culturebridge_migration.sources.http import TRANSIENT_STATUSES, json_body

BULK_LIMIT = 1_000  # Bubble's most lines in one bulk create


@dataclass(frozen=True)
class BulkResult:
    """One line of a bulk create's answer: the new thing's id, or Bubble's reason for refusing that line."""

    id: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.id is not None


class BubbleWriteError(BubbleError):
    """A write stopped. `results`: the bulk create's lines Bubble answered before it (the rest were not made,
    unless the error is a `WriteOutcomeUnknown`, for the lines of the request in flight)."""

    def __init__(self, message: str, results: Sequence[BulkResult] = ()) -> None:
        super().__init__(message)
        self.results = list(results)


class BubbleWriteRefused(BubbleWriteError):
    """Bubble refused the write (400): `reason` is Bubble's message. Sending it again changes nothing."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class WriteOutcomeUnknown(BubbleWriteError):
    """The create may or may not have been made: look it up by its phase2_id before creating it again."""


class BubbleWriter:
    def __init__(self, client: BubbleClient, *, bulk_size: int = BULK_LIMIT) -> None:
        self.client = client
        self.bulk_size = max(1, min(bulk_size, BULK_LIMIT))

    # -- create -------------------------------------------------------------------------------------
    def create(self, bubble_type: str, fields: Mapping[str, object]) -> str:
        """`POST /obj/TYPE`: the new thing's id."""
        where = f"a create of type {bubble_type!r}"
        response = self._send("POST", self._url(bubble_type), json.dumps(fields), "application/json", where)
        try:
            return str(_success(json_body(response))["id"])
        except (ValueError, KeyError, TypeError):
            raise self._unknown(where, f"an answer without the new id ({_preview(response)})") from None

    def bulk_create(self, bubble_type: str, records: Sequence[Mapping[str, object]]) -> list[BulkResult]:
        """`POST /obj/TYPE/bulk`, `bulk_size` records a request: one result per record, in order."""
        results: list[BulkResult] = []
        for start in range(0, len(records), self.bulk_size):
            chunk = records[start : start + self.bulk_size]
            try:
                results += self._bulk(bubble_type, chunk, f"a bulk create of type {bubble_type!r}, items {start}..")
            except BubbleWriteError as exc:
                exc.results = results
                raise
            except BubbleError as exc:
                raise BubbleWriteError(str(exc), results) from None
        return results

    def _bulk(self, bubble_type: str, chunk: Sequence[Mapping[str, object]], where: str) -> list[BulkResult]:
        body = "\n".join(json.dumps(record) for record in chunk)
        response = self._send("POST", self._url(bubble_type, "bulk"), body, "text/plain", where)
        try:
            lines = [json.loads(line) for line in response.text.splitlines() if line.strip()]
            answered = [_bulk_result(line) for line in lines]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise self._unknown(where, f"an answer that cannot be read ({_preview(response)})") from None
        if len(answered) != len(chunk):
            raise self._unknown(where, f"{len(answered)} answer lines for {len(chunk)} records")
        return answered

    # -- change and delete --------------------------------------------------------------------------
    def patch(self, bubble_type: str, thing_id: str, fields: Mapping[str, object]) -> None:
        """`PATCH /obj/TYPE/ID`: the fields sent change, the others stay. BubbleThingMissing if it is gone."""
        where = f"a change of {bubble_type!r} {thing_id!r}"
        self._send("PATCH", self._url(bubble_type, thing_id), json.dumps(fields), "application/json", where)

    def delete(self, bubble_type: str, thing_id: str) -> bool:
        """`DELETE /obj/TYPE/ID`: True when deleted, False when Bubble had no such thing (already gone)."""
        try:
            self._send(
                "DELETE", self._url(bubble_type, thing_id), None, None, f"a delete of {bubble_type!r} {thing_id!r}"
            )
        except BubbleThingMissing:
            return False
        return True

    # -- one request --------------------------------------------------------------------------------
    def _url(self, bubble_type: str, *rest: str) -> str:
        # One path segment per part whatever it holds: a "/" or "?" must not reach another URL.
        return "/".join([f"{self.client.base_url}/obj", *(quote(part, safe="") for part in (bubble_type, *rest))])

    def _send(self, method: str, url: str, body: str | None, content_type: str | None, where: str) -> requests.Response:
        """The answer to a 2xx; retried only where sending again cannot make a thing twice (see the module)."""
        again = method != "POST"  # PATCH and DELETE give the same result however often they are sent
        retry = self.client.retry
        for attempt in retry.tries():
            last = attempt == retry.attempts
            try:
                response = self._request(method, url, body, content_type)
            except requests.exceptions.RequestException as exc:
                self._no_answer(exc, where, again=again, last=last)
                continue
            status = response.status_code
            if not again and status >= 500:
                raise self._unknown(where, f"{status} {bubble_message(response)}")
            if status in TRANSIENT_STATUSES and not last:
                _wait_retry_after(response, retry.backoff_max)
                continue
            if status == 400:
                reason = bubble_message(response)
                raise BubbleWriteRefused(f"Bubble refused {where}: {reason}", reason)
            self.client.raise_for_status(response, where)
            return response
        raise AssertionError("unreachable")

    def _no_answer(self, exc: requests.exceptions.RequestException, where: str, *, again: bool, last: bool) -> None:
        """Raise what a request without an answer means, unless it is to be sent again."""
        if _never_sent(exc):  # urllib3 already tried to open the connection as often as the policy says
            raise BubbleError(
                f"Cannot reach Bubble at {self.client.shown_url} ({where}): {self._cause(exc)}. "
                "Nothing was sent; check BUBBLE_API_URL and the network"
            ) from None
        if not again:
            raise self._unknown(where, f"no answer ({type(exc).__name__})") from None
        if last:
            raise BubbleError(f"Bubble did not answer {where}, even after retries: {self._cause(exc)}") from None

    def _request(self, method: str, url: str, body: str | None, content_type: str | None) -> requests.Response:
        headers = {"Content-Type": content_type} if content_type else {}
        data = body.encode() if body is not None else None
        with self.client.request_slot():  # the reads' bound on requests in flight and their budget
            return self.client.session.request(method, url, data=data, headers=headers, timeout=self.client.timeout)

    def _unknown(self, where: str, what: str) -> WriteOutcomeUnknown:
        return WriteOutcomeUnknown(
            f"Bubble may or may not have made {where}: it answered {what}. Sending it again could make the "
            "things twice: look them up by their phase2_id first"
        )

    def _cause(self, exc: BaseException) -> str:
        return scrub(str(exc), self.client.base_url)[:200]


def _success(answer: object) -> dict:
    if not isinstance(answer, dict) or answer.get("status") != "success":
        raise ValueError(answer)
    return answer


def _bulk_result(line: object) -> BulkResult:
    if isinstance(line, dict) and line.get("status") == "error":
        return BulkResult(error=str(line.get("message") or line))
    return BulkResult(id=str(_success(line)["id"]))


def _never_sent(exc: BaseException) -> bool:
    """Whether the request never left this machine (the connection did not open): nothing was made."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, ConnectTimeoutError)  # urllib3's NewConnectionError is one too


def _wait_retry_after(response: requests.Response, most: float) -> None:
    """Bubble's Retry-After, when it sends one (the policy's backoff comes on top, in `tries`)."""
    try:
        seconds = float(response.headers.get("Retry-After") or 0)
    except ValueError:
        seconds = 0
    time.sleep(min(max(seconds, 0), most))


def _preview(response: requests.Response) -> str:
    return repr(response.text[:80])
