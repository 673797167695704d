"""Copies Bubble files into storage: concurrent, retried, streamed, checked.

- Concurrency: `workers` downloads at once, a bound of its own (not shared with the Data API's pages).
- Retries follow the project's one policy (`sources.http`): urllib3 retries 429, 5xx, timeouts and
  connection errors before a response arrives; a body that breaks off afterwards (cut short of its
  Content-Length, a dropped connection, a read timeout) is asked for again under the same `Retry`
  rules and backoff, and what was received of it is never stored.
- Streaming: the body goes to storage chunk by chunk while its sha256 and size are computed, so a
  file is never held whole in memory by the copier.
- Outcomes: a 404 is `missing` (Bubble no longer has the file) and the copy goes on; any other final
  failure is `failed` with a reason a person can act on. Only the storage failing stops the copy
  (`FileStorageError`): it would fail every file the same way.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from urllib.parse import urlsplit

import requests
from urllib3 import exceptions as urllib3_errors

from culturebridge_migration.files.failures import failed, request_failure, root_cause, status_outcome
from culturebridge_migration.files.keys import storage_key
from culturebridge_migration.files.progress import ProgressCallback, ProgressTracker
from culturebridge_migration.files.storage import FileStorage
from culturebridge_migration.files.types import CopyResult
from culturebridge_migration.mapping.values import normalize_url
from culturebridge_migration.sources.http import retry_policy, retrying_session

logger = logging.getLogger(__name__)

DEFAULT_WORKERS = 8
_CHUNK_SIZE = 64 * 1024


class BodyCutShort(Exception):
    """The body ended before its Content-Length."""


# What can break a body off once its headers arrived; requests raises the first three from iter_content.
_BODY_FAULTS = (
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ConnectionError,
    requests.exceptions.ContentDecodingError,
    BodyCutShort,
)


def _identity(url: str) -> str:
    return url


class FileCopier:
    def __init__(
        self,
        storage: FileStorage,
        *,
        workers: int = DEFAULT_WORKERS,
        fetch_url: Callable[[str], str] = _identity,
        timeout: float = 30.0,
        max_retries: int = 6,
        backoff: float = 0.5,
        chunk_size: int = _CHUNK_SIZE,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.storage = storage
        self.workers = max(1, workers)
        self.fetch_url = fetch_url  # Bubble URL -> the address actually fetched (the local server's, in tests)
        self.timeout, self.chunk_size, self.on_progress = timeout, chunk_size, on_progress
        self._retry = retry_policy(max_retries, backoff)
        # identity: the stored bytes must be the file's own, never a transfer encoding of them.
        self.session = retrying_session(
            max_retries=max_retries, backoff=backoff, pool_size=self.workers, headers={"Accept-Encoding": "identity"}
        )

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> FileCopier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- many files ---------------------------------------------------------------------------
    def copy(self, urls: Iterable[str]) -> Iterator[tuple[str, CopyResult]]:
        """Copy each distinct URL once, `workers` at a time; yields (url, result) as each finishes."""
        todo = list(dict.fromkeys(urls))
        tracker = ProgressTracker(len(todo), self.on_progress)
        queue = iter(todo)
        with ThreadPoolExecutor(self.workers, thread_name_prefix="file-copy") as pool:
            running: dict[Future[CopyResult], str] = {}
            try:
                self._top_up(pool, running, queue)
                while running:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        url, result = running.pop(future), future.result()
                        tracker.file_done(result.bytes or 0)
                        yield url, result
                    self._top_up(pool, running, queue)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    def _top_up(self, pool: ThreadPoolExecutor, running: dict[Future[CopyResult], str], queue: Iterator[str]) -> None:
        """Keeps a few files queued per worker, not the whole list: a stop (or an error) abandons little."""
        while len(running) < 2 * self.workers and (url := next(queue, None)) is not None:
            running[pool.submit(self.copy_one, url)] = url

    # -- one file -----------------------------------------------------------------------------
    def copy_one(self, url: str) -> CopyResult:
        """Copy one file. Bubble's faults end in a `missing` or `failed` result; only `FileStorageError` raises."""
        key = storage_key(url)
        retry = self._retry
        while True:
            try:
                return self._download(normalize_url(url), key)
            except _BODY_FAULTS as exc:
                try:
                    retry = retry.increment(method="GET", url=url, error=urllib3_errors.ProtocolError(str(exc)))
                except urllib3_errors.MaxRetryError:
                    reason = f"the download kept breaking off ({root_cause(exc)}), even after retries: run again later"
                    return failed(key, reason)
                logger.warning("Download of %s broke off (%s); asking again", url, root_cause(exc))
                retry.sleep()

    def _download(self, url: str, key: str) -> CopyResult:
        address = self.fetch_url(url)
        try:
            response = self.session.get(address, stream=True, timeout=self.timeout)
        except requests.exceptions.RequestException as exc:
            return failed(key, request_failure(exc, address, self.timeout))
        with response:
            if response.status_code != 200:
                return status_outcome(key, response)
            body = _HashingBody(response, self.chunk_size)
            content_type = response.headers.get("Content-Type") or mimetypes.guess_type(urlsplit(url).path)[0]
            self.storage.write(key, body.chunks(), content_type=content_type, size=body.expected)
        return CopyResult("copied", key, self.storage.public_url(key), body.size, body.digest.hexdigest(), content_type)


class _HashingBody:
    """A response body as chunks, hashed and counted on the way; raises BodyCutShort at a short end."""

    def __init__(self, response: requests.Response, chunk_size: int) -> None:
        self.response, self.chunk_size = response, chunk_size
        length = response.headers.get("Content-Length", "")
        self.expected = int(length) if length.isdigit() else None
        self.digest, self.size = hashlib.sha256(), 0

    def chunks(self) -> Iterator[bytes]:
        for chunk in self.response.iter_content(self.chunk_size):
            self.digest.update(chunk)
            self.size += len(chunk)
            yield chunk
        # urllib3 enforces Content-Length too; this check keeps the promise whatever the transport does.
        if self.expected is not None and self.size != self.expected:
            raise BodyCutShort(f"received {self.size} of {self.expected} bytes")
