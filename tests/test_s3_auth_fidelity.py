"""The S3 gateway authenticates and answers malformed requests as pachd 2.12's gateway does.

Each test names what it follows in pachd's source (github.com/pachyderm/pachyderm, branch
2.12.x, ``src/server/pfs/s3/``) or in pachd's S3 library, github.com/pachyderm/s2 (the version
pachd 2.12's go.mod pins, e4a20345d93c), and drives the real local server with real boto3, or
with the raw HTTP a client sends where boto3 cannot produce the request.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import socket
import time
import urllib.error
import urllib.request
from email.utils import formatdate
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from kfp_pachyderm.local.server import LocalPachyderm

from .s3_clients import error_of, make_s3

TOKEN = "s3-auth-token"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@pytest.fixture
def gateway(tmp_path: Path):
    """A local server with an S3 gateway and no token (pachd with auth off)."""
    with LocalPachyderm(tmp_path / "pfs", s3_port=0) as srv:
        yield srv


@pytest.fixture
def token_gateway(tmp_path: Path):
    """A local server with an S3 gateway and a Pachyderm token (pachd with auth on)."""
    with LocalPachyderm(tmp_path / "pfs-auth", token=TOKEN, s3_port=0) as srv:
        yield srv


class Raw(NamedTuple):
    """A response to :func:`send_raw`."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes


def send_raw(server: LocalPachyderm, head: str, body: bytes = b"") -> Raw:
    """Send ``head`` (request line and headers, CRLF-separated, without the blank line) and
    ``body`` on a new connection, byte for byte as written; the response, read in full."""
    split = urlsplit(server.s3_endpoint)
    with socket.create_connection((split.hostname, split.port), timeout=30) as sock:
        sock.sendall(f"{head}\r\nHost: {split.netloc}\r\n\r\n".encode("latin-1") + body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return Raw(response.status, response.headers, response.read())


def error_code(response: Raw) -> str:
    """The Code of an S3 error document, parsed with a strict XML parser."""
    return ElementTree.fromstring(response.body).findtext("Code")


def iso_basic(when: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))


# ------------------------------------------------------------ signatures without a token


def test_without_a_token_the_signature_is_checked_with_the_access_key_as_secret(
    gateway: LocalPachyderm,
):
    """pachd without auth accepts any access key but checks the signature with the access key
    as the secret: ``SecretKey`` (src/server/pfs/s3/auth.go) returns ``&accessKey`` when WhoAmI
    says auth is not activated, and s2's ``authV4`` (s2.go) compares the signature made with it,
    answering 403 SignatureDoesNotMatch when another secret signed the request."""
    alice = make_s3(gateway, "alice", "alice")
    alice.create_bucket(Bucket="data")
    alice.put_object(Bucket="data", Key="f", Body=b"x")
    bob = make_s3(gateway, "someone-else", "someone-else")  # any access key id is known
    assert bob.get_object(Bucket="data", Key="f")["Body"].read() == b"x"
    v2 = make_s3(gateway, "carol", "carol", signature_version="s3")
    assert v2.get_object(Bucket="data", Key="f")["Body"].read() == b"x"

    wrong = make_s3(gateway, "alice", "not-alice")
    assert error_of(lambda: wrong.list_buckets()) == ("SignatureDoesNotMatch", 403)
    assert error_of(lambda: wrong.get_object(Bucket="data", Key="f")) == (
        "SignatureDoesNotMatch",
        403,
    )
    assert error_of(lambda: wrong.put_object(Bucket="data", Key="g", Body=b"y"))[1] == 403
    assert error_of(lambda: alice.head_object(Bucket="data", Key="g"))[1] == 404
    # s2's authV2 answers AccessDenied to a bad V2 signature; S3 (and this gateway, with or
    # without a token) answers SignatureDoesNotMatch. Both are 403.
    wrong_v2 = make_s3(gateway, "alice", "not-alice", signature_version="s3")
    assert error_of(lambda: wrong_v2.list_buckets()) == ("SignatureDoesNotMatch", 403)


def test_without_a_token_presigned_urls_are_checked_the_same_way(gateway: LocalPachyderm):
    """pachd has no presigned-URL support of its own: s2 reads only the Authorization header,
    so a presigned URL reaches ``CustomAuth`` (src/server/pfs/s3/auth.go) like an unsigned
    request and passes while auth is off, whatever its signature. This gateway checks presigned
    URLs with the same rule as signed headers (secret == access key id), so a URL it accepts is
    one pachd accepts too."""
    make_s3(gateway, "alice", "alice").create_bucket(Bucket="data")
    make_s3(gateway, "alice", "alice").put_object(Bucket="data", Key="f", Body=b"x")
    for version in ("s3v4", "s3"):
        good = make_s3(gateway, "alice", "alice", signature_version=version)
        url = good.generate_presigned_url("get_object", Params={"Bucket": "data", "Key": "f"})
        assert urllib.request.urlopen(url).read() == b"x"
        bad = make_s3(gateway, "alice", "other", signature_version=version)
        url = bad.generate_presigned_url("get_object", Params={"Bucket": "data", "Key": "f"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(url)
        assert info.value.code == 403
        assert ElementTree.fromstring(info.value.read()).findtext("Code") == (
            "SignatureDoesNotMatch"
        )


def test_unsigned_requests_pass_only_without_a_token(
    gateway: LocalPachyderm, token_gateway: LocalPachyderm
):
    """s2's ``authMiddleware`` (s2.go) hands a request with neither V4 nor V2 Authorization to
    pachd's ``CustomAuth`` (src/server/pfs/s3/auth.go), which passes it exactly when auth is not
    active; with auth on it is 403 AccessDenied."""
    anonymous = make_s3(gateway, "unused", "unused", signature_version=UNSIGNED)
    anonymous.create_bucket(Bucket="data")
    anonymous.put_object(Bucket="data", Key="f", Body=b"x")
    assert anonymous.get_object(Bucket="data", Key="f")["Body"].read() == b"x"
    refused = make_s3(token_gateway, "unused", "unused", signature_version=UNSIGNED)
    assert error_of(lambda: refused.list_buckets()) == ("AccessDenied", 403)


def _signed_chunks_put(server: LocalPachyderm, key: str, secret: str, corrupt: bool) -> int:
    """PutObject of one signed aws-chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) with access key
    id ``key``: the seed signature from botocore's SigV4 signer, the chunk signatures made as
    AWS documents them with ``secret``; ``corrupt`` changes the chunk after signing it."""
    body = b"chunked body"
    url = f"{server.s3_endpoint}/data/chunked"
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(body)),
        "X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    }
    request = AWSRequest(method="PUT", url=url, headers=headers)
    SigV4Auth(Credentials(key, secret), "s3", "us-east-1").add_auth(request)
    stamp = request.headers["X-Amz-Date"]
    signing_key = ("AWS4" + secret).encode()
    for part in (stamp[:8], "us-east-1", "s3", "aws4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    previous = request.headers["Authorization"].rpartition("Signature=")[2]
    encoded = b""
    for chunk in (body, b""):
        lines = [
            "AWS4-HMAC-SHA256-PAYLOAD",
            stamp,
            f"{stamp[:8]}/us-east-1/s3/aws4_request",
            previous,
            EMPTY_SHA256,
            hashlib.sha256(chunk).hexdigest(),
        ]
        previous = hmac.new(signing_key, "\n".join(lines).encode(), hashlib.sha256).hexdigest()
        sent = chunk.upper() if corrupt else chunk
        encoded += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + sent + b"\r\n"
    split = urlsplit(url)
    connection = http.client.HTTPConnection(split.hostname, split.port, timeout=30)
    connection.request("PUT", split.path, body=encoded, headers=dict(request.headers.items()))
    status = connection.getresponse().status
    connection.close()
    return status


def test_without_a_token_chunk_signatures_are_checked(gateway: LocalPachyderm):
    """s2's object PUT (object.go) reads a STREAMING-AWS4-HMAC-SHA256-PAYLOAD body through its
    ``chunkedReader`` (util_chunked_reader.go) with the signing key authV4 derived, which pachd
    without auth derives from the access key as secret: a chunk that does not match its
    signature fails the upload."""
    make_s3(gateway, "alice", "alice").create_bucket(Bucket="data")
    assert _signed_chunks_put(gateway, "alice", "alice", corrupt=False) == 200
    assert _signed_chunks_put(gateway, "alice", "alice", corrupt=True) == 403
    got = make_s3(gateway, "alice", "alice").get_object(Bucket="data", Key="chunked")
    assert got["Body"].read() == b"chunked body"


# -------------------------------------------------------------- SigV4 dated by Date


def _date_instead_of_amz_date(request, **_) -> None:
    # botocore's SigV4Auth dates the request by Date, and drops X-Amz-Date, when the request
    # already has a Date header (_set_necessary_date_headers); this is how a caller asks for it.
    request.headers["Date"] = "set by the signer"


def test_sigv4_dated_by_the_date_header(token_gateway: LocalPachyderm):
    """s2's ``parseAWSTimestamp`` (util_header.go) takes the request time from ``Date`` when
    there is no ``x-amz-date``, in RFC 1123 (zone name or numeric zone) or YYYYMMDDTHHMMSSZ form,
    and ``authV4`` (s2.go) signs that time as YYYYMMDDTHHMMSSZ. S3 accepts it too."""
    sent: list[dict] = []
    s3 = make_s3(token_gateway, TOKEN, TOKEN)
    s3.meta.events.register("before-sign.s3", _date_instead_of_amz_date)
    s3.meta.events.register("before-send.s3", lambda request, **_: sent.append(request.headers))
    s3.create_bucket(Bucket="data")
    s3.put_object(Bucket="data", Key="f", Body=b"dated")
    assert s3.get_object(Bucket="data", Key="f")["Body"].read() == b"dated"
    authorization = sent[-1]["Authorization"].decode()
    signed = authorization.partition("SignedHeaders=")[2].partition(",")[0]
    assert "X-Amz-Date" not in sent[-1] and "date" in signed.split(";")
    wrong = make_s3(token_gateway, TOKEN, "not-the-token")
    wrong.meta.events.register("before-sign.s3", _date_instead_of_amz_date)
    assert error_of(lambda: wrong.list_buckets()) == ("SignatureDoesNotMatch", 403)

    def get_dated(when: float) -> Raw:
        # a Date in YYYYMMDDTHHMMSSZ form, signed with botocore's SigV4 signer's own steps
        stamp = iso_basic(when)
        url = f"{token_gateway.s3_endpoint}/data/f"
        request = AWSRequest(
            method="GET", url=url, headers={"Date": stamp, "X-Amz-Content-SHA256": EMPTY_SHA256}
        )
        request.context["timestamp"] = stamp
        signer = SigV4Auth(Credentials(TOKEN, TOKEN), "s3", "us-east-1")
        canonical = signer.canonical_request(request)
        signature = signer.signature(signer.string_to_sign(request, canonical), request)
        signed = signer.signed_headers(signer.headers_to_sign(request))
        credential = f"{TOKEN}/{stamp[:8]}/us-east-1/s3/aws4_request"
        return send_raw(
            token_gateway,
            f"GET /data/f HTTP/1.1\r\nDate: {stamp}\r\n"
            f"X-Amz-Content-SHA256: {EMPTY_SHA256}\r\nAuthorization: AWS4-HMAC-SHA256 "
            f"Credential={credential}, SignedHeaders={signed}, Signature={signature}",
        )

    assert get_dated(time.time()).body == b"dated"
    stale = get_dated(time.time() - 3600)  # the time really comes from Date
    assert (stale.status, error_code(stale)) == (403, "RequestTimeTooSkewed")


# ------------------------------------------------------------------ malformed requests


def test_malformed_content_length_is_400_invalid_argument(gateway: LocalPachyderm):
    """s2's ``bodyReadingMiddleware`` (s2.go) answers 400 InvalidArgument to a Content-Length
    that ``strconv.ParseUint`` refuses, on any request (Go's net/http answers a bare 400 to one
    that is no number at all before s2 runs); S3 answers 400 as well. A missing Content-Length on
    a PUT stays 411 MissingContentLength (s2's ``requireContentLength``, util_header.go)."""
    make_s3(gateway, "a", "a").create_bucket(Bucket="data")
    for head in (
        "PUT /data/f HTTP/1.1\r\nContent-Length: 12abc",
        "PUT /data/f HTTP/1.1\r\nContent-Length: -1",
        "PUT /data/f HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4",
        "GET /data/f HTTP/1.1\r\nContent-Length: x",
    ):
        response = send_raw(gateway, head, b"abc")
        assert (response.status, error_code(response)) == (400, "InvalidArgument"), head
        assert response.headers["Connection"] == "close", "the body's end is unknown"
    assert send_raw(gateway, "PUT /data/f HTTP/1.1\r\nContent-Length: 3", b"abc").status == 200
    missing = send_raw(gateway, "PUT /data/g HTTP/1.1")
    assert (missing.status, error_code(missing)) == (411, "MissingContentLength")


def _v4_dated(server: LocalPachyderm, amz_date: str) -> Raw:
    credential = f"{TOKEN}/{amz_date[:8]}/us-east-1/s3/aws4_request"
    return send_raw(
        server,
        f"GET / HTTP/1.1\r\nx-amz-date: {amz_date}\r\nx-amz-content-sha256: {EMPTY_SHA256}\r\n"
        f"Authorization: AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, "
        f"Signature={'0' * 64}",
    )


def test_a_request_time_not_after_1970_is_access_denied(token_gateway: LocalPachyderm):
    """s2's ``parseAWSTimestamp`` (util_header.go) answers AccessDenied to a time that is not
    after the Unix epoch, before it checks the clock skew (RequestTimeTooSkewed), for V4 and V2
    alike; S3 answers AccessDenied too."""
    for amz_date in ("19691231T235959Z", "19700101T000000Z", "18500101T000000Z"):
        response = _v4_dated(token_gateway, amz_date)
        assert (response.status, error_code(response)) == (403, "AccessDenied"), amz_date
    skewed = _v4_dated(token_gateway, iso_basic(time.time() - 3600))
    assert (skewed.status, error_code(skewed)) == (403, "RequestTimeTooSkewed")
    for date in ("Wed, 31 Dec 1969 23:59:59 GMT", formatdate(time.time() - 3600, usegmt=True)):
        head = f"GET / HTTP/1.1\r\nDate: {date}\r\nAuthorization: AWS {TOKEN}:bad"
        v2 = send_raw(token_gateway, head)
        expected = "AccessDenied" if "1969" in date else "RequestTimeTooSkewed"
        assert (v2.status, error_code(v2)) == (403, expected), date


def test_error_documents_replace_characters_xml_cannot_hold(gateway: LocalPachyderm):
    """pachd writes error documents with Go's encoding/xml (s2's ``writeXMLBody``,
    util_xml.go), whose escaping replaces a character XML 1.0 cannot hold, such as a NUL in a
    key, with U+FFFD, and writes a carriage return as ``&#xD;``: the document stays
    well-formed, so a client parses its error code."""
    s3 = make_s3(gateway, "a", "a")
    s3.create_bucket(Bucket="data")
    caught = error_of(lambda: s3.get_object(Bucket="data", Key="nul\x00byte"))
    raw = send_raw(gateway, "GET /data/nul%00byte HTTP/1.1")
    document = ElementTree.fromstring(raw.body)  # raises on a document that is not well-formed
    assert caught == (document.findtext("Code"), raw.status)
    assert not caught[0].isdigit(), "boto3 parsed the error document, not just the status"
    assert document.findtext("Resource") == "/data/nul\ufffdbyte"
    odd = send_raw(gateway, "GET /data/a%01b%0Dc%EF%BF%BF HTTP/1.1")
    assert ElementTree.fromstring(odd.body).findtext("Resource") == "/data/a\ufffdb\rc\ufffd"
