"""Loopback HTTP/1.1 transport: framing, keep-alive, and nothing else.

Two details matter for measurements and for the fault kinds:

* ``disable_nagle_algorithm``: without it every small response waits for the
  client's delayed ACK (~40 ms on Linux), and a 1 ms call measures as 44 ms.
* Responses always carry Content-Length, so HTTP/1.1 clients (requests'
  connection pool, the MNS SDK's single HTTPConnection) keep reusing the
  connection; a reply marked ``drop`` closes it with no response at all, which
  the client sees as a dropped connection.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from .wire import Reply, Request, json_reply

# Idle keep-alive connections are closed after this long, like a cloud load
# balancer would; both SDKs reconnect transparently.
IDLE_TIMEOUT_SECONDS = 60


class CloudHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that routes every request to ``route`` and can
    close its open connections on stop (so no handler thread outlives it)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], route: Callable[[Request], Reply]) -> None:
        super().__init__(address, _Handler)
        self.route = route
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Wake every handler blocked on a keep-alive read so its thread ends."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT_SECONDS
    server_version = "localcloud"
    sys_version = ""
    server: CloudHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the call log is the record; stderr noise would drown test output."""

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            # Without a usable length the next request on this connection
            # cannot be found, so answer and close.
            self.close_connection = True
            self._send(json_reply(411, {"Code": "MissingContentLength",
                                        "Message": "A valid Content-Length is required."}))
            return
        body = self.rfile.read(length)
        path, _, raw_query = self.path.partition("?")
        request = Request(self.command, path, raw_query, self.headers, body)
        try:
            reply = self.server.route(request)
        except Exception:  # an emulator bug must still answer, not hang the client
            traceback.print_exc(file=sys.stderr)
            reply = json_reply(500, {"Code": "InternalError",
                                     "Message": "localcloud failed; see its stderr."})
        if reply.drop:
            self.close_connection = True
            return
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            # The client gave up first (timeout_after_commit): nothing to tell it.
            self.close_connection = True
