"""Copies Bubble files into storage: concurrent, retried, streamed, checked.

- Concurrency: `workers` downloads at once, a bound of its own (not shared with the Data API's pages).
- Only Bubble's files, from Bubble's hosts: every link and every redirect is checked, and connected
  to the address checked (`files.fetch`); a refused link is a failed copy that asks for nothing.
- Retries follow the project's one policy (`sources.http.RetryPolicy`): urllib3 retries 429, 5xx,
  timeouts and connection errors before a response arrives; a body that breaks off afterwards (cut
  short of its Content-Length, a dropped connection, a read timeout) is asked for again with the same
  numbers and backoff, and what was received of it is never stored.
- Streaming: the body goes to storage chunk by chunk while its sha256 and size are computed, so a
  file is never held whole in memory by the copier.
- The bytes are what the column says (`files.content`): told by the first bytes, before anything is
  stored; no more than `max_bytes`, and no longer than `total_timeout` in all.
- Outcomes: a 404 is `missing` (Bubble no longer has the file) and the copy goes on; any other final
  failure is `failed` with a reason a person can act on, and nothing stored. Only the storage failing
  stops the copy (`FileStorageError`): it would fail every file the same way.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Collection, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from itertools import chain

import requests
from urllib3 import exceptions as urllib3_errors

from culturebridge_migration.files.content import HEAD_BYTES, refusal, stored_type
from culturebridge_migration.files.failures import failed, request_failure, root_cause, status_outcome
from culturebridge_migration.files.fetch import (
    MAX_REDIRECTS,
    LinkPolicy,
    PinnedAdapter,
    RefusedLink,
    Resolver,
    resolve_host,
)
from culturebridge_migration.files.keys import storage_key
from culturebridge_migration.files.progress import ProgressCallback, ProgressTracker
from culturebridge_migration.files.storage import FileStorage
from culturebridge_migration.files.types import CopyResult
from culturebridge_migration.files.urls import BubbleFileMatcher
from culturebridge_migration.sources.http import RetryPolicy

logger = logging.getLogger(__name__)

DEFAULT_WORKERS = 8
DEFAULT_MAX_BYTES = 100 * 1024 * 1024  # Bubble's own upload limit is 50 MB on most plans
DEFAULT_TOTAL_TIMEOUT = 600.0  # 100 MB at 170 KB/s
_CHUNK_SIZE = 64 * 1024


class BodyCutShort(Exception):
    """The body ended before its Content-Length."""


class BodyRefused(Exception):
    """The body is too large or too slow to keep; the message says which. Never retried."""


# What can break a body off once its headers arrived: urllib3 raises its own errors from read1.
_BODY_FAULTS = (
    urllib3_errors.HTTPError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ConnectionError,
    requests.exceptions.ContentDecodingError,
    BodyCutShort,
)


class FileCopier:
    def __init__(
        self,
        storage: FileStorage,
        *,
        matcher: BubbleFileMatcher | None = None,
        files_url: str | None = None,
        workers: int = DEFAULT_WORKERS,
        timeout: float = 30.0,
        total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
        retry: RetryPolicy | None = None,
        resolve: Resolver = resolve_host,
        chunk_size: int = _CHUNK_SIZE,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        """`files_url`: fetch Bubble's file //HOST/PATH from {files_url}/HOST/PATH (the local Bubble server)."""
        self.storage = storage
        self.workers = max(1, workers)
        self.links = LinkPolicy(matcher or BubbleFileMatcher(), files_url)
        self.timeout, self.total_timeout, self.max_bytes = timeout, total_timeout, max_bytes
        self.chunk_size, self.on_progress = chunk_size, on_progress
        self.retry = retry or RetryPolicy()
        adapter = PinnedAdapter(
            trusted_origin=self.links.trusted_origin, resolve=resolve, retry=self.retry, pool_size=self.workers
        )
        # identity: the stored bytes must be the file's own, never a transfer encoding of them.
        self.session = self.retry.session(
            pool_size=self.workers, headers={"Accept-Encoding": "identity"}, adapter=adapter
        )
        # No credentials from ~/.netrc for Bubble's hosts: an auth of our own (none) keeps requests from looking.
        self.session.auth = _no_credentials

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> FileCopier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- many files ---------------------------------------------------------------------------
    def copy(self, urls: Iterable[str], images: Collection[str] = ()) -> Iterator[tuple[str, CopyResult]]:
        """Copy each distinct URL once, `workers` at a time; yields (url, result) as each finishes.

        `images`: the URLs an image column links, whose bytes must be an image."""
        todo = list(dict.fromkeys(urls))
        tracker = ProgressTracker(len(todo), self.on_progress)
        queue = iter(todo)
        with ThreadPoolExecutor(self.workers, thread_name_prefix="file-copy") as pool:
            running: dict[Future[CopyResult], str] = {}
            try:
                self._top_up(pool, running, queue, images)
                while running:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        url, result = running.pop(future), future.result()
                        tracker.file_done(result.bytes or 0)
                        yield url, result
                    self._top_up(pool, running, queue, images)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    def _top_up(
        self,
        pool: ThreadPoolExecutor,
        running: dict[Future[CopyResult], str],
        queue: Iterator[str],
        images: Collection[str],
    ) -> None:
        """Keeps a few files queued per worker, not the whole list: a stop (or an error) abandons little."""
        while len(running) < 2 * self.workers and (url := next(queue, None)) is not None:
            running[pool.submit(self.copy_one, url, image=url in images)] = url

    # -- one file -----------------------------------------------------------------------------
    def copy_one(self, url: str, *, image: bool = False) -> CopyResult:
        """Copy one file. Bubble's faults end in a `missing` or `failed` result; only `FileStorageError` raises."""
        key = storage_key(url)
        for attempt in self.retry.tries():
            try:
                return self._download(url, key, image)
            except RefusedLink as exc:
                return failed(key, f"refused: {exc}")
            except BodyRefused as exc:
                return failed(key, str(exc))
            except _BODY_FAULTS as exc:
                if attempt == self.retry.attempts:
                    reason = f"the download kept breaking off ({root_cause(exc)}), even after retries: run again later"
                    return failed(key, reason)
                logger.warning("Download of %s broke off (%s); asking again", url, root_cause(exc))
        raise AssertionError("unreachable")

    def _download(self, url: str, key: str, image: bool) -> CopyResult:
        """Follow the link hop by hop (each checked), then store the body if it is what the column holds."""
        deadline = time.monotonic() + self.total_timeout
        address = self.links.first_hop(url)
        for _ in range(MAX_REDIRECTS + 1):
            _check_time(deadline, self.total_timeout)
            try:
                response = self.session.get(address, stream=True, timeout=self.timeout, allow_redirects=False)
            except requests.exceptions.RequestException as exc:
                return failed(key, request_failure(exc, address, self.timeout))
            if not response.is_redirect:
                with response:
                    return self._store(response, url, key, _Body(response, self, deadline), image)
            response.close()
            address = self.links.next_hop(address, response.headers["Location"])
        raise RefusedLink(f"more than {MAX_REDIRECTS} redirects")

    def _store(self, response: requests.Response, url: str, key: str, body: _Body, image: bool) -> CopyResult:
        if response.status_code != 200:
            return status_outcome(key, response)
        if body.expected is not None and body.expected > self.max_bytes:
            raise BodyRefused(body.too_large(body.expected))
        head, declared = body.head(), response.headers.get("Content-Type")
        if problem := refusal(head, declared, image=image):
            return failed(key, problem)
        content_type = stored_type(head, declared, url)
        self.storage.write(key, body.chunks(), content_type=content_type, size=body.expected)
        return CopyResult("copied", key, self.storage.public_url(key), body.size, body.digest.hexdigest(), content_type)


def _no_credentials(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


def _check_time(deadline: float, total_timeout: float) -> None:
    if time.monotonic() > deadline:
        raise BodyRefused(
            f"the download took longer than {total_timeout:g}s in all: run again later, or copy the file by hand"
        )


class _Body:
    """A response body as it arrives: hashed and counted, held to the copier's size and time limits.

    Read with `read1`, which returns what one read of the socket gives, so the deadline is checked at
    least once per read timeout however slowly the bytes trickle in.
    """

    def __init__(self, response: requests.Response, copier: FileCopier, deadline: float) -> None:
        self.response, self.copier, self.deadline = response, copier, deadline
        length = response.headers.get("Content-Length", "")
        self.expected = int(length) if length.isdigit() else None
        self.digest, self.size = hashlib.sha256(), 0  # of what `chunks` gave
        self._received = 0  # of what was read, the head included
        self._read_ahead: list[bytes] = []

    def head(self) -> bytes:
        """The first HEAD_BYTES (fewer if the body is shorter), kept for `chunks`."""
        while sum(map(len, self._read_ahead)) < HEAD_BYTES and (chunk := self._read()):
            self._read_ahead.append(chunk)
        return b"".join(self._read_ahead)[:HEAD_BYTES]

    def chunks(self) -> Iterator[bytes]:
        """Every chunk, the head's first; raises BodyCutShort at a short end, BodyRefused past the limits."""
        for chunk in chain(self._read_ahead, iter(self._read, b"")):
            self.digest.update(chunk)
            self.size += len(chunk)
            yield chunk
        # urllib3 enforces Content-Length too; this check keeps the promise whatever the transport does.
        if self.expected is not None and self.size != self.expected:
            raise BodyCutShort(f"received {self.size} of {self.expected} bytes")

    def _read(self) -> bytes:
        copier = self.copier
        _check_time(self.deadline, copier.total_timeout)
        chunk = self.response.raw.read1(copier.chunk_size, decode_content=True)
        self._received += len(chunk)
        if self._received > copier.max_bytes:
            raise BodyRefused(self.too_large(None))
        return chunk

    def too_large(self, size: int | None) -> str:
        limit = self.copier.max_bytes
        what = f"{size:,} bytes" if size is not None else f"more than {limit:,} bytes"
        return f"the file is {what}, over MIGRATION_FILE_MAX_BYTES ({limit:,}): raise it or copy the file by hand"
