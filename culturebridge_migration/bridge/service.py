"""`culturebridge password-bridge serve`: the bridge over HTTP, for a Phase 2 backend not written in Python.

Every request carries `Authorization: Bearer $MIGRATION_PASSWORD_BRIDGE_SECRET`. `POST /v1/login` with JSON
`{"email", "password"}` answers 200 `{"user_id"}`, 401, 429 (with Retry-After), 410 or 503; `GET /v1/health`.
The end user's address, for the per-address limits and the audit, is the first `X-Forwarded-For` entry the
backend sends (it holds the secret), else the peer's. Nothing of a body is ever logged.
"""

from __future__ import annotations

import hmac
import json
import logging
from http.server import BaseHTTPRequestHandler

from culturebridge_migration.bridge.login import LoginResult, Outcome, PasswordBridge
from culturebridge_migration.threaded_server import ThreadedServer

logger = logging.getLogger(__name__)
MAX_BODY = 16_384  # a login is a few hundred bytes
MIN_SECRET_CHARS = 16
BUBBLE_RETRY_SECONDS = 5  # a 503's Retry-After: Bubble's blips are short; the user tries again
ERRORS = {
    Outcome.WRONG_PASSWORD: "invalid_credentials",
    Outcome.UNKNOWN_EMAIL: "invalid_credentials",  # the same answer: the service tells no one who has an account
    Outcome.NOT_MIGRATED: "invalid_credentials",
    Outcome.TOO_MANY_TRIES: "too_many_tries",
    Outcome.WINDOW_CLOSED: "password_reset_required",
    Outcome.BUBBLE_UNAVAILABLE: "bubble_unavailable",
}


def check_secret(secret: str | None) -> str:
    """The shared secret, or ValueError: the service never starts open to anyone."""
    if not secret or len(secret) < MIN_SECRET_CHARS:
        raise ValueError(
            f"MIGRATION_PASSWORD_BRIDGE_SECRET must be set to a secret of at least {MIN_SECRET_CHARS} characters "
            "(e.g. `openssl rand -hex 32`), shared with the Phase 2 backend"
        )
    return secret


class BridgeService(ThreadedServer):
    def __init__(self, bridge: PasswordBridge, secret: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.bridge, self.secret = bridge, check_secret(secret)
        self.host, self.port = host, port

    def start(self) -> BridgeService:
        self.bridge.prepare()  # the schema, before the first request: a broken database stops the start
        self._serve(type("Handler", (_Handler,), {"service": self}), poll_interval=0.1, name="password-bridge")
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class _Handler(BaseHTTPRequestHandler):
    service: BridgeService
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        logger.info("%s %s", self.address_string(), format % args)  # the request line and status: no body

    def do_GET(self) -> None:
        if not self._authorized():
            return
        if self.path != "/v1/health":
            return self._json(404, {"error": "not_found"})
        try:
            end = self.service.bridge.window_end()
        except Exception:
            logger.exception("password bridge: health check failed")
            return self._json(503, {"status": "unavailable"})
        self._json(200, {"status": "ok", "window_closes_at": end.isoformat() if end else None})

    def do_POST(self) -> None:
        if not self._authorized():
            return
        if self.path != "/v1/login":
            return self._json(404, {"error": "not_found"})
        credentials = self._credentials()
        if credentials is None:
            return self._json(400, {"error": "expected a JSON object with text fields email and password"})
        try:
            result = self.service.bridge.login(*credentials, source=self._client_address())
        except Exception:  # the database: a backend must see "try later", never "wrong password"
            logger.exception("password bridge: login failed")
            return self._json(503, {"error": "unavailable"})
        self._answer(result)

    def _answer(self, result: LoginResult) -> None:
        if result.ok:
            return self._json(200, {"user_id": result.user_id})
        retry = result.retry_after or (BUBBLE_RETRY_SECONDS if result.outcome is Outcome.BUBBLE_UNAVAILABLE else None)
        headers = {"Retry-After": str(retry)} if retry else None
        self._json(result.http_status, {"error": ERRORS[result.outcome]}, headers)

    def _authorized(self) -> bool:
        given = self.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {self.service.secret}".encode()):
            return True
        self._drain()
        self._json(401, {"error": "unauthorized"}, {"WWW-Authenticate": "Bearer"})
        return False

    def _credentials(self) -> tuple[str, str] | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            return None
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        email, password = body.get("email"), body.get("password")
        if not isinstance(email, str) or not isinstance(password, str) or not email.strip() or not password:
            return None
        return email, password

    def _client_address(self) -> str:
        forwarded = self.headers.get("X-Forwarded-For", "").split(",")[0].strip()
        return forwarded[:100] or self.client_address[0]

    def _drain(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if 0 < length <= MAX_BODY:
            self.rfile.read(length)
        elif length:
            self.close_connection = True

    def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
