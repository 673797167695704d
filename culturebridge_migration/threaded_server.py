"""An HTTP server on a thread of its own, started and stopped as a context.

The local Bubble server and the login bridge's service both serve this way; each subclass builds its
request handler in `start` and hands it to `_serve`.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class ThreadedServer:
    host: str
    port: int  # 0: any free port, the one taken once started
    _server: ThreadingHTTPServer | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def _serve(self, handler: type[BaseHTTPRequestHandler], *, poll_interval: float, name: str) -> None:
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        # stop() waits for the loop to see it: a short poll interval keeps every teardown quick.
        thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True, name=name
        )
        thread.start()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
