"""A path-style S3 gateway for the local Pachyderm server, modelled on pachd's.

A bucket names a branch, or one commit on it, the way pachd's gateway does::

    [<commitID>.][<branch>.]<repo>[.<project>]     e.g. images, dev.images, dev.images.vision,
                                                    0123...cdef.master.images

A bare ``<repo>`` is its master branch in project ``default``; with a project the branch must be
given. Object keys are file paths in the commit (``a/b.txt`` is ``/a/b.txt``). A PUT or DELETE
addressed to a branch whose head is finished makes one commit of its own; one addressed to an
open commit (the branch head, or a bucket naming it) goes into that commit; one addressed to a
finished commit fails. The version ID of an object is its commit ID and its ETag is the SHA-256
of its content.

Requests are authenticated with AWS Signature V4 (Authorization header, presigned query, and
aws-chunked streaming bodies) or V2. When the server has a Pachyderm token, the access key id and
the secret must both be that token; without one any credentials are accepted (there is no secret
to check them against) but must still be well formed. Bodies stream into the blob store and are
checked against every digest the request declares; nothing holds a whole object in memory.

Multipart uploads in progress live in this process: a restart forgets them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import re
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from kfp_pachyderm.errors import InvalidReferenceError
from kfp_pachyderm.local.store import BranchKey, CommitRow, FileChange, RepoKey, Store, StoreError
from kfp_pachyderm.pfs.refs import (
    COMMIT_ID_RE,
    COMMIT_ID_RULE,
    DEFAULT_PROJECT,
    NAME_RE,
    normalize_path,
)

log = logging.getLogger(__name__)

XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_KEYS = 1000
MAX_XML_BODY = 4 << 20
MIN_PART_SIZE = 5 << 20
MAX_PART_NUMBER = 10000
IO_CHUNK = 1 << 20
MAX_CLOCK_SKEW_S = 15 * 60
MAX_PRESIGN_EXPIRES_S = 7 * 24 * 3600
IDLE_CONNECTION_TIMEOUT_S = 300

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
V4_ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_PAYLOADS = {STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER}
SHA256_HEX_RE = re.compile(r"^[0-9a-f]{64}$")
RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")

# Query parameters that carry a signature, and ones clients add that change nothing here.
AUTH_PARAMS = {
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "x-amz-content-sha256",
    "AWSAccessKeyId",
    "Signature",
    "Expires",
}
NEUTRAL_PARAMS = {"x-id"}
LIST_PARAMS = (
    "list-type",
    "prefix",
    "delimiter",
    "marker",
    "max-keys",
    "continuation-token",
    "start-after",
    "encoding-type",
    "fetch-owner",
)
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
# Signature V2 signs these sub-resources of the query string (the list botocore signs with).
V2_SUBRESOURCES = {
    "accelerate",
    "acl",
    "cors",
    "defaultObjectAcl",
    "location",
    "logging",
    "partNumber",
    "policy",
    "requestPayment",
    "torrent",
    "versioning",
    "versionId",
    "versions",
    "website",
    "uploads",
    "uploadId",
    *RESPONSE_OVERRIDES,
    "delete",
    "lifecycle",
    "tagging",
    "restore",
    "storageClass",
    "notification",
    "replication",
    "analytics",
    "metrics",
    "inventory",
    "select",
    "select-type",
    "object-lock",
}
STATUS = {
    "AccessDenied": 403,
    "AuthorizationHeaderMalformed": 400,
    "AuthorizationQueryParametersError": 400,
    "BadDigest": 400,
    "BucketAlreadyOwnedByYou": 409,
    "EntityTooSmall": 400,
    "IncompleteBody": 400,
    "InternalError": 500,
    "InvalidAccessKeyId": 403,
    "InvalidArgument": 400,
    "InvalidBucketName": 400,
    "InvalidBucketState": 409,
    "InvalidDigest": 400,
    "InvalidPart": 400,
    "InvalidPartOrder": 400,
    "InvalidRange": 416,
    "InvalidRequest": 400,
    "MalformedXML": 400,
    "MissingContentLength": 411,
    "NoSuchBucket": 404,
    "NoSuchKey": 404,
    "NoSuchUpload": 404,
    "NoSuchVersion": 404,
    "NotImplemented": 501,
    "PreconditionFailed": 412,
    "RequestTimeTooSkewed": 403,
    "SignatureDoesNotMatch": 403,
    "XAmzContentSHA256Mismatch": 400,
}
STORE_ERRORS = {
    "NOT_FOUND": "NoSuchBucket",
    "ALREADY_EXISTS": "BucketAlreadyOwnedByYou",
    "INVALID_ARGUMENT": "InvalidArgument",
    "FAILED_PRECONDITION": "InvalidBucketState",
}


class S3Error(Exception):
    """An S3 error response: ``code`` is the S3 error code, which fixes the HTTP status."""

    def __init__(self, code: str, message: str, **details: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = STATUS[code]
        self.details = details


# --------------------------------------------------------------------------------- buckets


@dataclass(frozen=True)
class Bucket:
    """A bucket name resolved to the branch it names and, optionally, one commit on it."""

    name: str
    branch: BranchKey
    commit: str | None

    @property
    def repo(self) -> RepoKey:
        """The repo of the bucket's branch."""
        return self.branch.repo

    @classmethod
    def parse(cls, name: str) -> Bucket:
        """Read pachd's ``[<commitID>.][<branch>.]<repo>[.<project>]``; raise InvalidBucketName."""
        parts = name.split(".")
        commit = parts.pop(0) if COMMIT_ID_RE.match(parts[0]) else None
        if len(parts) == 1:
            project, branch, repo = DEFAULT_PROJECT, "master", parts[0]
        elif len(parts) == 2:
            project, (branch, repo) = DEFAULT_PROJECT, parts
        elif len(parts) == 3:
            branch, repo, project = parts
        else:
            raise _bad_bucket(name, "it has too many or too few '.'-separated parts")
        for kind, value in (("branch", branch), ("repo", repo), ("project", project)):
            if not NAME_RE.match(value):
                raise _bad_bucket(name, f"its {kind} name {value!r} is not a valid name")
        return cls(name, BranchKey(RepoKey(project, repo), branch), commit)


def _bad_bucket(name: str, why: str) -> S3Error:
    return S3Error(
        "InvalidBucketName",
        f"bucket name {name!r} is invalid: {why}; expected [<commitID>.][<branch>.]<repo>"
        "[.<project>] (a bare <repo> is its master branch in project default; with a project "
        "the branch is required) with names of letters, digits, '_' and '-'",
        BucketName=name,
    )


def _branch_bucket(branch: BranchKey) -> str:
    name = f"{branch.name}.{branch.repo.name}"
    return name if branch.repo.project == DEFAULT_PROJECT else f"{name}.{branch.repo.project}"


def bucket_names(store: Store) -> list[tuple[str, float]]:
    """(``branch.repo.project``, repo creation time) of every branch, as pachd's ListBuckets."""
    out = []
    for repo in store.list_repos():
        for branch in repo.branches:
            out.append((f"{branch}.{repo.key.name}.{repo.key.project}", repo.created))
    return sorted(out)


def key_path(key: str) -> str | None:
    """The PFS path of object ``key``, or None when no file can have that key."""
    path = "/" + key
    try:
        return path if normalize_path(path) == path and key else None
    except InvalidReferenceError:
        return None


# ------------------------------------------------------------------------------------ auth


@dataclass
class _Request:
    """The parts of an HTTP request the gateway reads, decoded once."""

    method: str
    raw_path: str
    query_pairs: list[tuple[str, str]]
    query: dict[str, str]
    headers: Message

    def header(self, name: str) -> str | None:
        values = self.headers.get_all(name)
        return None if values is None else ",".join(" ".join(v.split()) for v in values)


@dataclass
class StreamSigner:
    """What a verified V4 request gives to check its signed aws-chunked body with.

    ``key`` is None when the server has no token: chunk signatures are then parsed, not checked.
    """

    key: bytes | None
    amz_date: str
    scope: str
    seed: str

    def check(self, kind: str, previous: str, digest: str, signature: str) -> None:
        """Verify one chunk (``kind`` PAYLOAD) or trailer (TRAILER) signature."""
        if self.key is None:
            return
        if kind == "PAYLOAD":
            lines = [f"{V4_ALGORITHM}-PAYLOAD", self.amz_date, self.scope, previous, EMPTY_SHA256]
        else:
            lines = [f"{V4_ALGORITHM}-TRAILER", self.amz_date, self.scope, previous]
        expected = _hmac_hex(self.key, "\n".join([*lines, digest]))
        if not hmac.compare_digest(expected, signature):
            raise S3Error(
                "SignatureDoesNotMatch",
                f"a {kind.lower()} signature of the aws-chunked body does not match; "
                "check the secret (the Pachyderm token)",
            )


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _hmac_hex(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _v4_time(value: str, what: str) -> float:
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise S3Error(
            "AccessDenied", f"{what} {value!r} is invalid: expected YYYYMMDDTHHMMSSZ"
        ) from None


def _check_skew(when: float) -> None:
    if abs(time.time() - when) > MAX_CLOCK_SKEW_S:
        raise S3Error(
            "RequestTimeTooSkewed",
            "the request's time differs from the server's by more than 15 minutes",
        )


class Authenticator:
    """Verifies S3 request signatures against the server's Pachyderm token."""

    def __init__(self, token: str | None):
        self.token = token

    def authenticate(self, req: _Request) -> StreamSigner | None:
        """Check ``req``'s signature; return a signer for an aws-chunked V4 body, if any.

        Raises S3Error (AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch, ...) when the
        request is not allowed.
        """
        authorization = req.header("Authorization")
        if authorization is not None and authorization.startswith(V4_ALGORITHM + " "):
            return self._v4_header(req, authorization)
        if (req.header("x-amz-content-sha256") or "").startswith(STREAMING_SIGNED):
            raise S3Error(
                "InvalidRequest",
                "a body of signed aws-chunks needs Signature V4 in the Authorization header",
            )
        if authorization is not None:
            if authorization.startswith("AWS "):
                access_key, sep, signature = authorization[4:].rpartition(":")
                if not sep:
                    raise S3Error(
                        "AuthorizationHeaderMalformed",
                        f"Authorization {authorization!r} is malformed: expected "
                        "'AWS <access key id>:<signature>'",
                    )
                amz_date = req.header("x-amz-date")
                date = req.header("Date") or ""
                self._check_v2_date(amz_date or date)
                return self._v2(req, access_key, signature, "" if amz_date else date, {})
            raise S3Error(
                "AuthorizationHeaderMalformed",
                f"Authorization scheme {authorization.split(' ')[0]!r} is not supported: "
                f"use {V4_ALGORITHM} (Signature V4) or AWS (Signature V2)",
            )
        if "X-Amz-Signature" in req.query:
            return self._v4_query(req)
        if "Signature" in req.query:
            return self._v2_query(req)
        if self.token is not None:
            raise S3Error(
                "AccessDenied",
                "anonymous requests are refused: sign requests with the Pachyderm token as "
                "both access key id and secret",
            )
        return None

    def _check_key(self, access_key: str) -> None:
        if self.token is not None and not hmac.compare_digest(
            access_key.encode(), self.token.encode()
        ):
            raise S3Error(
                "InvalidAccessKeyId",
                "the access key id is not this server's Pachyderm token; use the token as both "
                "access key id and secret",
            )

    # --- Signature V4

    def _v4_header(self, req: _Request, authorization: str) -> StreamSigner | None:
        fields = {}
        for item in authorization[len(V4_ALGORITHM) :].split(","):
            name, _, value = item.strip().partition("=")
            fields[name] = value
        missing = sorted({"Credential", "SignedHeaders", "Signature"} - fields.keys())
        if missing:
            raise S3Error(
                "AuthorizationHeaderMalformed",
                f"the Authorization header lacks {', '.join(missing)}",
            )
        amz_date = req.header("x-amz-date")
        if not amz_date:
            raise S3Error("AccessDenied", "Signature V4 requests need an x-amz-date header")
        _check_skew(_v4_time(amz_date, "x-amz-date"))
        payload = req.header("x-amz-content-sha256")
        if not payload:
            raise S3Error(
                "InvalidRequest",
                "Signature V4 requests need an x-amz-content-sha256 header (the body's SHA-256, "
                f"{UNSIGNED_PAYLOAD} or a STREAMING-* value)",
            )
        signer = self._v4_verify(
            req,
            fields["Credential"],
            fields["SignedHeaders"],
            fields["Signature"],
            amz_date,
            payload,
            presigned=False,
        )
        return signer if payload in STREAMING_PAYLOADS else None

    def _v4_query(self, req: _Request) -> None:
        q = req.query
        required = {
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-SignedHeaders",
        }
        missing = sorted(required - q.keys())
        if missing:
            raise S3Error(
                "AuthorizationQueryParametersError",
                f"the presigned URL lacks {', '.join(missing)}",
            )
        if q["X-Amz-Algorithm"] != V4_ALGORITHM:
            raise S3Error(
                "AuthorizationQueryParametersError",
                f"X-Amz-Algorithm {q['X-Amz-Algorithm']!r} is not supported: use {V4_ALGORITHM}",
            )
        expires = q["X-Amz-Expires"]
        if not expires.isdigit() or not 1 <= int(expires) <= MAX_PRESIGN_EXPIRES_S:
            raise S3Error(
                "AuthorizationQueryParametersError",
                f"X-Amz-Expires {expires!r} is invalid: expected 1 to {MAX_PRESIGN_EXPIRES_S} "
                "seconds",
            )
        signed_at = _v4_time(q["X-Amz-Date"], "X-Amz-Date")
        if time.time() > signed_at + int(expires):
            raise S3Error("AccessDenied", "the presigned URL has expired")
        if signed_at > time.time() + MAX_CLOCK_SKEW_S:
            raise S3Error("RequestTimeTooSkewed", "the presigned URL is dated in the future")
        self._v4_verify(
            req,
            q["X-Amz-Credential"],
            q["X-Amz-SignedHeaders"],
            q["X-Amz-Signature"],
            q["X-Amz-Date"],
            req.header("x-amz-content-sha256") or UNSIGNED_PAYLOAD,
            presigned=True,
        )

    def _v4_verify(
        self,
        req: _Request,
        credential: str,
        signed_headers: str,
        signature: str,
        amz_date: str,
        payload: str,
        presigned: bool,
    ) -> StreamSigner:
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request" or parts[0] == "":
            raise S3Error(
                "AuthorizationHeaderMalformed",
                f"credential {credential!r} is malformed: expected "
                "<access key id>/<YYYYMMDD>/<region>/s3/aws4_request",
            )
        access_key, date, region, service, _ = parts
        if date != amz_date[:8]:
            raise S3Error(
                "AuthorizationHeaderMalformed",
                f"credential date {date!r} is not the request date {amz_date[:8]!r}",
            )
        self._check_key(access_key)
        scope = f"{date}/{region}/{service}/aws4_request"
        if self.token is None:
            return StreamSigner(None, amz_date, scope, signature)
        names = signed_headers.split(";")
        canonical = "\n".join(
            [
                req.method,
                quote(unquote(req.raw_path), safe="/~"),
                _canonical_query(req.query_pairs, "X-Amz-Signature" if presigned else None),
                "".join(f"{name}:{req.header(name) or ''}\n" for name in names),
                signed_headers,
                payload,
            ]
        )
        string_to_sign = "\n".join(
            [V4_ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = ("AWS4" + self.token).encode()
        for part in (date, region, service, "aws4_request"):
            key = _hmac(key, part)
        if not hmac.compare_digest(_hmac_hex(key, string_to_sign), signature):
            raise S3Error(
                "SignatureDoesNotMatch",
                "the request signature does not match: sign with the Pachyderm token as the "
                "secret access key",
                CanonicalRequest=canonical,
            )
        return StreamSigner(key, amz_date, scope, signature)

    # --- Signature V2

    def _check_v2_date(self, date: str) -> None:
        try:
            _check_skew(parsedate_to_datetime(date).timestamp())
        except (TypeError, ValueError):
            raise S3Error(
                "AccessDenied",
                f"Signature V2 requests need a Date or x-amz-date header in RFC 1123 form, "
                f"not {date!r}",
            ) from None

    def _v2_query(self, req: _Request) -> None:
        q = req.query
        if "AWSAccessKeyId" not in q or not q.get("Expires", "").isdigit():
            raise S3Error(
                "AuthorizationQueryParametersError",
                "a Signature V2 presigned URL needs AWSAccessKeyId, Signature and a numeric "
                "Expires",
            )
        if time.time() > int(q["Expires"]):
            raise S3Error("AccessDenied", "the presigned URL has expired")
        overrides = {k.lower(): v for k, v in q.items() if k.lower().startswith("x-amz-")}
        for name in ("content-md5", "content-type"):
            if name in q:
                overrides[name] = q[name]
        self._v2(req, q["AWSAccessKeyId"], q["Signature"], q["Expires"], overrides)

    def _v2(
        self, req: _Request, access_key: str, signature: str, date: str, extra: dict[str, str]
    ) -> None:
        self._check_key(access_key)
        if self.token is None:
            return
        amz = {
            k.lower(): ",".join(v.strip() for v in req.headers.get_all(k))
            for k in req.headers
            if k.lower().startswith("x-amz-")
        }
        amz.update((k, v) for k, v in extra.items() if k.startswith("x-amz-"))
        subresources = sorted(
            ((unquote(k), v) for k, v in req.query_pairs if unquote(k) in V2_SUBRESOURCES),
            key=lambda item: item[0],
        )
        resource = req.raw_path
        if resource.count("/") == 1 and resource != "/":
            resource += "/"  # V2 signs a bucket as /bucket/ whether or not the path ends in /
        if subresources:
            resource += "?" + "&".join(
                k if v is None else f"{k}={unquote(v)}" for k, v in subresources
            )
        string_to_sign = "\n".join(
            [
                req.method,
                extra.get("content-md5", req.header("Content-MD5") or ""),
                extra.get("content-type", req.header("Content-Type") or ""),
                date,
                *(f"{k}:{amz[k]}" for k in sorted(amz)),
                resource,
            ]
        )
        digest = hmac.new(self.token.encode(), string_to_sign.encode(), hashlib.sha1).digest()
        if not hmac.compare_digest(base64.b64encode(digest).decode(), signature):
            raise S3Error(
                "SignatureDoesNotMatch",
                "the request signature (V2) does not match: sign with the Pachyderm token as "
                "the secret access key",
                StringToSign=string_to_sign,
            )


def _canonical_query(pairs: list[tuple[str, str | None]], exclude: str | None) -> str:
    items = sorted(
        (quote(unquote(k), safe="-_.~"), quote(unquote(v or ""), safe="-_.~"))
        for k, v in pairs
        if unquote(k) != exclude
    )
    return "&".join(f"{k}={v}" for k, v in items)


# ------------------------------------------------------------------------------------ bodies


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

    def __init__(self, rfile, length: int | None):
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

    def __init__(self, handler: _Handler, signer: StreamSigner | None):
        self._handler = handler
        headers = handler.headers
        length = headers.get("Content-Length")
        chunked = (headers.get("Transfer-Encoding") or "").lower() == "chunked"
        if not chunked and (length is None or not length.isdigit()):
            raise S3Error(
                "MissingContentLength",
                f"a body needs a numeric Content-Length or chunked Transfer-Encoding, not "
                f"Content-Length {length!r}",
            )
        self.length = None if chunked else int(length)
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

    def chunks(self, sha256_checked_by_caller: bool = False) -> Iterator[bytes]:
        """The decoded body in pieces of at most 1 MiB; raises S3Error on a bad digest.

        ``sha256_checked_by_caller``: the caller compares the content's SHA-256 with
        :attr:`payload` itself (the blob store computes it anyway).
        """
        sha256 = None
        if not self.streaming and self.payload != UNSIGNED_PAYLOAD:
            sha256 = None if sha256_checked_by_caller else hashlib.sha256()
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


# ------------------------------------------------------------------------------------- XML


def _el(tag: str, value: object) -> str:
    return f"<{tag}>{escape(str(value))}</{tag}>"


def _document(root: str, *parts: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{XMLNS}">{"".join(parts)}</{root}>'
    ).encode()


def _parse_xml(data: bytes, root: str) -> ElementTree.Element:
    try:
        element = ElementTree.fromstring(data)
    except ElementTree.ParseError as err:
        raise S3Error(
            "MalformedXML", f"the {root} document is not well-formed XML: {err}"
        ) from None
    if _tag(element) != root:
        raise S3Error("MalformedXML", f"expected a <{root}> document, not <{_tag(element)}>")
    return element


def _tag(element: ElementTree.Element) -> str:
    return element.tag.rpartition("}")[2]


def _children(element: ElementTree.Element, tag: str) -> list[ElementTree.Element]:
    return [child for child in element if _tag(child) == tag]


def _text(element: ElementTree.Element, tag: str) -> str | None:
    found = _children(element, tag)
    return (found[0].text or "") if found else None


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _commit_time(commit: CommitRow) -> float:
    return commit.finished or commit.started


def _etag(digest: str) -> str:
    return f'"{digest}"'


# --------------------------------------------------------------------------------- uploads


@dataclass
class _Upload:
    bucket: str
    key: str
    parts: dict[int, tuple[str, int, float]] = field(default_factory=dict)


# ------------------------------------------------------------------------------------ HTTP


class _Handler(BaseHTTPRequestHandler):
    """One connection: parses each request, authenticates it and runs its S3 operation."""

    protocol_version = "HTTP/1.1"
    server_version = "kfp-pachyderm-s3"
    rbufsize = 64 << 10
    timeout = IDLE_CONNECTION_TIMEOUT_S
    server: _Server

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

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # --- plumbing

    @property
    def store(self) -> Store:
        return self.server.gateway.store

    def _dispatch(self) -> None:
        self._request_id = uuid.uuid4().hex[:16].upper()
        self._continued = False
        self._responded = False
        length = self.headers.get("Content-Length", "0")
        self._body_pending = length != "0" or bool(self.headers.get("Transfer-Encoding"))
        self._resource = self.path.partition("?")[0]
        try:
            req = self._parse_request()
            signer = self.server.gateway.auth.authenticate(req)
            self._route(req, signer)
        except S3Error as err:
            self._error(err)
        except StoreError as err:
            self._error(S3Error(STORE_ERRORS.get(err.code, "InternalError"), err.message))
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as err:
            log.exception("S3 gateway: %s %s failed", self.command, self.path)
            self._error(S3Error("InternalError", f"{type(err).__name__}: {err}"))

    def _parse_request(self) -> _Request:
        raw_path, _, raw_query = self.path.partition("?")
        if not raw_path.startswith("/"):
            raise S3Error("InvalidRequest", f"request target {self.path!r} is not a path")
        pairs = []
        for item in raw_query.split("&") if raw_query else []:
            name, sep, value = item.partition("=")
            pairs.append((name, value if sep else None))
        query = {unquote(k): unquote(v or "") for k, v in pairs}
        return _Request(self.command, raw_path, pairs, query, self.headers)

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
        details = "".join(_el(k, v) for k, v in err.details.items())
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
            f"{_el('Code', err.code)}{_el('Message', err.message)}{details}"
            f"{_el('Resource', unquote(self._resource))}{_el('RequestId', self._request_id)}"
            "</Error>"
        ).encode()
        headers = {}
        if err.code == "InvalidRange":
            headers["Content-Range"] = f"bytes */{err.details.get('ActualObjectSize', 0)}"
        if self.command == "HEAD":
            self._send(err.status, b"", {"Content-Length": "0", **headers})
        else:
            self._send(err.status, body, headers)

    def _route(self, req: _Request, signer: StreamSigner | None) -> None:
        path = unquote(req.raw_path)[1:]
        bucket_name, _, key = path.partition("/")
        method = req.method
        if not bucket_name:
            if method == "GET":
                self._only(req)
                return self._list_buckets()
            raise S3Error("NotImplemented", f"{method} / is not supported; GET / lists buckets")
        bucket = Bucket.parse(bucket_name)
        q = req.query
        if not key:
            if method == "GET" and "location" in q:
                self._only(req, "location")
                return self._bucket_location(bucket)
            if method == "GET" and "versioning" in q:
                self._only(req, "versioning")
                return self._bucket_versioning(bucket)
            if method == "GET":
                self._only(req, *LIST_PARAMS)
                return self._list_objects(req, bucket)
            if method == "HEAD":
                self._only(req)
                return self._head_bucket(bucket)
            if method == "PUT":
                self._only(req)
                return self._create_bucket(bucket, signer)
            if method == "DELETE":
                self._only(req)
                return self._delete_bucket(bucket)
            if method == "POST" and "delete" in q:
                self._only(req, "delete")
                return self._delete_objects(bucket, signer)
        else:
            if method in ("GET", "HEAD") and "uploadId" not in q:
                self._only(req, "versionId", *RESPONSE_OVERRIDES)
                return self._get_object(req, bucket, key)
            if method == "GET":
                self._only(req, "uploadId", "max-parts", "part-number-marker")
                return self._list_parts(req, bucket, key)
            if method == "PUT" and req.header("x-amz-copy-source") is not None:
                raise S3Error("NotImplemented", "copying objects is not supported by this gateway")
            if method == "PUT" and "uploadId" in q:
                self._only(req, "uploadId", "partNumber")
                return self._upload_part(req, bucket, key, signer)
            if method == "PUT":
                self._only(req)
                return self._put_object(bucket, key, signer)
            if method == "DELETE" and "uploadId" in q:
                self._only(req, "uploadId")
                return self._abort_upload(req, bucket, key)
            if method == "DELETE":
                self._only(req)
                return self._delete_object(bucket, key)
            if method == "POST" and "uploads" in q:
                self._only(req, "uploads")
                return self._create_upload(bucket, key)
            if method == "POST" and "uploadId" in q:
                self._only(req, "uploadId")
                return self._complete_upload(req, bucket, key, signer)
        raise S3Error(
            "NotImplemented",
            f"{method} {self._resource} with query {sorted(q)} is not an operation this "
            "gateway supports",
        )

    @staticmethod
    def _only(req: _Request, *allowed: str) -> None:
        extra = sorted(set(req.query) - set(allowed) - AUTH_PARAMS - NEUTRAL_PARAMS)
        if extra:
            raise S3Error(
                "NotImplemented",
                f"query parameter(s) {', '.join(extra)} of {req.method} are not supported by "
                "this gateway",
            )

    # --- bucket state

    def _read_commit(self, bucket: Bucket, version: str | None = None) -> CommitRow | None:
        """The commit a read from ``bucket`` sees (None: the branch has no head)."""
        if version is not None:
            if not COMMIT_ID_RE.match(version):
                raise S3Error(
                    "InvalidArgument",
                    f"versionId {version!r} is invalid: a version is a commit ID; {COMMIT_ID_RULE}",
                )
            try:
                return self.store.resolve(bucket.repo, version)
            except StoreError as err:
                if err.code == "NOT_FOUND":
                    raise S3Error("NoSuchVersion", err.message, VersionId=version) from None
                raise
        if bucket.commit is not None:
            return self.store.resolve(bucket.repo, bucket.commit)
        self._check_branch(bucket)
        return self.store.branch_head(bucket.branch)

    def _check_branch(self, bucket: Bucket) -> None:
        try:
            self.store.inspect_branch(bucket.branch)
        except StoreError as err:
            if err.code != "NOT_FOUND":
                raise
            raise S3Error(
                "NoSuchBucket",
                f"{err.message}; CreateBucket {_branch_bucket(bucket.branch)!r} creates it",
                BucketName=bucket.name,
            ) from None

    def _open_target(self, bucket: Bucket) -> CommitRow | None:
        """The open commit a write to ``bucket`` goes into, or None when the write makes a
        commit of its own on the branch; raises when the bucket cannot be written."""
        if bucket.commit is not None:
            commit = self.store.resolve(bucket.repo, bucket.commit)
            if commit.finished is not None:
                raise S3Error(
                    "InvalidBucketState",
                    f"commit {bucket.commit} of repo {bucket.repo} is finished and cannot change; "
                    f"write to its branch's bucket {_branch_bucket(bucket.branch)!r} to make a "
                    "new commit",
                )
            return commit
        self._check_branch(bucket)
        head = self.store.branch_head(bucket.branch)
        return head if head is not None and head.finished is None else None

    def _write(self, bucket: Bucket, changes: list[FileChange]) -> str:
        """Apply ``changes`` atomically; return the ID of the commit they went into."""
        target = self._open_target(bucket)
        if target is None:
            return self.store.one_off_commit(bucket.branch, changes).id
        self.store.apply_changes(target, changes)
        return target.id

    def _writable_path(self, key: str) -> str:
        path = key_path(key)
        if path is None:
            raise S3Error(
                "InvalidArgument",
                f"key {key!r} cannot name a Pachyderm file: use '/'-separated names without "
                "empty, '.' or '..' parts and no trailing '/'",
                Key=key,
            )
        return path

    def _receive_blob(self, signer: StreamSigner | None) -> tuple[str, int]:
        """Stream the body into a blob; return (digest, size) once every check passed."""
        body = Body(self, signer)
        with self.store.blobs.writer() as writer:
            for data in body.chunks(sha256_checked_by_caller=True):
                writer.write(data)
            digest, size = writer.commit()
        if SHA256_HEX_RE.match(body.payload) and body.payload != digest:
            raise S3Error(
                "XAmzContentSHA256Mismatch",
                "the body's SHA-256 is not the x-amz-content-sha256 the request declared",
            )
        return digest, size

    # --- service and buckets

    def _list_buckets(self) -> None:
        buckets = "".join(
            f"<Bucket>{_el('Name', name)}{_el('CreationDate', _iso(created))}</Bucket>"
            for name, created in bucket_names(self.store)
        )
        owner = f"<Owner>{_el('ID', 'pachyderm')}{_el('DisplayName', 'pachyderm')}</Owner>"
        self._send(200, _document("ListAllMyBucketsResult", owner, f"<Buckets>{buckets}</Buckets>"))

    def _head_bucket(self, bucket: Bucket) -> None:
        self._read_commit(bucket)
        self._send(200, b"", {"x-amz-bucket-region": "us-east-1"})

    def _bucket_location(self, bucket: Bucket) -> None:
        self._read_commit(bucket)
        self._send(200, _document("LocationConstraint"))

    def _bucket_versioning(self, bucket: Bucket) -> None:
        self._read_commit(bucket)
        self._send(200, _document("VersioningConfiguration", _el("Status", "Enabled")))

    def _create_bucket(self, bucket: Bucket, signer: StreamSigner | None) -> None:
        if bucket.commit is not None:
            raise _bad_bucket(bucket.name, "a new bucket cannot name a commit")
        if self._body_pending:
            Body(self, signer).read_all()
        try:
            self.store.create_repo(bucket.repo, "", update=False)
        except StoreError as err:
            if err.code != "ALREADY_EXISTS":
                raise
        try:
            self.store.inspect_branch(bucket.branch)
        except StoreError as err:
            if err.code != "NOT_FOUND":
                raise
        else:
            raise S3Error(
                "BucketAlreadyOwnedByYou",
                f"branch {bucket.branch.name} of repo {bucket.repo} already exists",
                BucketName=bucket.name,
            )
        self.store.create_branch(bucket.branch, None, [])
        self._send(200, b"", {"Location": "/" + bucket.name})

    def _delete_bucket(self, bucket: Bucket) -> None:
        if bucket.commit is not None:
            raise _bad_bucket(bucket.name, "DeleteBucket deletes a branch, not a commit")
        self.store.delete_branch(bucket.branch, force=False)
        if not self.store.inspect_repo(bucket.repo).branches:
            self.store.delete_repo(bucket.repo, force=False)
        self._send(204)

    def _list_objects(self, req: _Request, bucket: Bucket) -> None:
        q = req.query
        v2 = q.get("list-type") == "2"
        if q.get("list-type", "2") != "2":
            raise S3Error("InvalidArgument", f"list-type {q['list-type']!r} is invalid: use 2")
        prefix = q.get("prefix", "")
        delimiter = q.get("delimiter", "")
        max_keys = _int_param(q, "max-keys", MAX_KEYS, 0, 2**31 - 1)
        max_keys = min(max_keys, MAX_KEYS)
        url = q.get("encoding-type")
        if url not in (None, "url"):
            raise S3Error("InvalidArgument", f"encoding-type {url!r} is invalid: use url")

        def enc(value: str) -> str:
            return quote(value, safe="/") if url else value

        if v2 and "continuation-token" in q:
            after = _from_token(q["continuation-token"])
        else:
            after = q.get("start-after" if v2 else "marker", "")
        commit = self._read_commit(bucket)
        entries: list[tuple[str, tuple[str, int] | None]] = []
        truncated = False
        if commit is not None and max_keys:
            for path, blob, size in self.store.files_under(commit, _list_root(prefix)):
                key = path[1:]
                if not key.startswith(prefix):
                    continue
                cut = key.find(delimiter, len(prefix)) if delimiter else -1
                name = key if cut < 0 else key[: cut + len(delimiter)]
                if name <= after or (entries and entries[-1][0] == name):
                    continue
                if len(entries) == max_keys:
                    truncated = True
                    break
                entries.append((name, (blob, size) if cut < 0 else None))
        modified = _iso(_commit_time(commit)) if commit is not None else ""
        contents, prefixes = [], []
        for name, found in entries:
            if found is None:
                prefixes.append(f"<CommonPrefixes>{_el('Prefix', enc(name))}</CommonPrefixes>")
                continue
            contents.append(
                f"<Contents>{_el('Key', enc(name))}{_el('LastModified', modified)}"
                f"{_el('ETag', _etag(found[0]))}{_el('Size', found[1])}"
                f"{_el('StorageClass', 'STANDARD')}</Contents>"
            )
        head = [_el("Name", bucket.name), _el("Prefix", enc(prefix))]
        if v2:
            head += [_el("KeyCount", len(entries))]
            if "continuation-token" in q:
                head.append(_el("ContinuationToken", q["continuation-token"]))
            if "start-after" in q:
                head.append(_el("StartAfter", enc(q["start-after"])))
            if truncated:
                head.append(_el("NextContinuationToken", _to_token(entries[-1][0])))
        else:
            head.append(_el("Marker", enc(q.get("marker", ""))))
            if truncated:
                head.append(_el("NextMarker", enc(entries[-1][0])))
        head += [_el("MaxKeys", max_keys), _el("IsTruncated", str(truncated).lower())]
        if delimiter:
            head.append(_el("Delimiter", enc(delimiter)))
        if url:
            head.append(_el("EncodingType", "url"))
        self._send(200, _document("ListBucketResult", *head, *contents, *prefixes))

    # --- objects

    def _get_object(self, req: _Request, bucket: Bucket, key: str) -> None:
        commit = self._read_commit(bucket, req.query.get("versionId"))
        path = key_path(key)
        found = None if commit is None or path is None else self.store.file_blob(commit, path)
        if found is None:
            raise S3Error("NoSuchKey", f"no file {key!r} in bucket {bucket.name!r}", Key=key)
        blob, size = found
        etag = _etag(blob)
        headers = {
            "ETag": etag,
            "Last-Modified": formatdate(_commit_time(commit), usegmt=True),
            "x-amz-version-id": commit.id,
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if (if_match := req.header("If-Match")) is not None and not _etag_matches(etag, if_match):
            raise S3Error("PreconditionFailed", f"the ETag is {etag}, not {if_match}")
        if (if_none := req.header("If-None-Match")) is not None and _etag_matches(etag, if_none):
            self._send(304, b"", headers)
            return
        for param, header in RESPONSE_OVERRIDES.items():
            if param in req.query:
                headers[header] = req.query[param]
        start, end, status = 0, size, 200
        if (spec := req.header("Range")) is not None and (span := _range(spec, size)) is not None:
            start, end, status = *span, 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        headers["Content-Length"] = str(end - start)
        self._send(status, b"", headers)
        left = end - start if self.command == "GET" else 0
        if left:
            for data in self.store.blobs.read(blob, start, IO_CHUNK):
                self.wfile.write(data[:left])
                left -= min(len(data), left)
                if not left:
                    break

    def _put_object(self, bucket: Bucket, key: str, signer: StreamSigner | None) -> None:
        path = self._writable_path(key)
        self._open_target(bucket)
        digest, size = self._receive_blob(signer)
        commit_id = self._write(bucket, [FileChange("put", path, digest, size)])
        self._send(200, b"", {"ETag": _etag(digest), "x-amz-version-id": commit_id})

    def _delete_object(self, bucket: Bucket, key: str) -> None:
        commit_id = self._delete_keys(bucket, [key])
        self._send(204, b"", {"x-amz-version-id": commit_id} if commit_id else {})

    def _delete_keys(self, bucket: Bucket, keys: list[str]) -> str | None:
        """Delete the files among ``keys`` in one commit; None when none exists (no commit)."""
        current = self._open_target(bucket) or self.store.branch_head(bucket.branch)
        paths = [key_path(key) for key in keys]
        changes = [
            FileChange("delete", path)
            for path in dict.fromkeys(paths)
            if path is not None and current is not None and self.store.file_blob(current, path)
        ]
        return self._write(bucket, changes) if changes else None

    def _delete_objects(self, bucket: Bucket, signer: StreamSigner | None) -> None:
        document = _parse_xml(Body(self, signer).read_all(), "Delete")
        objects = _children(document, "Object")
        if not 1 <= len(objects) <= MAX_KEYS:
            raise S3Error(
                "MalformedXML", f"a Delete names 1 to {MAX_KEYS} objects, not {len(objects)}"
            )
        keys = []
        for element in objects:
            key = _text(element, "Key")
            if not key:
                raise S3Error("MalformedXML", "every <Object> of a Delete needs a <Key>")
            keys.append(key)
        self._delete_keys(bucket, keys)
        quiet = (_text(document, "Quiet") or "").strip().lower() == "true"
        deleted = "" if quiet else "".join(f"<Deleted>{_el('Key', k)}</Deleted>" for k in keys)
        self._send(200, _document("DeleteResult", deleted))

    # --- multipart uploads

    def _upload(self, req: _Request, bucket: Bucket, key: str) -> tuple[str, _Upload]:
        upload_id = req.query["uploadId"]
        upload = self.server.gateway.uploads.get(upload_id)
        if upload is None or (upload.bucket, upload.key) != (bucket.name, key):
            raise S3Error(
                "NoSuchUpload",
                f"no multipart upload {upload_id!r} of {key!r} in bucket {bucket.name!r} "
                "(completed, aborted, or lost in a server restart)",
                UploadId=upload_id,
            )
        return upload_id, upload

    def _create_upload(self, bucket: Bucket, key: str) -> None:
        self._writable_path(key)
        self._open_target(bucket)
        upload_id = uuid.uuid4().hex
        self.server.gateway.uploads[upload_id] = _Upload(bucket.name, key)
        self._send(
            200,
            _document(
                "InitiateMultipartUploadResult",
                _el("Bucket", bucket.name),
                _el("Key", key),
                _el("UploadId", upload_id),
            ),
        )

    def _upload_part(
        self, req: _Request, bucket: Bucket, key: str, signer: StreamSigner | None
    ) -> None:
        _, upload = self._upload(req, bucket, key)
        number = _int_param(req.query, "partNumber", None, 1, MAX_PART_NUMBER)
        digest, size = self._receive_blob(signer)
        with self.server.gateway.lock:
            upload.parts[number] = (digest, size, time.time())
        self._send(200, b"", {"ETag": _etag(digest)})

    def _list_parts(self, req: _Request, bucket: Bucket, key: str) -> None:
        upload_id, upload = self._upload(req, bucket, key)
        max_parts = min(_int_param(req.query, "max-parts", MAX_KEYS, 0, 2**31 - 1), MAX_KEYS)
        marker = _int_param(req.query, "part-number-marker", 0, 0, MAX_PART_NUMBER)
        with self.server.gateway.lock:
            numbers = sorted(n for n in upload.parts if n > marker)
            parts = [(n, *upload.parts[n]) for n in numbers[:max_parts]]
        truncated = len(numbers) > max_parts
        listed = [
            f"<Part>{_el('PartNumber', n)}{_el('LastModified', _iso(when))}"
            f"{_el('ETag', _etag(digest))}{_el('Size', size)}</Part>"
            for n, digest, size, when in parts
        ]
        self._send(
            200,
            _document(
                "ListPartsResult",
                _el("Bucket", bucket.name),
                _el("Key", key),
                _el("UploadId", upload_id),
                _el("PartNumberMarker", marker),
                _el("NextPartNumberMarker", parts[-1][0] if parts else marker),
                _el("MaxParts", max_parts),
                _el("IsTruncated", str(truncated).lower()),
                _el("StorageClass", "STANDARD"),
                *listed,
            ),
        )

    def _complete_upload(
        self, req: _Request, bucket: Bucket, key: str, signer: StreamSigner | None
    ) -> None:
        upload_id, upload = self._upload(req, bucket, key)
        document = _parse_xml(Body(self, signer).read_all(), "CompleteMultipartUpload")
        requested = []
        for element in _children(document, "Part"):
            number, etag = _text(element, "PartNumber"), _text(element, "ETag")
            if number is None or not number.strip().isdigit() or etag is None:
                raise S3Error(
                    "MalformedXML", "every <Part> needs a numeric <PartNumber> and <ETag>"
                )
            requested.append((int(number), etag.strip().strip('"')))
        if not requested:
            raise S3Error("MalformedXML", "CompleteMultipartUpload names no parts")
        numbers = [n for n, _ in requested]
        if numbers != sorted(set(numbers)):
            raise S3Error("InvalidPartOrder", "parts must be listed in ascending order, once each")
        with self.server.gateway.lock:
            parts = dict(upload.parts)
        blobs = []
        for index, (number, etag) in enumerate(requested):
            part = parts.get(number)
            if part is None or part[0] != etag:
                raise S3Error(
                    "InvalidPart",
                    f"part {number} with ETag {etag!r} was not uploaded to upload {upload_id}",
                )
            if part[1] < MIN_PART_SIZE and index < len(requested) - 1:
                raise S3Error(
                    "EntityTooSmall",
                    f"part {number} is {part[1]} bytes; every part but the last needs "
                    f"{MIN_PART_SIZE} bytes or more",
                )
            blobs.append(part[0])
        path = self._writable_path(key)
        if len(blobs) == 1:
            digest, size = parts[numbers[0]][:2]
        else:
            with self.store.blobs.writer() as writer:
                for blob in blobs:
                    writer.copy_from(blob)
                digest, size = writer.commit()
        commit_id = self._write(bucket, [FileChange("put", path, digest, size)])
        self.server.gateway.uploads.pop(upload_id, None)
        self._send(
            200,
            _document(
                "CompleteMultipartUploadResult",
                _el("Location", f"{self.server.gateway.endpoint}/{bucket.name}/{quote(key)}"),
                _el("Bucket", bucket.name),
                _el("Key", key),
                _el("ETag", _etag(digest)),
            ),
            {"x-amz-version-id": commit_id},
        )

    def _abort_upload(self, req: _Request, bucket: Bucket, key: str) -> None:
        upload_id, _ = self._upload(req, bucket, key)
        self.server.gateway.uploads.pop(upload_id, None)
        self._send(204)


def _etag_matches(etag: str, condition: str) -> bool:
    return bool({etag, "*"} & {tag.strip() for tag in condition.split(",")})


def _int_param(query: dict[str, str], name: str, default: int | None, low: int, high: int) -> int:
    value = query.get(name)
    if value is None and default is not None:
        return default
    if value is None or not value.isdigit() or not low <= int(value) <= high:
        raise S3Error(
            "InvalidArgument", f"{name} {value!r} is invalid: expected an integer {low} to {high}"
        )
    return int(value)


def _list_root(prefix: str) -> str:
    """The deepest directory every key starting with ``prefix`` lies under."""
    directory = "/" + prefix.rpartition("/")[0]
    try:
        return directory if normalize_path(directory) == directory else "/"
    except InvalidReferenceError:
        return "/"


def _to_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode()


def _from_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise S3Error(
            "InvalidArgument",
            f"continuation-token {token!r} is invalid: pass the NextContinuationToken of the "
            "previous page",
        ) from None


def _range(spec: str, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) of a single ``bytes=`` range; None to ignore it, as S3 does for
    a malformed or multiple range; raises InvalidRange when it is unsatisfiable."""
    match = RANGE_RE.match(spec.strip())
    if not match or match[1] == match[2] == "":
        return None
    first, last = match[1], match[2]
    if first and last and int(last) < int(first):
        return None
    unsatisfiable = S3Error(
        "InvalidRange",
        f"range {spec!r} is outside the object's {size} bytes",
        RangeRequested=spec,
        ActualObjectSize=str(size),
    )
    if first:
        start = int(first)
        if start >= size:
            raise unsatisfiable
        return start, min(int(last) + 1 if last else size, size)
    if int(last) == 0 or size == 0:
        raise unsatisfiable
    return max(0, size - int(last)), size


class _Server(ThreadingHTTPServer):
    """Serves each connection in a thread and remembers open connections to close on stop."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], gateway: S3Gateway):
        self.gateway = gateway
        self.connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:
        with self._connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
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
        self.uploads: dict[str, _Upload] = {}
        self.lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """``http://host:port`` for S3 clients' endpoint_url."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> int:
        """Bind, serve in background threads, and return the bound port."""
        self._server = _Server((self.host, self.port), self)
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
