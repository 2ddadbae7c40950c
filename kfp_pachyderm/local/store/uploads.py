"""S3 multipart uploads in progress, kept with the store's metadata so that they survive a
restart (a ``kill -9`` included): each upload's bucket and key (tables ``uploads`` and
``upload_parts``), while the parts' bytes are staged by the blob store
(:meth:`~kfp_pachyderm.local.blobs.BlobStore.compose`).

A part's staged file is placed and its row written under the store's lock, so concurrent
uploads of parts never remove a file another row names. A process killed between the two
leaves a staged file no row names; :meth:`UploadStore.sweep_uploads` removes it at the next
start, as it removes the staged parts of uploads that were completed or aborted.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass

from kfp_pachyderm.local.blobs import BlobWriter
from kfp_pachyderm.local.store.database import Database


@dataclass(frozen=True)
class UploadRow:
    """A multipart upload in progress; ``bucket`` is the bucket name it was started in."""

    id: str
    bucket: str
    key: str
    initiated: float


@dataclass(frozen=True)
class PartRow:
    """One uploaded part: its blob (staged until the upload completes) and size."""

    number: int
    blob: str
    size: int
    modified: float


class UploadStore(Database):
    """The store's multipart upload operations."""

    def create_upload(self, bucket: str, key: str) -> UploadRow:
        """Start an upload of ``key`` in ``bucket``."""
        row = UploadRow(uuid.uuid4().hex, bucket, key, time.time())
        with self._write() as db:
            db.execute(
                "INSERT INTO uploads (id, bucket, key, initiated) VALUES (?, ?, ?, ?)",
                (row.id, row.bucket, row.key, row.initiated),
            )
        return row

    def find_upload(self, upload_id: str) -> UploadRow | None:
        """The upload in progress with this ID, or None."""
        rows = self._query(
            "SELECT id, bucket, key, initiated FROM uploads WHERE id=?", (upload_id,)
        )
        return UploadRow(*rows[0]) if rows else None

    def list_uploads(self, bucket: str) -> list[UploadRow]:
        """The uploads in progress in ``bucket``, by key, then upload ID."""
        rows = self._query(
            "SELECT id, bucket, key, initiated FROM uploads WHERE bucket=? ORDER BY key, id",
            (bucket,),
        )
        return [UploadRow(*row) for row in rows]

    def upload_parts(self, upload_id: str) -> list[PartRow]:
        """The parts of an upload, by part number."""
        rows = self._query(
            "SELECT number, blob, size, modified FROM upload_parts WHERE upload=? ORDER BY number",
            (upload_id,),
        )
        return [PartRow(*row) for row in rows]

    def put_part(self, upload_id: str, number: int, writer: BlobWriter) -> PartRow | None:
        """Stage what ``writer`` holds as part ``number`` of the upload, replacing an earlier
        part of that number; None (and nothing staged) when the upload is gone."""
        stale = None
        with self._lock:
            with self._write() as db:
                if db.execute("SELECT 1 FROM uploads WHERE id=?", (upload_id,)).fetchone() is None:
                    return None
                digest, size = writer.stage(upload_id)
                old = db.execute(
                    "SELECT blob FROM upload_parts WHERE upload=? AND number=?",
                    (upload_id, number),
                ).fetchone()
                row = PartRow(number, digest, size, time.time())
                db.execute(
                    "INSERT OR REPLACE INTO upload_parts (upload, number, blob, size, modified) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (upload_id, row.number, row.blob, row.size, row.modified),
                )
                if old is not None and old[0] != digest:
                    named = db.execute(
                        "SELECT 1 FROM upload_parts WHERE upload=? AND blob=?",
                        (upload_id, old[0]),
                    ).fetchone()
                    stale = None if named else old[0]
            # Once committed, and still under the lock, so no part stages this file meanwhile.
            if stale is not None:
                self.blobs.unstage(upload_id, stale)
        return row

    @staticmethod
    def end_upload(db: sqlite3.Connection, upload_id: str) -> bool:
        """Forget an upload and its parts in the caller's transaction; False when it was
        already gone. The caller drops its staged parts once the transaction commits."""
        db.execute("DELETE FROM upload_parts WHERE upload=?", (upload_id,))
        return db.execute("DELETE FROM uploads WHERE id=?", (upload_id,)).rowcount > 0

    def abort_upload(self, upload_id: str) -> bool:
        """Forget an upload and remove its parts; False when it was already gone."""
        with self._write() as db:
            ended = self.end_upload(db, upload_id)
        self.blobs.drop_staged(upload_id)
        return ended

    def sweep_uploads(self) -> None:
        """Remove every staged part that no upload in progress names."""
        live: dict[str, set[str]] = {
            upload_id: set() for (upload_id,) in self._query("SELECT id FROM uploads")
        }
        for upload_id, blob in self._query("SELECT upload, blob FROM upload_parts"):
            live.setdefault(upload_id, set()).add(blob)
        self.blobs.sweep_staging(live)
