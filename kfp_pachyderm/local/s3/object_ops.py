"""S3's object operations: GetObject and HeadObject (versions, ranges, conditions), PutObject,
DeleteObject and DeleteObjects. An object's version ID is its commit ID.

A key ending in ``/`` (an S3 folder marker, as S3 consoles, Hadoop's s3a and TensorFlow's S3
file system write them) names the file without that ``/``, as in pachd's gateway
(:func:`~kfp_pachyderm.local.s3.buckets.key_path`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import formatdate

from kfp_pachyderm.local.s3.auth import StreamSigner
from kfp_pachyderm.local.s3.bodies import IO_CHUNK, Body
from kfp_pachyderm.local.s3.buckets import Bucket, key_path
from kfp_pachyderm.local.s3.documents import (
    commit_time,
    el,
    http_time,
    parse_xml,
    quoted_etag,
    xml_children,
    xml_document,
    xml_text,
)
from kfp_pachyderm.local.s3.errors import S3Error
from kfp_pachyderm.local.s3.request import MAX_KEYS, RESPONSE_OVERRIDES, Request
from kfp_pachyderm.local.s3.targets import CommitTargets, invalid_file_path
from kfp_pachyderm.local.store.records import FileChange

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


class ObjectOperations(CommitTargets):
    """Object operations: an object is a file of the bucket's commit."""

    def _get_object(self, req: Request, bucket: Bucket, key: str) -> None:
        commit = self._read_commit(bucket, req.query.get("versionId"))
        path = key_path(key)
        found = None if commit is None or path is None else self.store.file_blob(commit, path)
        if found is None:
            raise S3Error("NoSuchKey", f"no file {key!r} in bucket {bucket.name!r}", Key=key)
        blob, size = found
        etag, modified = self._etag(blob), commit_time(commit)
        if not_modified(req, etag, modified):
            # Go's writeNotModified drops Last-Modified when there is an ETag.
            self._send(304, b"", {"ETag": etag, "x-amz-version-id": commit.id})
            return
        headers = {
            "ETag": etag,
            "Last-Modified": formatdate(modified, usegmt=True),
            "x-amz-version-id": commit.id,
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
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
        self._send(200, b"", {"ETag": quoted_etag(digest), "x-amz-version-id": commit_id})

    def _delete_object(self, bucket: Bucket, key: str) -> None:
        refused = invalid_file_path(key) if key_path(key) is not None else None
        if refused is not None:
            raise refused
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
        """DeleteObjects; a key pachd refuses to delete is reported in an <Error> of the
        result, as pachd's gateway reports each key it fails, and the others are deleted."""
        document = parse_xml(Body(self, signer).read_all(), "Delete")
        objects = xml_children(document, "Object")
        if not 1 <= len(objects) <= MAX_KEYS:
            raise S3Error(
                "MalformedXML", f"a Delete names 1 to {MAX_KEYS} objects, not {len(objects)}"
            )
        keys = []
        for element in objects:
            key = xml_text(element, "Key")
            if not key:
                raise S3Error("MalformedXML", "every <Object> of a Delete needs a <Key>")
            keys.append(key)
        refused = {
            key: error
            for key in keys
            if key_path(key) is not None and (error := invalid_file_path(key)) is not None
        }
        self._delete_keys(bucket, [key for key in keys if key not in refused])
        quiet = (xml_text(document, "Quiet") or "").strip().lower() == "true"
        deleted = (
            ""
            if quiet
            else "".join(f"<Deleted>{el('Key', k)}</Deleted>" for k in keys if k not in refused)
        )
        errors = "".join(
            f"<Error>{el('Key', k)}{el('Code', e.code)}{el('Message', e.message)}</Error>"
            for k, e in refused.items()
        )
        self._send(200, xml_document("DeleteResult", deleted, errors))


def etag_matches(etag: str, condition: str, weak: bool = False) -> bool:
    """Whether the ETag list ``condition`` holds ``*`` or ``etag``: compared strongly (If-Match)
    or, with ``weak``, ignoring ``W/`` (If-None-Match), as Go's net/http and s2 compare; an
    unquoted tag is taken quoted, as s2's ETag middleware quotes it."""
    for tag in condition.split(","):
        tag = tag.strip().removeprefix("W/") if weak else tag.strip()
        if tag == "*" or (tag if tag.startswith('"') else f'"{tag}"') == etag:
            return True
    return False


def not_modified(req: Request, etag: str, modified: float) -> bool:
    """Whether a GET or HEAD of an object with ``etag``, last modified at ``modified``, is
    answered 304 Not Modified; raises PreconditionFailed (412) when a precondition fails.

    pachd's gateway serves both through Go's ``http.ServeContent`` (``pachyderm/s2``
    ``object.go``), whose ``checkPreconditions`` (``net/http/fs.go``) follows RFC 7232
    section 6: If-Match, or If-Unmodified-Since when there is no If-Match, decides the 412;
    then If-None-Match, or If-Modified-Since when there is no If-None-Match, decides the 304.
    Times compare in whole seconds, as Last-Modified carries them; an empty header or a date
    that does not parse is no condition."""
    when = datetime.fromtimestamp(int(modified), UTC)
    unmodified_since = req.header("If-Unmodified-Since")
    if if_match := req.header("If-Match"):
        if not etag_matches(etag, if_match):
            raise S3Error(
                "PreconditionFailed",
                f"the ETag is {etag}, which If-Match {if_match!r} does not name",
            )
    elif (since := http_time(unmodified_since)) is not None and when > since:
        raise S3Error(
            "PreconditionFailed",
            f"the object was last modified {formatdate(int(modified), usegmt=True)}, after "
            f"If-Unmodified-Since {unmodified_since!r}",
        )
    if if_none := req.header("If-None-Match"):
        return etag_matches(etag, if_none, weak=True)
    since = http_time(req.header("If-Modified-Since"))
    return since is not None and when <= since


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
