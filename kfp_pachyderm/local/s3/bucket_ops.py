"""S3's service and bucket operations: ListBuckets, HeadBucket, GetBucketLocation,
GetBucketVersioning, CreateBucket, DeleteBucket and ListObjects (V1 and V2).

pachd 2.12's gateway (``src/server/pfs/s3/bucket.go``, ``service.go``, and the ``pachyderm/s2``
handlers it pins) answers GetBucketLocation ``PACHYDERM`` and names one owner of everything
(:data:`~kfp_pachyderm.local.s3.documents.OWNER_ID`); its listings are S3's V1, whatever the
query, never URL-encoded, each object with its ``<Owner>``. Here V2 is S3's, with the owner
only under ``fetch-owner=true``, and ``encoding-type=url`` encodes what boto3 decodes.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import quote

from kfp_pachyderm.codec.names import normalize_path
from kfp_pachyderm.errors import InvalidReferenceError
from kfp_pachyderm.local.s3.auth import StreamSigner
from kfp_pachyderm.local.s3.bodies import Body
from kfp_pachyderm.local.s3.buckets import Bucket, bad_bucket, bucket_names
from kfp_pachyderm.local.s3.documents import (
    commit_time,
    el,
    iso_time,
    owner,
    parse_xml,
    xml_document,
    xml_text,
)
from kfp_pachyderm.local.s3.errors import S3Error
from kfp_pachyderm.local.s3.request import MAX_KEYS, Request, int_param
from kfp_pachyderm.local.s3.targets import CommitTargets
from kfp_pachyderm.local.store.errors import StoreError

LOCATION = "PACHYDERM"
"""The region pachd's gateway answers GetBucketLocation with (``globalLocation``,
``src/server/pfs/s3/s3.go``)."""


class BucketOperations(CommitTargets):
    """Bucket operations: a bucket is a branch, or one commit on it."""

    def _list_buckets(self) -> None:
        buckets = "".join(
            f"<Bucket>{el('Name', name)}{el('CreationDate', iso_time(created))}</Bucket>"
            for name, created in bucket_names(self.store)
        )
        self._send(
            200, xml_document("ListAllMyBucketsResult", owner(), f"<Buckets>{buckets}</Buckets>")
        )

    def _head_bucket(self, bucket: Bucket) -> None:
        self._read_commit(bucket)
        self._send(200, b"", {"x-amz-bucket-region": "us-east-1"})

    def _bucket_location(self, bucket: Bucket) -> None:
        self._read_commit(bucket)
        self._send(200, xml_document("LocationConstraint", LOCATION))

    def _bucket_versioning(self, bucket: Bucket) -> None:
        self._read_commit(bucket)
        self._send(200, xml_document("VersioningConfiguration", el("Status", "Enabled")))

    def _put_bucket_versioning(self, bucket: Bucket, signer: StreamSigner | None) -> None:
        """PutBucketVersioning as pachd's (``PutBucketVersioning``, ``src/server/pfs/s3/
        bucket.go``): every bucket is versioned (each object's version is its commit), so
        ``Enabled`` is accepted and changes nothing, and ``Suspended`` is not supported."""
        self._read_commit(bucket)
        document = parse_xml(Body(self, signer).read_all(), "VersioningConfiguration")
        status = xml_text(document, "Status")
        if status != "Enabled":
            raise S3Error(
                "NotImplemented",
                f"versioning Status {status!r}: buckets are always versioned here, as in "
                "pachd (each object's version is its commit); only Enabled is accepted",
            )
        self._send(200, b"")

    def _create_bucket(self, bucket: Bucket, signer: StreamSigner | None) -> None:
        if bucket.commit is not None:
            raise bad_bucket(bucket.name, "a new bucket cannot name a commit")
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
        """DeleteBucket as pachd's (``DeleteBucket``, ``src/server/pfs/s3/bucket.go``): refused
        while the head commit of the bucket's branch, open or finished, holds a file (pachd
        answers BucketNotEmpty, 409); otherwise the branch is deleted, and the repo with all its
        commits when that was the repo's last branch. Only the head counts, as in pachd."""
        if bucket.commit is not None:
            raise bad_bucket(bucket.name, "DeleteBucket deletes a branch, not a commit")
        self._check_branch(bucket)
        head = self.store.branch_head(bucket.branch)
        if head is not None and self.store.files_under(head, "/"):
            raise S3Error(
                "BucketNotEmpty",
                f"bucket {bucket.name!r} is not empty: the head commit "
                f"{head.id} of branch {bucket.branch.name} of repo {bucket.repo} holds files; "
                "delete them first",
                BucketName=bucket.name,
            )
        self.store.delete_branch(bucket.branch, force=False)
        if not self.store.inspect_repo(bucket.repo).branches:
            self.store.delete_repo(bucket.repo, force=False)
        self._send(204)

    def _list_objects(self, req: Request, bucket: Bucket) -> None:
        q = req.query
        v2 = q.get("list-type") == "2"
        if q.get("list-type", "2") != "2":
            raise S3Error("InvalidArgument", f"list-type {q['list-type']!r} is invalid: use 2")
        prefix = q.get("prefix", "")
        delimiter = q.get("delimiter", "")
        max_keys = int_param(q, "max-keys", MAX_KEYS, 0, 2**31 - 1)
        max_keys = min(max_keys, MAX_KEYS)
        url = q.get("encoding-type")
        if url not in (None, "url"):
            raise S3Error("InvalidArgument", f"encoding-type {url!r} is invalid: use url")
        with_owner = not v2 or q.get("fetch-owner", "").lower() == "true"

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
        modified = iso_time(commit_time(commit)) if commit is not None else ""
        contents, prefixes = [], []
        for name, found in entries:
            if found is None:
                prefixes.append(f"<CommonPrefixes>{el('Prefix', enc(name))}</CommonPrefixes>")
                continue
            contents.append(
                f"<Contents>{el('Key', enc(name))}{el('LastModified', modified)}"
                f"{el('ETag', self._etag(found[0]))}{el('Size', found[1])}"
                f"{el('StorageClass', 'STANDARD')}{owner() if with_owner else ''}</Contents>"
            )
        # V1's <Prefix> stays as sent: pachd never encodes it, and boto3 does not decode it.
        head = [el("Name", bucket.name), el("Prefix", enc(prefix) if v2 else prefix)]
        if v2:
            head += [el("KeyCount", len(entries))]
            if "continuation-token" in q:
                head.append(el("ContinuationToken", q["continuation-token"]))
            if "start-after" in q:
                head.append(el("StartAfter", enc(q["start-after"])))
            if truncated:
                head.append(el("NextContinuationToken", _to_token(entries[-1][0])))
        else:
            head.append(el("Marker", enc(q.get("marker", ""))))
            if truncated:
                head.append(el("NextMarker", enc(entries[-1][0])))
        head += [el("MaxKeys", max_keys), el("IsTruncated", str(truncated).lower())]
        if delimiter:
            head.append(el("Delimiter", enc(delimiter)))
        if url:
            head.append(el("EncodingType", "url"))
        self._send(200, xml_document("ListBucketResult", *head, *contents, *prefixes))


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
