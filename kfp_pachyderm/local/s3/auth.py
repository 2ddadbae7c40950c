"""S3 request authentication: AWS Signature V4 (Authorization header, presigned query, signed
aws-chunked bodies) and V2, checked against the server's Pachyderm token.

With a token, the access key id and the secret must both be that token. Without one, any access
key id is accepted but the signature is still checked, with the access key id as the secret: this
is what pachd's gateway does without auth (``SecretKey`` in ``src/server/pfs/s3/auth.go`` returns
the access key as the secret). Unsigned requests are accepted only without a token, as pachd's
``CustomAuth`` accepts them only while auth is off.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from kfp_pachyderm.local.s3.errors import S3Error
from kfp_pachyderm.local.s3.request import RESPONSE_OVERRIDES, Request

MAX_CLOCK_SKEW_S = 15 * 60
MAX_PRESIGN_EXPIRES_S = 7 * 24 * 3600

ISO_BASIC = "%Y%m%dT%H%M%SZ"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
V4_ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_PAYLOADS = {STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER}
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


@dataclass
class StreamSigner:
    """What a verified V4 request gives to check its signed aws-chunked body with: the signing
    key, the request time (``YYYYMMDDTHHMMSSZ``), the credential scope and the seed signature."""

    key: bytes
    amz_date: str
    scope: str
    seed: str

    def check(self, kind: str, previous: str, digest: str, signature: str) -> None:
        """Verify one chunk (``kind`` PAYLOAD) or trailer (TRAILER) signature."""
        if kind == "PAYLOAD":
            lines = [f"{V4_ALGORITHM}-PAYLOAD", self.amz_date, self.scope, previous, EMPTY_SHA256]
        else:
            lines = [f"{V4_ALGORITHM}-TRAILER", self.amz_date, self.scope, previous]
        expected = _hmac_hex(self.key, "\n".join([*lines, digest]))
        if not hmac.compare_digest(expected, signature):
            raise S3Error(
                "SignatureDoesNotMatch",
                f"{kind.lower()} signature {signature!r} of the aws-chunked body does not match: "
                "the body was changed or signed with another secret",
            )


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _hmac_hex(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _v4_time(value: str, what: str) -> float:
    try:
        return datetime.strptime(value, ISO_BASIC).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise S3Error(
            "AccessDenied", f"{what} {value!r} is invalid: expected YYYYMMDDTHHMMSSZ"
        ) from None


def _header_time(value: str, what: str) -> float:
    """The time a signed request's ``x-amz-date`` or ``Date`` header gives, in seconds.

    The forms s2's ``parseAWSTimestamp`` (pachd's S3 library) takes: ``YYYYMMDDTHHMMSSZ`` or
    RFC 1123 with a zone name or a numeric zone (botocore writes ``-0000``). As there, a time that
    is not after 1970 is AccessDenied, one more than 15 minutes off RequestTimeTooSkewed.
    """
    try:
        when = datetime.strptime(value, ISO_BASIC).replace(tzinfo=UTC)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            raise S3Error(
                "AccessDenied",
                f"{what} {value!r} is invalid: expected RFC 1123 "
                "(Mon, 02 Jan 2006 15:04:05 GMT) or YYYYMMDDTHHMMSSZ",
            ) from None
        if when.tzinfo is None:  # "-0000", which RFC 2822 reads as UTC
            when = when.replace(tzinfo=UTC)
    seconds = when.timestamp()
    if seconds <= 0:
        raise S3Error("AccessDenied", f"{what} {value!r} is not after 1970-01-01T00:00:00Z")
    if abs(time.time() - seconds) > MAX_CLOCK_SKEW_S:
        raise S3Error(
            "RequestTimeTooSkewed",
            f"{what} {value!r} differs from the server's time by more than 15 minutes",
        )
    return seconds


class Authenticator:
    """Verifies S3 request signatures: against the server's Pachyderm token, or, when it has
    none, against each request's own access key id."""

    def __init__(self, token: str | None):
        self.token = token

    def authenticate(self, req: Request) -> StreamSigner | None:
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
                _header_time(amz_date or date, "x-amz-date" if amz_date else "Date")
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

    def _secret(self, access_key: str) -> str:
        """The secret a request by ``access_key`` must be signed with: the token, whose access
        key id must be the token too; without a token, the access key id itself (as pachd)."""
        if self.token is None:
            return access_key
        if not hmac.compare_digest(access_key.encode(), self.token.encode()):
            raise S3Error(
                "InvalidAccessKeyId",
                "the access key id is not this server's Pachyderm token; use the token as both "
                "access key id and secret",
            )
        return self.token

    def _mismatch_hint(self) -> str:
        if self.token is None:
            return (
                "this server has no Pachyderm token, so sign with the access key id as the "
                "secret access key too"
            )
        return "sign with the Pachyderm token as the secret access key"

    # --- Signature V4

    def _v4_header(self, req: Request, authorization: str) -> StreamSigner | None:
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
        # S3 and s2 take the request time from Date when there is no x-amz-date (botocore
        # signs that way when the caller sets Date); the string to sign has it as YYYYMMDDTHHMMSSZ.
        header = "x-amz-date" if req.header("x-amz-date") else "Date"
        value = req.header(header)
        if not value:
            raise S3Error(
                "AccessDenied", "Signature V4 requests need an x-amz-date or a Date header"
            )
        amz_date = time.strftime(ISO_BASIC, time.gmtime(_header_time(value, header)))
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

    def _v4_query(self, req: Request) -> None:
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
        req: Request,
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
        secret = self._secret(access_key)
        scope = f"{date}/{region}/{service}/aws4_request"
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
        key = ("AWS4" + secret).encode()
        for part in (date, region, service, "aws4_request"):
            key = _hmac(key, part)
        if not hmac.compare_digest(_hmac_hex(key, string_to_sign), signature):
            raise S3Error(
                "SignatureDoesNotMatch",
                f"the request signature {signature!r} does not match: {self._mismatch_hint()}",
                CanonicalRequest=canonical,
            )
        return StreamSigner(key, amz_date, scope, signature)

    # --- Signature V2

    def _v2_query(self, req: Request) -> None:
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
        self, req: Request, access_key: str, signature: str, date: str, extra: dict[str, str]
    ) -> None:
        secret = self._secret(access_key)
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
        digest = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha1).digest()
        if not hmac.compare_digest(base64.b64encode(digest).decode(), signature):
            raise S3Error(
                "SignatureDoesNotMatch",
                f"the V2 signature {signature!r} does not match: {self._mismatch_hint()}",
                StringToSign=string_to_sign,
            )


def _canonical_query(pairs: list[tuple[str, str | None]], exclude: str | None) -> str:
    items = sorted(
        (quote(unquote(k), safe="-_.~"), quote(unquote(v or ""), safe="-_.~"))
        for k, v in pairs
        if unquote(k) != exclude
    )
    return "&".join(f"{k}={v}" for k, v in items)
