"""S3 multipart uploads: CreateMultipartUpload, UploadPart, ListParts,
CompleteMultipartUpload and AbortMultipartUpload.

Uploads in progress live in this process (a restart forgets them); each part is a blob, and
completing an upload joins the parts' blobs into one file.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote

from kfp_pachyderm.local.s3.auth import StreamSigner
from kfp_pachyderm.local.s3.bodies import Body
from kfp_pachyderm.local.s3.buckets import Bucket
from kfp_pachyderm.local.s3.documents import (
    el,
    iso_time,
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

MIN_PART_SIZE = 5 << 20
MAX_PART_NUMBER = 10000


@dataclass
class Upload:
    """A multipart upload in progress: part number -> (blob digest, size, upload time)."""

    bucket: str
    key: str
    parts: dict[int, tuple[str, int, float]] = field(default_factory=dict)


class MultipartOperations(CommitTargets):
    """Multipart upload operations; the completed object is one file in one commit."""

    def _upload(self, req: Request, bucket: Bucket, key: str) -> tuple[str, Upload]:
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
        self.server.gateway.uploads[upload_id] = Upload(bucket.name, key)
        self._send(
            200,
            xml_document(
                "InitiateMultipartUploadResult",
                el("Bucket", bucket.name),
                el("Key", key),
                el("UploadId", upload_id),
            ),
        )

    def _upload_part(
        self, req: Request, bucket: Bucket, key: str, signer: StreamSigner | None
    ) -> None:
        _, upload = self._upload(req, bucket, key)
        number = int_param(req.query, "partNumber", None, 1, MAX_PART_NUMBER)
        digest, size = self._receive_blob(signer)
        with self.server.gateway.lock:
            upload.parts[number] = (digest, size, time.time())
        self._send(200, b"", {"ETag": quoted_etag(digest)})

    def _list_parts(self, req: Request, bucket: Bucket, key: str) -> None:
        upload_id, upload = self._upload(req, bucket, key)
        max_parts = min(int_param(req.query, "max-parts", MAX_KEYS, 0, 2**31 - 1), MAX_KEYS)
        marker = int_param(req.query, "part-number-marker", 0, 0, MAX_PART_NUMBER)
        with self.server.gateway.lock:
            numbers = sorted(n for n in upload.parts if n > marker)
            parts = [(n, *upload.parts[n]) for n in numbers[:max_parts]]
        truncated = len(numbers) > max_parts
        listed = [
            f"<Part>{el('PartNumber', n)}{el('LastModified', iso_time(when))}"
            f"{el('ETag', quoted_etag(digest))}{el('Size', size)}</Part>"
            for n, digest, size, when in parts
        ]
        self._send(
            200,
            xml_document(
                "ListPartsResult",
                el("Bucket", bucket.name),
                el("Key", key),
                el("UploadId", upload_id),
                el("PartNumberMarker", marker),
                el("NextPartNumberMarker", parts[-1][0] if parts else marker),
                el("MaxParts", max_parts),
                el("IsTruncated", str(truncated).lower()),
                el("StorageClass", "STANDARD"),
                *listed,
            ),
        )

    def _complete_upload(
        self, req: Request, bucket: Bucket, key: str, signer: StreamSigner | None
    ) -> None:
        upload_id, upload = self._upload(req, bucket, key)
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
            xml_document(
                "CompleteMultipartUploadResult",
                el("Location", f"{self.server.gateway.endpoint}/{bucket.name}/{quote(key)}"),
                el("Bucket", bucket.name),
                el("Key", key),
                el("ETag", quoted_etag(digest)),
            ),
            {"x-amz-version-id": commit_id},
        )

    def _abort_upload(self, req: Request, bucket: Bucket, key: str) -> None:
        upload_id, _ = self._upload(req, bucket, key)
        self.server.gateway.uploads.pop(upload_id, None)
        self._send(204)
