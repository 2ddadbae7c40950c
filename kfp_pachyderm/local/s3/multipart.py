"""S3 multipart uploads: CreateMultipartUpload, UploadPart, ListParts, ListMultipartUploads,
CompleteMultipartUpload and AbortMultipartUpload.

Uploads in progress are kept by the store (:mod:`kfp_pachyderm.local.store.uploads`), so they
survive a restart of the server. Each part is staged as a blob of its own, and its ETag is its
BLAKE3, as the ETag of every object written here now is. Completing an upload writes no byte
again: the parts it names, in part-number order and each with the ETag UploadPart answered,
become the blobs of one composite blob, the file's content
(:meth:`~kfp_pachyderm.local.blobs.BlobStore.compose`); the parts it does not name are
removed, as are all of an aborted upload's.

The completed object's ETag is S3's multipart form, ``"<hex MD5 of the parts' ETags, as bytes,
concatenated>-<number of parts>"``: AWS's formula over this gateway's part ETags (AWS's part
ETags are MD5s, these are BLAKE3s), so a client can check it from what UploadPart answered.
pachd 2.12's gateway answers its own PFS file hash there instead (``CompleteMultipart``,
``src/server/pfs/s3/multipart.go``: ``fmt.Sprintf("%x", fileInfo.Hash)``, no ``-<parts>``); it
checks a part's ETag only when it has that hash's length, where this gateway, like S3, always
does.
"""

from __future__ import annotations

import hashlib
import sqlite3
from urllib.parse import quote

from kfp_pachyderm.local.s3.auth import StreamSigner
from kfp_pachyderm.local.s3.bodies import Body
from kfp_pachyderm.local.s3.buckets import Bucket
from kfp_pachyderm.local.s3.documents import (
    el,
    iso_time,
    owner,
    parse_xml,
    quoted_etag,
    xml_children,
    xml_document,
    xml_text,
)
from kfp_pachyderm.local.s3.errors import S3Error
from kfp_pachyderm.local.s3.request import MAX_KEYS, Request, int_param
from kfp_pachyderm.local.s3.targets import CommitTargets
from kfp_pachyderm.local.store.records import FileChange
from kfp_pachyderm.local.store.uploads import UploadRow

MIN_PART_SIZE = 5 << 20
MAX_PART_NUMBER = 10000


def multipart_etag(digests: list[str]) -> str:
    """S3's ETag of an object uploaded in parts whose ETags are ``digests`` (hex): the MD5 of
    the digests' bytes, concatenated, then ``-`` and the number of parts."""
    joined = b"".join(bytes.fromhex(digest) for digest in digests)
    return f"{hashlib.md5(joined, usedforsecurity=False).hexdigest()}-{len(digests)}"


def _no_such_upload(upload_id: str, bucket: Bucket, key: str) -> S3Error:
    return S3Error(
        "NoSuchUpload",
        f"no multipart upload {upload_id!r} of {key!r} in bucket {bucket.name!r} "
        "(completed, aborted, or never started)",
        UploadId=upload_id,
    )


class MultipartOperations(CommitTargets):
    """Multipart upload operations; the completed object is one file in one commit."""

    def _upload(self, req: Request, bucket: Bucket, key: str) -> UploadRow:
        upload_id = req.query["uploadId"]
        upload = self.store.find_upload(upload_id)
        if upload is None or (upload.bucket, upload.key) != (bucket.name, key):
            raise _no_such_upload(upload_id, bucket, key)
        return upload

    def _create_upload(self, bucket: Bucket, key: str) -> None:
        self._writable_path(key)
        self._open_target(bucket)
        upload = self.store.create_upload(bucket.name, key)
        self._send(
            200,
            xml_document(
                "InitiateMultipartUploadResult",
                el("Bucket", bucket.name),
                el("Key", key),
                el("UploadId", upload.id),
            ),
        )

    def _upload_part(
        self, req: Request, bucket: Bucket, key: str, signer: StreamSigner | None
    ) -> None:
        upload = self._upload(req, bucket, key)
        number = int_param(req.query, "partNumber", None, 1, MAX_PART_NUMBER)
        with self.store.blobs.part_writer() as writer:
            self._receive(writer, signer)
            part = self.store.put_part(upload.id, number, writer)
        if part is None:
            raise _no_such_upload(upload.id, bucket, key)
        self._send(200, b"", {"ETag": quoted_etag(part.blob)})

    def _list_parts(self, req: Request, bucket: Bucket, key: str) -> None:
        upload = self._upload(req, bucket, key)
        max_parts = min(int_param(req.query, "max-parts", MAX_KEYS, 0, 2**31 - 1), MAX_KEYS)
        marker = int_param(req.query, "part-number-marker", 0, 0, MAX_PART_NUMBER)
        later = [part for part in self.store.upload_parts(upload.id) if part.number > marker]
        parts = later[:max_parts]
        truncated = len(later) > max_parts
        listed = [
            f"<Part>{el('PartNumber', part.number)}{el('LastModified', iso_time(part.modified))}"
            f"{el('ETag', quoted_etag(part.blob))}{el('Size', part.size)}</Part>"
            for part in parts
        ]
        self._send(
            200,
            xml_document(
                "ListPartsResult",
                el("Bucket", bucket.name),
                el("Key", key),
                el("UploadId", upload.id),
                el("PartNumberMarker", marker),
                el("NextPartNumberMarker", parts[-1].number if parts else marker),
                el("MaxParts", max_parts),
                el("IsTruncated", str(truncated).lower()),
                el("StorageClass", "STANDARD"),
                *listed,
            ),
        )

    def _complete_upload(
        self, req: Request, bucket: Bucket, key: str, signer: StreamSigner | None
    ) -> None:
        upload = self._upload(req, bucket, key)
        document = parse_xml(Body(self, signer).read_all(), "CompleteMultipartUpload")
        requested = []
        for element in xml_children(document, "Part"):
            number, etag = xml_text(element, "PartNumber"), xml_text(element, "ETag")
            if number is None or not number.strip().isdigit() or etag is None:
                raise S3Error(
                    "MalformedXML", "every <Part> needs a numeric <PartNumber> and <ETag>"
                )
            requested.append((int(number), etag.strip().strip('"')))
        if not requested:
            raise S3Error("MalformedXML", "CompleteMultipartUpload names no parts")
        numbers = [n for n, _ in requested]
        if numbers != sorted(set(numbers)):
            raise S3Error(
                "InvalidPartOrder",
                "the list of parts was not in ascending order: list each part once, ordered by "
                "part number",
            )
        parts = {part.number: part for part in self.store.upload_parts(upload.id)}
        chosen = []
        for index, (number, etag) in enumerate(requested):
            part = parts.get(number)
            if part is None or part.blob != etag:
                raise S3Error(
                    "InvalidPart",
                    f"part {number} with ETag {etag!r} could not be found in upload {upload.id}: "
                    "it was not uploaded, or its ETag is another",
                )
            if part.size < MIN_PART_SIZE and index < len(requested) - 1:
                raise S3Error(
                    "EntityTooSmall",
                    f"part {number} is {part.size} bytes; every part but the last needs "
                    f"{MIN_PART_SIZE} bytes or more",
                )
            chosen.append((part.blob, part.size))
        path = self._writable_path(key)
        self._open_target(bucket)
        etag = multipart_etag([blob for blob, _ in chosen])
        digest, size = self.store.blobs.compose(upload.id, chosen, etag)

        def end_upload(db: sqlite3.Connection) -> None:
            if not self.store.end_upload(db, upload.id):
                raise _no_such_upload(upload.id, bucket, key)

        commit_id = self._write(bucket, [FileChange("put", path, digest, size)], end_upload)
        self.store.blobs.drop_staged(upload.id)
        self._send(
            200,
            xml_document(
                "CompleteMultipartUploadResult",
                el("Location", f"{self.server.gateway.endpoint}/{bucket.name}/{quote(key)}"),
                el("Bucket", bucket.name),
                el("Key", key),
                el("ETag", quoted_etag(etag)),
            ),
            {"x-amz-version-id": commit_id},
        )

    def _abort_upload(self, req: Request, bucket: Bucket, key: str) -> None:
        upload = self._upload(req, bucket, key)
        if not self.store.abort_upload(upload.id):
            raise _no_such_upload(upload.id, bucket, key)
        self._send(204)

    def _list_uploads(self, req: Request, bucket: Bucket) -> None:
        """ListMultipartUploads: by key, then upload ID; ``key-marker`` and
        ``upload-id-marker`` as S3 takes them."""
        self._read_commit(bucket)
        q = req.query
        prefix, key_marker = q.get("prefix", ""), q.get("key-marker", "")
        id_marker = q.get("upload-id-marker", "") if key_marker else ""
        max_uploads = min(int_param(q, "max-uploads", MAX_KEYS, 0, 2**31 - 1), MAX_KEYS)
        later = [
            upload
            for upload in self.store.list_uploads(bucket.name)
            if upload.key.startswith(prefix)
            and (
                upload.key > key_marker
                or (id_marker and upload.key == key_marker and upload.id > id_marker)
            )
        ]
        uploads = later[:max_uploads]
        truncated = bool(uploads) and len(later) > max_uploads
        listed = [
            f"<Upload>{el('Key', upload.key)}{el('UploadId', upload.id)}"
            f"{owner('Initiator')}{owner()}"
            f"{el('StorageClass', 'STANDARD')}{el('Initiated', iso_time(upload.initiated))}"
            "</Upload>"
            for upload in uploads
        ]
        self._send(
            200,
            xml_document(
                "ListMultipartUploadsResult",
                el("Bucket", bucket.name),
                el("KeyMarker", key_marker),
                el("UploadIdMarker", id_marker),
                el("NextKeyMarker", uploads[-1].key if truncated else ""),
                el("NextUploadIdMarker", uploads[-1].id if truncated else ""),
                el("Prefix", prefix),
                el("MaxUploads", max_uploads),
                el("IsTruncated", str(truncated).lower()),
                *listed,
            ),
        )
