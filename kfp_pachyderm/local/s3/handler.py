"""The S3 request handler: routes each request, once authenticated, to its operation, and
turns the errors operations raise into S3 error responses."""

from __future__ import annotations

import logging
import uuid
from urllib.parse import unquote

from kfp_pachyderm.local.s3.auth import StreamSigner
from kfp_pachyderm.local.s3.bucket_ops import BucketOperations
from kfp_pachyderm.local.s3.buckets import Bucket
from kfp_pachyderm.local.s3.copy_ops import CopyOperations
from kfp_pachyderm.local.s3.errors import STORE_ERRORS, S3Error
from kfp_pachyderm.local.s3.multipart import MultipartOperations
from kfp_pachyderm.local.s3.object_ops import ObjectOperations
from kfp_pachyderm.local.s3.request import RESPONSE_OVERRIDES, Request, content_length
from kfp_pachyderm.local.store.errors import StoreError

log = logging.getLogger(__name__)

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


class Handler(BucketOperations, ObjectOperations, MultipartOperations, CopyOperations):
    """One connection: parses each request, authenticates it and runs its S3 operation."""

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

    def _dispatch(self) -> None:
        self._request_id = uuid.uuid4().hex[:16].upper()
        self._continued = False
        self._responded = False
        length = self.headers.get("Content-Length", "0")
        self._body_pending = length != "0" or bool(self.headers.get("Transfer-Encoding"))
        self._resource = self.path.partition("?")[0]
        try:
            content_length(self.headers)  # a malformed one is refused before anything else
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

    def _parse_request(self) -> Request:
        raw_path, _, raw_query = self.path.partition("?")
        if not raw_path.startswith("/"):
            raise S3Error("InvalidRequest", f"request target {self.path!r} is not a path")
        pairs = []
        for item in raw_query.split("&") if raw_query else []:
            name, sep, value = item.partition("=")
            pairs.append((name, value if sep else None))
        query = {unquote(k): unquote(v or "") for k, v in pairs}
        return Request(self.command, raw_path, pairs, query, self.headers)

    def _route(self, req: Request, signer: StreamSigner | None) -> None:
        path = unquote(req.raw_path)[1:]
        bucket_name, _, key = path.partition("/")
        method = req.method
        if not bucket_name:
            if method == "GET":  # pachd lists every bucket, whatever the query asks
                self._only(req, "max-buckets", "continuation-token", "prefix", "bucket-region")
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
            if method == "PUT" and "versioning" in q:
                self._only(req, "versioning")
                return self._put_bucket_versioning(bucket, signer)
            if method == "GET" and "uploads" in q:
                self._only(
                    req, "uploads", "prefix", "key-marker", "upload-id-marker", "max-uploads"
                )
                return self._list_uploads(req, bucket)
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
                self._only(req)
                return self._copy_object(req, bucket, key)
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
    def _only(req: Request, *allowed: str) -> None:
        extra = sorted(set(req.query) - set(allowed) - AUTH_PARAMS - NEUTRAL_PARAMS)
        if extra:
            raise S3Error(
                "NotImplemented",
                f"query parameter(s) {', '.join(extra)} of {req.method} are not supported by "
                "this gateway",
            )
