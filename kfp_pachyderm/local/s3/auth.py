"""S3 request authentication: AWS Signature V4 (Authorization header, presigned query, signed
aws-chunked bodies) and V2, checked against the server's Pachyderm token.

With a token, the access key id and the secret must both be that token; without one any
credentials are accepted (there is no secret to check them against) but must be well formed.
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
