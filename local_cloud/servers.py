"""The local cloud's own HTTP servers (the API Gateway emulation, the payment provider): threaded, on
loopback, served from a background thread, stopped cleanly."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 resets connections when a crowd of shoppers arrives


class BackgroundServer:
    def __init__(self, host: str, port: int, handler_class: type[BaseHTTPRequestHandler], name: str) -> None:
        self._server = _Server((host, port), handler_class)
        self._name = name
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name=self._name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
