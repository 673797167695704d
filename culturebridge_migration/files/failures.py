"""What to tell a person when a file cannot be copied: what Bubble answered, or what broke, and what to do."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from urllib3 import exceptions as urllib3_errors

from culturebridge_migration.files.types import CopyResult


def failed(key: str, reason: str) -> CopyResult:
    return CopyResult("failed", key, reason=reason)


def status_outcome(key: str, response: requests.Response) -> CopyResult:
    """What a final answer other than 200 means: `missing` for 404 and 410, `failed` for the rest."""
    status = response.status_code
    if status in (404, 410):
        return CopyResult(
            "missing",
            key,
            reason=f"Bubble no longer has this file ({status}): it was deleted there; re-upload it or clear the link",
        )
    if status in (401, 403):
        reason = (
            f"Bubble refused the file ({status}): it may be a private file, served only through the app's "
            "signed links; download it from the app and upload it by hand"
        )
    elif status == 429:
        reason = "Bubble kept rate-limiting the download (429) even after retries: lower the workers or run again later"
    elif status >= 500:
        reason = f"Bubble answered {status} even after retries: run again later; only files not copied are fetched"
    else:
        reason = f"Bubble answered {status} {response.reason or ''}".rstrip() + " for the file"
    return failed(key, reason)


def request_failure(exc: requests.exceptions.RequestException, url: str, timeout: float) -> str:
    host = urlsplit(url).hostname
    if _timed_out(exc):
        return f"{host} did not answer within {timeout:g}s, even after retries: run again later or raise the timeout"
    if isinstance(exc, requests.exceptions.SSLError):  # before ConnectionError, its base
        return f"{host}'s TLS certificate was refused ({root_cause(exc)}): no file is taken from an unverified host"
    if isinstance(exc, requests.exceptions.RetryError):
        return f"{host} kept failing, even after retries ({root_cause(exc)}): run again later"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"cannot reach {host} ({root_cause(exc)}), even after retries: check the network and the URL"
    return f"the download failed: {root_cause(exc)}"


def _timed_out(exc: requests.exceptions.RequestException) -> bool:
    """requests reports a read timeout that urllib3 gave up retrying as a connection error: look underneath."""
    cause = _innermost(exc)
    if isinstance(cause, urllib3_errors.NewConnectionError):  # a ConnectTimeoutError subclass, yet a refusal
        return False
    return isinstance(exc, requests.exceptions.Timeout) or isinstance(cause, TimeoutError | urllib3_errors.TimeoutError)


def _innermost(exc: BaseException) -> BaseException:
    """What is wrapped under requests' and urllib3's exceptions."""
    while exc.args and isinstance(exc.args[0], BaseException):
        exc = exc.args[0]
    if isinstance(exc, urllib3_errors.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    return exc


def root_cause(exc: BaseException) -> str:
    """The last words of what went wrong: 'Connection refused', 'IncompleteRead(...)'."""
    cause = _innermost(exc)
    text = cause.args[0] if cause.args and isinstance(cause.args[0], str) else str(cause)
    return text.rsplit(": ", 1)[-1].strip() or type(cause).__name__
