"""Which commit an S3 request reads or writes: a bucket's branch head or named commit, and
whether a write goes into an open commit or makes a commit of its own."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from kfp_pachyderm.codec.names import COMMIT_ID_RE, COMMIT_ID_RULE
from kfp_pachyderm.local.blobs import BlobWriter
from kfp_pachyderm.local.s3.auth import StreamSigner
from kfp_pachyderm.local.s3.bodies import Body
from kfp_pachyderm.local.s3.buckets import Bucket, branch_bucket, key_path
from kfp_pachyderm.local.s3.connection import Connection
from kfp_pachyderm.local.s3.documents import quoted_etag
from kfp_pachyderm.local.s3.errors import S3Error
from kfp_pachyderm.local.store.errors import StoreError
from kfp_pachyderm.local.store.paths import filename_error
from kfp_pachyderm.local.store.records import CommitRow, FileChange


class CommitTargets(Connection):
    """Resolves a request's bucket to the commit it reads or writes, and writes to it."""

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
                f"{err.message}; CreateBucket {branch_bucket(bucket.branch)!r} creates it",
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
                    f"write to its branch's bucket {branch_bucket(bucket.branch)!r} to make a "
                    "new commit",
                )
            return commit
        self._check_branch(bucket)
        head = self.store.branch_head(bucket.branch)
        return head if head is not None and head.finished is None else None

    def _write(
        self,
        bucket: Bucket,
        changes: list[FileChange],
        then: Callable[[sqlite3.Connection], None] | None = None,
    ) -> str:
        """Apply ``changes`` atomically, in one transaction with ``then`` when given; return
        the ID of the commit they went into."""
        target = self._open_target(bucket)
        if target is None:
            return self.store.one_off_commit(bucket.branch, changes, then).id
        self.store.apply_changes(target, changes, then)
        return target.id

    def _etag(self, blob: str) -> str:
        """The quoted ETag of a file whose blob is ``blob``."""
        return quoted_etag(self.store.blobs.etag(blob))

    def _object_path(self, key: str) -> str:
        """The PFS path of object ``key``; InvalidArgument when no file can have that key."""
        path = key_path(key)
        if path is None:
            raise S3Error(
                "InvalidArgument",
                f"key {key!r} cannot name a Pachyderm file: use '/'-separated names without "
                "empty, '.' or '..' parts (one trailing '/' is dropped)",
                Key=key,
            )
        return path

    def _writable_path(self, key: str) -> str:
        """The PFS path a put of ``key`` names, refused as :func:`invalid_file_path` says."""
        path = self._object_path(key)
        refused = invalid_file_path(key)
        if refused is not None:
            raise refused
        return path

    def _receive_blob(self, signer: StreamSigner | None) -> tuple[str, int]:
        """Stream the body into a blob; return (digest, size) once every check passed."""
        with self.store.blobs.writer() as writer:
            self._receive(writer, signer)
            return writer.commit()

    def _receive(self, writer: BlobWriter, signer: StreamSigner | None) -> None:
        """Stream the body into ``writer``; raises, before anything is stored, when a check
        fails."""
        body = Body(self, signer)
        for data in body.chunks():
            writer.write(data)


def invalid_file_path(key: str) -> S3Error | None:
    """InvalidFilePath (400) for a key pachd's ``ValidateFilename`` refuses, the error pachd's
    gateway maps that refusal to; None for a valid key."""
    error = filename_error(key)
    return (
        None
        if error is None
        else S3Error("InvalidFilePath", f"Invalid file path: {error}", Key=key)
    )
