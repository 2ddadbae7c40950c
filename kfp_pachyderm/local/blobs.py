"""Content-addressed storage of file contents for the local Pachyderm server.

Every blob is keyed by its SHA-256. Large blobs are files (``objects/ab/ab12...``), written to a
temporary file and renamed into place, so a reader never sees a partial blob. Small blobs (up to
:data:`INLINE_LIMIT`) live in a SQLite table instead, written in batches: creating one file per
4 KiB object costs more than the network does, and ten thousand small files are a common commit.
A process killed at any moment leaves only temporaries and unreferenced blobs behind; the next
start removes the temporaries.

Ordering rule for durability: :meth:`BlobStore.flush` must return before metadata that refers to
a blob is committed. :class:`~kfp_pachyderm.local.store.pfs_store.Store` does that in every
transaction that adds files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

READ_CHUNK = 4 << 20
INLINE_LIMIT = 64 << 10
PENDING_LIMIT = 8 << 20


class BlobStore:
    """Blobs under ``root``; safe for concurrent writers and readers."""

    def __init__(self, root: Path):
        self.root = root
        self.objects = root / "objects"
        self.tmp = root / "tmp"
        self.objects.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            root / "small.sqlite", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS small (digest TEXT PRIMARY KEY, data BLOB NOT NULL) "
            "WITHOUT ROWID"
        )
        self._lock = threading.Lock()
        self._pending: dict[str, bytes] = {}
        self._pending_bytes = 0

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._db.close()

    def writer(self) -> BlobWriter:
        """A writer that becomes a blob when committed."""
        return BlobWriter(self)

    def put(self, data: bytes) -> tuple[str, int]:
        """Store ``data``; return (digest, size)."""
        with self.writer() as writer:
            writer.write(data)
            return writer.commit()

    def flush(self) -> None:
        """Make every small blob written so far durable."""
        with self._lock:
            if not self._pending:
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR IGNORE INTO small (digest, data) VALUES (?, ?)", self._pending.items()
            )
            self._db.execute("COMMIT")
            self._pending.clear()
            self._pending_bytes = 0

    def _add_small(self, digest: str, data: bytes) -> None:
        with self._lock:
            if digest not in self._pending:
                self._pending[digest] = data
                self._pending_bytes += len(data)
            full = self._pending_bytes >= PENDING_LIMIT
        if full:
            self.flush()

    def _file(self, digest: str) -> Path:
        return self.objects / digest[:2] / digest

    def _small(self, digest: str) -> bytes | None:
        with self._lock:
            if digest in self._pending:
                return self._pending[digest]
            row = self._db.execute("SELECT data FROM small WHERE digest=?", (digest,)).fetchone()
        return None if row is None else row[0]

    def read(self, digest: str, offset: int = 0, chunk: int = READ_CHUNK) -> Iterator[bytes]:
        """Stream a blob's bytes from ``offset``."""
        small = self._small(digest)
        if small is not None:
            for start in range(offset, len(small), chunk):
                yield small[start : start + chunk]
            return
        with open(self._file(digest), "rb") as f:
            f.seek(offset)
            while data := f.read(chunk):
                yield data


class BlobWriter:
    """Buffers bytes while hashing them, spilling to a temporary file past
    :data:`INLINE_LIMIT`; ``commit`` names the blob."""

    def __init__(self, store: BlobStore):
        self._store = store
        self._buffer = bytearray()
        self._file = None
        self._name = ""
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data``."""
        self._hash.update(data)
        self.size += len(data)
        if self._file is None and self.size <= INLINE_LIMIT:
            self._buffer += data
            return
        if self._file is None:
            fd, self._name = tempfile.mkstemp(dir=self._store.tmp)
            self._file = os.fdopen(fd, "wb", buffering=0)
            self._write_all(self._buffer)
            self._buffer = bytearray()
            self._write_all(data)
        else:
            self._write_all(data)

    def _write_all(self, data: bytes | memoryview | bytearray) -> None:
        view = memoryview(data)
        while view:
            view = view[self._file.write(view) :]

    def copy_from(self, digest: str) -> None:
        """Append the contents of an existing blob (used to append to a file)."""
        for data in self._store.read(digest):
            self.write(data)

    def commit(self) -> tuple[str, int]:
        """Finish the blob and store it under its digest; return (digest, size)."""
        digest = self._hash.hexdigest()
        if self._file is None:
            self._store._add_small(digest, bytes(self._buffer))
            self._buffer = bytearray()
            return digest, self.size
        self._file.close()
        self._file = None
        target = self._store._file(digest)
        if target.exists():
            os.unlink(self._name)
        else:
            target.parent.mkdir(exist_ok=True)
            os.replace(self._name, target)
        self._name = ""
        return digest, self.size

    def abort(self) -> None:
        """Drop what was written."""
        self._buffer = bytearray()
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._name:
            os.unlink(self._name)
            self._name = ""

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.abort()
