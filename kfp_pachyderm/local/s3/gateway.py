"""The S3 gateway server: binds a port, serves each connection in a thread with
:class:`~kfp_pachyderm.local.s3.handler.Handler`, and holds what requests share (the store, the
authenticator)."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from http.server import ThreadingHTTPServer

from kfp_pachyderm.local.s3.auth import Authenticator
from kfp_pachyderm.local.s3.handler import Handler
from kfp_pachyderm.local.store.pfs_store import Store

log = logging.getLogger(__name__)


class GatewayServer(ThreadingHTTPServer):
    """Serves each connection in a thread and remembers open connections to close on stop."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], gateway: S3Gateway):
        self.gateway = gateway
        self.connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def process_request(self, request: socket.socket, client_address: tuple) -> None:
        with self._connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:
        with self._connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self, wait_s: float) -> None:
        """Shut every open connection and wait up to ``wait_s`` for their threads to finish."""
        with self._connections_lock:
            open_now = list(self.connections)
        for connection in open_now:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + wait_s
        while self.connections and time.monotonic() < deadline:
            time.sleep(0.01)


class S3Gateway:
    """The local server's S3 endpoint over ``store``; ``start()`` binds and returns the port.

    Args:
        store: the local server's store (shared with its gRPC API).
        host: interface to bind.
        port: port to bind; 0 picks a free one.
        token: the server's Pachyderm token; when set, requests must be signed with it as both
            access key id and secret.
    """

    def __init__(
        self, store: Store, host: str = "127.0.0.1", port: int = 0, token: str | None = None
    ):
        self.store = store
        self.host = host
        self.port = port
        self.auth = Authenticator(token)
        self._server: GatewayServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """``http://host:port`` for S3 clients' endpoint_url."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> int:
        """Bind, serve in background threads, and return the bound port."""
        self._server = GatewayServer((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="s3-gateway", daemon=True
        )
        self._thread.start()
        log.info("S3 gateway listening on %s", self.endpoint)
        return self.port

    def stop(self) -> None:
        """Stop accepting requests, close open connections, and release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.close_connections(wait_s=5.0)
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None
