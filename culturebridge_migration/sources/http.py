"""One HTTP retry policy for everything that talks to Bubble: the Data API and its file storage.

Transient faults (429 with or without Retry-After, 5xx, connection errors, timeouts) are retried
with exponential backoff by urllib3; the last response reaches the caller, so its error can say
what Bubble answered.
"""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

TRANSIENT_STATUSES = (429, 500, 502, 503, 504)


def retry_policy(max_retries: int, backoff: float) -> Retry:
    return Retry(
        total=max_retries,
        connect=max_retries,
        read=max_retries,
        status=max_retries,
        backoff_factor=backoff,
        backoff_max=30,
        status_forcelist=TRANSIENT_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        raise_on_status=False,  # the last response reaches us, so the error can say what Bubble said
    )


def retrying_session(
    *, max_retries: int, backoff: float, pool_size: int, headers: dict[str, str] | None = None
) -> requests.Session:
    """A session whose every request follows `retry_policy`, with `pool_size` kept-alive connections per host."""
    session = requests.Session()
    adapter = HTTPAdapter(
        max_retries=retry_policy(max_retries, backoff), pool_connections=pool_size, pool_maxsize=pool_size
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update(headers or {})
    return session
