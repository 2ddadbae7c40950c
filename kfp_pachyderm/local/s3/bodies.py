"""S3 request bodies, streamed: Content-Length or HTTP chunked framing, aws-chunked encoding
(signed chunks, signed or unsigned trailers), and every digest the request declares
(Content-MD5, x-amz-content-sha256, x-amz-checksum-*), so no whole object sits in memory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from kfp_pachyderm.local.s3.auth import (
    STREAMING_PAYLOADS,
    STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED_TRAILER,
    UNSIGNED_PAYLOAD,
    StreamSigner,
)
from kfp_pachyderm.local.s3.connection import Connection
from kfp_pachyderm.local.s3.errors import S3Error
from kfp_pachyderm.local.s3.request import content_length

MAX_XML_BODY = 4 << 20
IO_CHUNK = 1 << 20
SHA256_HEX_RE = re.compile(r"^[0-9a-f]{64}$")


class _Checksum:
    """One x-amz-checksum-* algorithm over a stream, in its base64 wire form."""

    def update(self, data: bytes) -> None:
        raise NotImplementedError

    def value(self) -> str:
        raise NotImplementedError


class _Crc32(_Checksum):
    def __init__(self) -> None:
        self.crc = 0

    def update(self, data: bytes) -> None:
        self.crc = zlib.crc32(data, self.crc)

    def value(self) -> str:
        return base64.b64encode(self.crc.to_bytes(4, "big")).decode()


class _Hashed(_Checksum):
    def __init__(self, name: str) -> None:
        self.hash = hashlib.new(name)

    def update(self, data: bytes) -> None:
        self.hash.update(data)

    def value(self) -> str:
        return base64.b64encode(self.hash.digest()).decode()


CHECKSUMS: dict[str, Callable[[], _Checksum]] = {
    "x-amz-checksum-crc32": _Crc32,
    "x-amz-checksum-sha1": lambda: _Hashed("sha1"),
    "x-amz-checksum-sha256": lambda: _Hashed("sha256"),
}


class _Source:
    """The raw body bytes, delimited by Content-Length or by HTTP chunked transfer encoding."""

    def __init__(self, rfile: BinaryIO, length: int | None):
        self._rfile = rfile
        self._chunked = length is None
        self._left = 0 if length is None else length
        self._ended = False

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; b"" once the body has ended."""
        if self._chunked and not self._left and not self._ended:
            self._next_chunk()
        n = min(n, self._left)
        if not n:
            return b""
        data = self._rfile.read(n)
        if len(data) < n:
            raise S3Error("IncompleteBody", "the connection closed before the body's end")
        self._left -= n
        if self._chunked and not self._left and self._rfile.read(2) != b"\r\n":
            raise S3Error("IncompleteBody", "an HTTP chunk does not end in CRLF")
        return data

    def _next_chunk(self) -> None:
        line = self._rfile.readline(8192)
        try:
            self._left = int(line.split(b";")[0], 16)
        except ValueError:
            raise S3Error("IncompleteBody", f"HTTP chunk size {line[:40]!r} is malformed") from None
        if self._left == 0:
            while self._rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                pass
            self._ended = True


class Body:
    """A request body as decoded bytes, checked against every digest the request declares.

    Plain bodies and aws-chunked ones (signed chunks, signed or unsigned trailers), delimited by
    Content-Length or HTTP chunked transfer encoding, are read incrementally. ``Content-MD5``, a
    hex ``x-amz-content-sha256`` and x-amz-checksum-crc32, -sha1 and -sha256 (header or trailer)
    are verified when the last byte has been read, so a caller writing the bytes somewhere must
    discard them when iteration raises. CRC32C and CRC64NVME checksums are not verified (the
    standard library cannot compute them).
    """

    def __init__(self, handler: Connection, signer: StreamSigner | None):
        self._handler = handler
        headers = handler.headers
        length = content_length(headers)
        chunked = (headers.get("Transfer-Encoding") or "").lower() == "chunked"
        if not chunked and length is None:
            raise S3Error(
                "MissingContentLength",
                "a body needs a Content-Length or chunked Transfer-Encoding; the request has "
                "neither",
            )
        self.length = None if chunked else length
        self._source = _Source(handler.rfile, self.length)
        self._pending = b""
        self._signer = signer
        self.payload = headers.get("x-amz-content-sha256") or UNSIGNED_PAYLOAD
        self.streaming = self.payload in STREAMING_PAYLOADS
        if self.payload.startswith("STREAMING-") and not self.streaming:
            raise S3Error(
                "NotImplemented",
                f"x-amz-content-sha256 {self.payload!r} is not supported: use "
                f"{', '.join(sorted(STREAMING_PAYLOADS))}, {UNSIGNED_PAYLOAD} or a SHA-256",
            )
        plain = self.payload not in STREAMING_PAYLOADS | {UNSIGNED_PAYLOAD}
        if plain and not SHA256_HEX_RE.match(self.payload):
            raise S3Error(
                "InvalidArgument",
                f"x-amz-content-sha256 {self.payload!r} is invalid: expected 64 lowercase hex "
                f"digits, {UNSIGNED_PAYLOAD} or a STREAMING-* value",
            )
        self._md5 = None
        if (md5 := headers.get("Content-MD5")) is not None:
            try:
                self._md5 = (base64.b64decode(md5, validate=True), hashlib.md5())
            except binascii.Error:
                self._md5 = (b"", hashlib.md5())
            if len(self._md5[0]) != 16:
                raise S3Error("InvalidDigest", f"Content-MD5 {md5!r} is not a base64 MD5 digest")
        self._checksums: dict[str, tuple[str | None, _Checksum]] = {}
        trailer = (headers.get("x-amz-trailer") or "").strip().lower()
        for name, make in CHECKSUMS.items():
            if (value := headers.get(name)) is not None or name == trailer:
                self._checksums[name] = (value, make())
        handler.expect_body()

    def chunks(self) -> Iterator[bytes]:
        """The decoded body in pieces of at most 1 MiB; raises S3Error on a bad digest."""
        sha256 = None
        if not self.streaming and self.payload != UNSIGNED_PAYLOAD:
            sha256 = hashlib.sha256()
        pieces = self._chunked() if self.streaming else self._plain()
        size = 0
        for data in pieces:
            size += len(data)
            if sha256 is not None:
                sha256.update(data)
            if self._md5 is not None:
                self._md5[1].update(data)
            for _, checksum in self._checksums.values():
                checksum.update(data)
            yield data
        self._handler.body_done()
        if sha256 is not None and sha256.hexdigest() != self.payload:
            raise S3Error(
                "XAmzContentSHA256Mismatch",
                "the body's SHA-256 is not the x-amz-content-sha256 the request declared",
            )
        if self._md5 is not None and self._md5[0] != self._md5[1].digest():
            raise S3Error("BadDigest", "the body's MD5 is not the Content-MD5 the request declared")
        for name, (declared, checksum) in self._checksums.items():
            if declared is None:
                raise S3Error("InvalidRequest", f"the body's trailer lacks its declared {name}")
            if declared != checksum.value():
                raise S3Error(
                    "BadDigest",
                    f"the body's {name} is {checksum.value()}, not the {declared} declared",
                )
        if self.streaming:
            decoded = self._handler.headers.get("x-amz-decoded-content-length")
            if decoded is not None and decoded != str(size):
                raise S3Error(
                    "IncompleteBody",
                    f"the aws-chunked body decodes to {size} bytes, not the "
                    f"x-amz-decoded-content-length {decoded}",
                )

    def read_all(self, limit: int = MAX_XML_BODY) -> bytes:
        """A small body (an XML document) in full; refuses one over ``limit`` bytes."""
        if self.length is not None and self.length > limit and not self.streaming:
            raise S3Error("InvalidRequest", f"a body of {self.length} bytes is over {limit} bytes")
        out = bytearray()
        for data in self.chunks():
            out += data
            if len(out) > limit:
                raise S3Error("InvalidRequest", f"the body is over {limit} bytes")
        return bytes(out)

    def _some(self, n: int) -> bytes:
        """1 to ``n`` bytes of the raw body; b"" at its end."""
        if self._pending:
            data, self._pending = self._pending[:n], self._pending[n:]
            return data
        return self._source.read(n)

    def _exactly(self, n: int) -> bytes:
        data = self._some(n)
        while len(data) < n:
            more = self._some(n - len(data))
            if not more:
                raise S3Error("IncompleteBody", "the aws-chunked body ends inside a chunk")
            data += more
        return data

    def _line(self) -> str:
        while b"\r\n" not in self._pending:
            more = self._source.read(256)
            if not more or len(self._pending) > 8192:
                raise S3Error("IncompleteBody", "a line of the aws-chunked body is cut off")
            self._pending += more
        line, _, self._pending = self._pending.partition(b"\r\n")
        return line.decode("latin-1")

    def _plain(self) -> Iterator[bytes]:
        while data := self._some(IO_CHUNK):
            yield data

    def _chunked(self) -> Iterator[bytes]:
        signed = self.payload != STREAMING_UNSIGNED_TRAILER
        signer = self._signer
        previous = signer.seed if signer else ""
        while True:
            size_hex, _, extension = self._line().partition(";")
            try:
                size = int(size_hex, 16)
            except ValueError:
                raise S3Error(
                    "InvalidRequest", f"aws-chunked size {size_hex!r} is not hexadecimal"
                ) from None
            name, _, signature = extension.partition("=")
            if signed and name != "chunk-signature":
                raise S3Error("InvalidRequest", "an aws-chunked chunk lacks its chunk-signature")
            chunk_hash = hashlib.sha256() if signed else None
            left = size
            while left:
                data = self._some(min(left, IO_CHUNK))
                if not data:
                    raise S3Error("IncompleteBody", "the aws-chunked body ends inside a chunk")
                left -= len(data)
                if chunk_hash is not None:
                    chunk_hash.update(data)
                yield data
            if signed and signer is not None:
                signer.check("PAYLOAD", previous, chunk_hash.hexdigest(), signature)
                previous = signature
            if size == 0:
                break
            if self._exactly(2) != b"\r\n":
                raise S3Error("InvalidRequest", "an aws-chunked chunk does not end in CRLF")
        trailer_signature = None
        canonical = ""
        while line := self._line():
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "x-amz-trailer-signature":
                trailer_signature = value
                continue
            canonical += f"{name}:{value}\n"
            if name in self._checksums:
                self._checksums[name] = (value, self._checksums[name][1])
        if self.payload == STREAMING_SIGNED_TRAILER and signer is not None:
            if trailer_signature is None:
                raise S3Error("InvalidRequest", "the aws-chunked trailer lacks its signature")
            digest = hashlib.sha256(canonical.encode()).hexdigest()
            signer.check("TRAILER", previous, digest, trailer_signature)
        if self._some(1):
            raise S3Error("IncompleteBody", "bytes follow the end of the aws-chunked body")
