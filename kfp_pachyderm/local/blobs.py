"""Content-addressed storage of file contents for the local Pachyderm server.

Every blob is keyed by its content hash, BLAKE3 (:mod:`~kfp_pachyderm.codec.contenthash`; blobs
written before that are keyed by their SHA-256 and read the same way: a file's row names its
blob). Large blobs are files (``objects/ab/ab12...``), written to a temporary file and renamed
into place, so a reader never sees a partial blob. Small blobs (up to
:data:`INLINE_LIMIT`) live in a SQLite table instead, written in batches: creating one file per
4 KiB object costs more than the network does, and ten thousand small files are a common commit.
A process killed at any moment leaves only temporaries and unreferenced blobs behind; the next
start removes the temporaries.

A blob can also be a *composite*: an ordered list of other blobs, read as their concatenation
(table ``composite`` of ``small.sqlite``; its digest is the SHA-256 of that list, not of the
content). That is how a completed S3 multipart upload becomes a file without its bytes being
written again: each part is *staged* while the upload is in progress (a file under
``uploads/<upload id>/<digest>``, never inline), and :meth:`BlobStore.compose` hard-links the
named parts into ``objects/`` and records the list. A store written before composites existed
has no such table; it is created on open, and every older blob reads as before.

Ordering rule for durability: :meth:`BlobStore.flush` must return before metadata that refers to
a blob is committed. :class:`~kfp_pachyderm.local.store.pfs_store.Store` does that in every
transaction that adds files; :meth:`BlobStore.compose` is durable when it returns.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from kfp_pachyderm.codec.contenthash import content_hash
from kfp_pachyderm.codec.diskio import hash_and_write, write_slices

READ_CHUNK = 4 << 20
INLINE_LIMIT = 64 << 10
PENDING_LIMIT = 8 << 20


class BlobStore:
    """Blobs under ``root``; safe for concurrent writers and readers."""

    def __init__(self, root: Path):
        self.root = root
        self.objects = root / "objects"
        self.tmp = root / "tmp"
        self.staging = root / "uploads"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir(parents=True, exist_ok=True)
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
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS composite (digest TEXT PRIMARY KEY, etag TEXT NOT NULL, "
            "parts TEXT NOT NULL) WITHOUT ROWID"
        )
        self._composites: dict[str, str] = dict(
            self._db.execute("SELECT digest, etag FROM composite").fetchall()
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

    def part_writer(self) -> BlobWriter:
        """A writer for a part of an upload: always a file, finished with
        :meth:`BlobWriter.stage`."""
        return BlobWriter(self, inline=False)

    def _staged(self, upload: str, digest: str) -> Path:
        return self.staging / upload / digest

    def unstage(self, upload: str, digest: str) -> None:
        """Remove one staged part of ``upload`` (a part uploaded again with other bytes)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._staged(upload, digest))

    def drop_staged(self, upload: str) -> None:
        """Remove every staged part of ``upload`` (completed or aborted)."""
        shutil.rmtree(self.staging / upload, ignore_errors=True)

    def sweep_staging(self, live: dict[str, set[str]]) -> None:
        """Remove the staged parts no upload in progress names (``live``: upload -> digests),
        which a process killed between staging a part and recording it leaves behind."""
        for folder in self.staging.iterdir():
            keep = live.get(folder.name)
            if keep is None:
                shutil.rmtree(folder, ignore_errors=True)
                continue
            for staged in folder.iterdir():
                if staged.name not in keep:
                    staged.unlink(missing_ok=True)

    def compose(self, upload: str, parts: list[tuple[str, int]], etag: str) -> tuple[str, int]:
        """One composite blob of the staged ``parts`` (digest, size) of ``upload``, in order,
        without copying bytes: each part becomes a blob (a hard link to its staged file) and
        the composite lists them. ``etag`` is kept as the composite's :meth:`etag`. Returns
        (digest, size); durable on return. Safe to repeat after a failure."""
        for digest, _ in parts:
            self._adopt(upload, digest)
        listing = json.dumps([[digest, size] for digest, size in parts], separators=(",", ":"))
        digest = hashlib.sha256(b"composite\0" + listing.encode()).hexdigest()
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO composite (digest, etag, parts) VALUES (?, ?, ?)",
                (digest, etag, listing),
            )
            self._composites[digest] = etag
        return digest, sum(size for _, size in parts)

    def _adopt(self, upload: str, digest: str) -> None:
        target = self._file(digest)
        if target.exists():
            return
        target.parent.mkdir(exist_ok=True)
        staged = self._staged(upload, digest)
        try:
            os.link(staged, target)
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links: the staged file moves instead
            os.replace(staged, target)

    def etag(self, digest: str) -> str:
        """The ETag the S3 gateway shows for a blob: a composite's own, else the digest."""
        return self._composites.get(digest, digest)

    def read(self, digest: str, offset: int = 0, chunk: int = READ_CHUNK) -> Iterator[bytes]:
        """Stream a blob's bytes from ``offset``."""
        if digest in self._composites:
            with self._lock:
                (listing,) = self._db.execute(
                    "SELECT parts FROM composite WHERE digest=?", (digest,)
                ).fetchone()
            start = 0
            for part, size in json.loads(listing):
                if offset < start + size:
                    yield from self.read(part, max(0, offset - start), chunk)
                start += size
            return
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
    :data:`INLINE_LIMIT` (at once when not ``inline``); ``commit`` names the blob."""

    def __init__(self, store: BlobStore, inline: bool = True):
        self._store = store
        self._inline_limit = INLINE_LIMIT if inline else -1
        self._buffer = bytearray()
        self._file = None
        self._name = ""
        self._hash = content_hash()
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data``; past the inline limit it is hashed and written in cache-sized
        slices (:func:`~kfp_pachyderm.codec.diskio.hash_and_write`)."""
        self.size += len(data)
        if self._file is None and self.size <= self._inline_limit:
            self._hash.update(data)
            self._buffer += data
            return
        if self._file is None:
            self._spill()
        hash_and_write(self._file, self._hash, data)

    def _spill(self) -> None:
        fd, self._name = tempfile.mkstemp(dir=self._store.tmp)
        self._file = os.fdopen(fd, "wb", buffering=0)
        write_slices(self._file, self._buffer)
        self._buffer = bytearray()

    def copy_from(self, digest: str) -> None:
        """Append the contents of an existing blob (used to append to a file)."""
        for data in self._store.read(digest):
            self.write(data)

    def digest(self) -> str:
        """The content hash (hex) of what was written so far."""
        return self._hash.hexdigest()

    def stage(self, upload: str) -> tuple[str, int]:
        """Finish the blob as a staged part of ``upload`` (see :meth:`BlobStore.compose`),
        replacing a staged file of the same digest; return (digest, size)."""
        if self._file is None:
            self._spill()
        self._file.close()
        self._file = None
        digest = self.digest()
        target = self._store._staged(upload, digest)
        target.parent.mkdir(exist_ok=True)
        os.replace(self._name, target)
        self._name = ""
        return digest, self.size

    def commit(self) -> tuple[str, int]:
        """Finish the blob and store it under its digest; return (digest, size)."""
        digest = self.digest()
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
