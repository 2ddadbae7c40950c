"""S3's CopyObject as pachd 2.12's gateway answers it: the copy handler of the s2 library pachd
pins (``pachyderm/s2`` ``object.go``), then pachd's ``CopyObject`` (``src/server/pfs/s3/
object.go``), which is a PFS CopyFile from the source bucket's commit into the destination's.

The source is ``x-amz-copy-source``: ``/<bucket>/<key>`` or ``<bucket>/<key>`` (s2 splits the
path in at most three parts, so without the leading ``/`` a key may not contain ``/``), with an
optional ``?versionId=<commit ID>``. Any bucket, branch or commit, can be the source; the
destination is written like PutObject's, in one commit. The destination key is not checked with
``ValidateFilename``: pachd's CopyFile does not check it either.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, unquote, urlsplit

from kfp_pachyderm.local.s3.buckets import Bucket, key_path
from kfp_pachyderm.local.s3.documents import commit_time, el, http_time, iso_time, xml_document
from kfp_pachyderm.local.s3.errors import S3Error
from kfp_pachyderm.local.s3.object_ops import etag_matches
from kfp_pachyderm.local.s3.request import Request
from kfp_pachyderm.local.s3.targets import CommitTargets

BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def parse_copy_source(header: str) -> tuple[str, str, str | None]:
    """(bucket, key, version or None) of an ``x-amz-copy-source``, parsed as s2 parses it."""
    source = urlsplit(header)
    if BAD_ESCAPE_RE.search(source.path):
        raise S3Error("InvalidArgument", f"x-amz-copy-source {header!r} is not a valid URL path")
    parts = unquote(source.path).split("/", 2)
    if len(parts) == 2:
        bucket, key = parts
    elif len(parts) == 3 and parts[0] == "":
        bucket, key = parts[1], parts[2]
    else:
        raise S3Error(
            "InvalidArgument",
            f"x-amz-copy-source {header!r} is not /<bucket>/<key>, or <bucket>/<key> with a key "
            "without '/' (pachd's gateway splits it so)",
        )
    if not bucket:
        raise S3Error("InvalidBucketName", f"x-amz-copy-source {header!r} names no bucket")
    if not key:
        raise S3Error("NoSuchKey", f"x-amz-copy-source {header!r} names no key", Key=key)
    version = parse_qs(source.query).get("versionId", [""])[0]
    return bucket, key, version or None


def check_copy_conditions(req: Request, etag: str, modified: float) -> None:
    """The ``x-amz-copy-source-if-*`` conditions: PreconditionFailed when one fails; a date
    that does not parse is ignored, as s2 does."""
    if_match = req.header("x-amz-copy-source-if-match")
    if_none_match = req.header("x-amz-copy-source-if-none-match")
    when = datetime.fromtimestamp(int(modified), UTC)
    unmodified_since = http_time(req.header("x-amz-copy-source-if-unmodified-since"))
    modified_since = http_time(req.header("x-amz-copy-source-if-modified-since"))
    failed = (
        (if_match is not None and not etag_matches(etag, if_match))
        or (if_none_match is not None and etag_matches(etag, if_none_match, weak=True))
        or (unmodified_since is not None and when > unmodified_since)
        or (modified_since is not None and when <= modified_since)
    )
    if failed:
        raise S3Error(
            "PreconditionFailed",
            f"an x-amz-copy-source-if-* condition does not hold for the source (ETag {etag})",
        )


class CopyOperations(CommitTargets):
    """CopyObject: a file of any bucket's commit copied into a writable bucket, blobs reused."""

    def _copy_object(self, req: Request, bucket: Bucket, key: str) -> None:
        path = self._object_path(key)
        src_name, src_key, version = parse_copy_source(req.header("x-amz-copy-source") or "")
        if (src_name, src_key, version) == (bucket.name, key, None):
            raise S3Error(
                "InvalidRequest",
                "source and destination are the same; name a versionId to copy an older version",
            )
        src_bucket = Bucket.parse(src_name)
        src_commit = self._read_commit(src_bucket, version)
        src_path = key_path(src_key)
        found = (
            None
            if src_commit is None or src_path is None
            else self.store.file_blob(src_commit, src_path)
        )
        if found is None:
            raise S3Error("NoSuchKey", f"no file {src_key!r} in bucket {src_name!r}", Key=src_key)
        etag, modified = self._etag(found[0]), commit_time(src_commit)
        check_copy_conditions(req, etag, modified)
        commit_id = self._write(bucket, self.store.copied_files(src_commit, src_path, path))
        headers = {"x-amz-version-id": commit_id}
        if version is not None or src_bucket.commit is not None:
            headers["x-amz-copy-source-version-id"] = src_commit.id
        self._send(
            200,
            xml_document(
                "CopyObjectResult", el("LastModified", iso_time(modified)), el("ETag", etag)
            ),
            headers,
        )
