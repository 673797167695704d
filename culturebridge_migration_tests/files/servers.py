"""A small local HTTP server answering scripted routes: Bubble's file host in a test, or an internal service
that must never be asked anything."""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INTERNAL_SECRET = b"INTERNAL-SERVICE-SECRET: aws_secret_access_key=abc123"


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: bool = True  # send Content-Length; without it the body ends when the connection closes
    trickle: float = 0.0  # seconds between bytes sent one at a time


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]


class ScriptedServer:
    """Answers each path as scripted (the default answer otherwise) and records every request it receives."""

    def __init__(self, default: Answer | None = None, *, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Answer] = {}
        self.default = default or Answer(404, b"not here")
        self.requests: list[Seen] = []
        self.server_names: list[str | None] = []  # the TLS SNI of each handshake
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        if tls is not None:
            tls.sni_callback = lambda sock, name, context: self.server_names.append(name)
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def route(self, path: str, answer: Answer) -> None:
        self.routes[path] = answer

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            server.requests.append(Seen(self.path, dict(self.headers)))
            answer = server.routes.get(self.path, server.default)
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if answer.length:
                self.send_header("Content-Length", str(len(answer.body)))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self._send_body(answer)

        def _send_body(self, answer: Answer) -> None:
            try:
                if not answer.trickle:
                    self.wfile.write(answer.body)
                for byte in answer.body if answer.trickle else b"":
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(answer.trickle)
            except OSError:  # the client gave up (a refused size, a deadline): what the answer tests
                self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    return Handler
