"""The HTTP side of an S3 connection: keep-alive and 100-continue handling, and responses.

A response to a request whose body was not read closes the connection, since the unread bytes
would otherwise be taken for the next request.
"""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING
from urllib.parse import unquote

from kfp_pachyderm.local.s3.errors import S3Error
from kfp_pachyderm.local.s3.xml_text import escape_text
from kfp_pachyderm.local.store.pfs_store import Store

if TYPE_CHECKING:
    from kfp_pachyderm.local.s3.gateway import GatewayServer

log = logging.getLogger(__name__)

IDLE_CONNECTION_TIMEOUT_S = 300


class Connection(BaseHTTPRequestHandler):
    """What every S3 operation of a connection shares: the store, ``Expect: 100-continue``,
    and sending responses and error documents."""

    protocol_version = "HTTP/1.1"
    server_version = "kfp-pachyderm-s3"
    rbufsize = 64 << 10
    # A response's headers and a small body go out as separate small writes; with Nagle's
    # algorithm the second waits for the client's delayed ACK (about 40 ms a request).
    disable_nagle_algorithm = True
    timeout = IDLE_CONNECTION_TIMEOUT_S
    server: GatewayServer
    _request_id: str
    _continued: bool
    _responded: bool
    _body_pending: bool
    _resource: str

    def log_message(self, format: str, *args) -> None:
        log.debug("s3 %s - %s", self.address_string(), format % args)

    def handle_expect_100(self) -> bool:
        # The 100 Continue goes out only once the body is wanted (see expect_body), so a
        # request refused up front is answered before the client sends its body.
        return True

    def expect_body(self) -> None:
        """Called before reading the body: answer ``Expect: 100-continue``."""
        if (self.headers.get("Expect") or "").lower() == "100-continue" and not self._continued:
            self._continued = True
            self.send_response_only(100)
            self.end_headers()

    def body_done(self) -> None:
        """Called once the whole body has been read: the connection can serve another request."""
        self._body_pending = False

    @property
    def store(self) -> Store:
        return self.server.gateway.store

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        headers = dict(headers or {})
        if status not in (204, 304):
            headers.setdefault("Content-Length", str(len(body)))
        if body:
            headers.setdefault("Content-Type", "application/xml")
        headers["x-amz-request-id"] = self._request_id
        if self._body_pending:
            headers["Connection"] = "close"
            self.close_connection = True
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self._responded = True
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, err: S3Error) -> None:
        if self._responded:
            self.close_connection = True
            return
        if err.status == 500:
            log.warning("S3 gateway: %s %s: %s", self.command, self.path, err)
        # Messages, details and the resource may hold a key's control characters: escaped as
        # pachd's Go encoder does, so clients can still parse the document.
        fields = [
            ("Code", err.code),
            ("Message", err.message),
            *err.details.items(),
            ("Resource", unquote(self._resource)),
            ("RequestId", self._request_id),
        ]
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
            + "".join(f"<{tag}>{escape_text(str(value))}</{tag}>" for tag, value in fields)
            + "</Error>"
        ).encode()
        headers = {}
        if err.code == "InvalidRange":
            headers["Content-Range"] = f"bytes */{err.details.get('ActualObjectSize', 0)}"
        if self.command == "HEAD":
            self._send(err.status, b"", {"Content-Length": "0", **headers})
        else:
            self._send(err.status, body, headers)
