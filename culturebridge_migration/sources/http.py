"""One HTTP retry policy for everything that talks to Bubble: the Data API, its file storage, the census.

Transient faults (429 with or without Retry-After, 5xx, connection errors, timeouts) are retried
with exponential backoff by urllib3 (a host name that does not resolve is not: it fails at once); the last response reaches the caller, so its error can say
what Bubble answered. What urllib3 cannot see (a body that breaks off or cannot be read, a search
that changed while it was read) is asked for again by the caller through `tries`, with the same
numbers and the same backoff.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError
from urllib3.util.retry import Retry

TRANSIENT_STATUSES = (429, 500, 502, 503, 504)


def json_body(response: requests.Response) -> object:
    """The body as JSON, read by the standard library: `response.json()` uses simplejson when it is installed,
    which refuses the NaN and Infinity that `json` reads, so an app's value would fail on some machines only."""
    return json.loads(response.content)


REFUSED_RETRIES = 2  # a refused connection is tried again this often, not max_retries times


class _Retry(Retry):
    """urllib3's Retry, except that a host name that does not resolve stops at once, and a connection the
    host refuses is tried only twice more: waiting the policy's 30 s would only hide a misspelt
    BUBBLE_API_URL, a wrong port or a server that is down behind a silent wait."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):  # type: ignore[no-untyped-def]
        if isinstance(error, NameResolutionError):
            raise MaxRetryError(_pool, url, error)  # type: ignore[arg-type]
        if _refused(error) and sum(_refused(h.error) for h in self.history) >= REFUSED_RETRIES:
            raise MaxRetryError(_pool, url, error)  # type: ignore[arg-type]
        return super().increment(method, url, response, error, _pool, _stacktrace)


def _refused(error: BaseException | None) -> bool:
    """urllib3's NewConnectionError for a host that answered the connect with a refusal."""
    return isinstance(error, NewConnectionError) and isinstance(
        error.__cause__ or error.__context__, ConnectionRefusedError
    )


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 6  # after the first try
    backoff: float = 0.5  # seconds before the first retry, doubling each time
    backoff_max: float = 30.0

    def retry(self) -> Retry:
        """The policy as urllib3 applies it to each request."""
        return _Retry(
            total=self.max_retries,
            connect=self.max_retries,
            read=self.max_retries,
            status=self.max_retries,
            backoff_factor=self.backoff,
            backoff_max=self.backoff_max,
            status_forcelist=TRANSIENT_STATUSES,
            allowed_methods=frozenset({"GET", "HEAD"}),
            respect_retry_after_header=True,
            raise_on_status=False,  # the last response reaches us, so the error can say what Bubble said
        )

    def session(
        self, *, pool_size: int, headers: dict[str, str] | None = None, adapter: HTTPAdapter | None = None
    ) -> requests.Session:
        """A session whose every request follows this policy, with `pool_size` kept-alive connections per host.

        `adapter`, if given, must be built with `adapter_options`; by default a plain HTTPAdapter is.
        """
        session = requests.Session()
        adapter = adapter or HTTPAdapter(**self.adapter_options(pool_size))
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.update(headers or {})
        return session

    def adapter_options(self, pool_size: int) -> dict[str, object]:
        return {"max_retries": self.retry(), "pool_connections": pool_size, "pool_maxsize": pool_size}

    @property
    def attempts(self) -> int:
        return self.max_retries + 1

    def tries(self) -> Iterator[int]:
        """1, 2, ... `attempts`, waiting the backoff before each try after the first (as urllib3 does)."""
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                time.sleep(min(self.backoff_max, self.backoff * 2 ** (attempt - 2)))
            yield attempt
