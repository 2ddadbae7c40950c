"""Content-addressed storage of file contents for the local Pachyderm server.

A blob is stored once under its SHA-256 (``objects/ab/ab12...``), written to a temporary file
first and renamed into place, so a reader never sees a partial blob and a process killed at any
moment leaves only temporaries, which the next start removes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

EMPTY_BLOB = hashlib.sha256(b"").hexdigest()
READ_CHUNK = 4 << 20


class BlobStore:
    """Blobs under ``root``; safe for concurrent writers (rename is atomic, content is keyed)."""

    def __init__(self, root: Path):
        self.root = root
        self.objects = root / "objects"
        self.tmp = root / "tmp"
        self.objects.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.put(b"")

    def path(self, digest: str) -> Path:
        """Where the blob ``digest`` lives."""
        return self.objects / digest[:2] / digest

    def writer(self) -> BlobWriter:
        """A writer that becomes a blob when committed."""
        return BlobWriter(self)

    def put(self, data: bytes) -> tuple[str, int]:
        """Store ``data``; return (digest, size)."""
        with self.writer() as writer:
            writer.write(data)
            return writer.commit()

    def read(self, digest: str, offset: int = 0, chunk: int = READ_CHUNK) -> Iterator[bytes]:
        """Stream a blob's bytes from ``offset``."""
        with open(self.path(digest), "rb") as f:
            f.seek(offset)
            while data := f.read(chunk):
                yield data

    def read_all(self, digest: str) -> bytes:
        """A small blob's bytes."""
        return self.path(digest).read_bytes()


class BlobWriter:
    """Streams bytes into a temporary file while hashing them; ``commit`` names the blob."""

    def __init__(self, store: BlobStore):
        self._store = store
        fd, name = tempfile.mkstemp(dir=store.tmp)
        self._file = os.fdopen(fd, "wb", buffering=0)
        self._name = name
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data``."""
        self._hash.update(data)
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            view = view[written:]
        self.size += len(data)

    def copy_from(self, digest: str) -> None:
        """Append the contents of an existing blob (used to append to a file)."""
        for data in self._store.read(digest):
            self.write(data)

    def commit(self) -> tuple[str, int]:
        """Close, move into the store under its digest; return (digest, size)."""
        self._file.close()
        digest = self._hash.hexdigest()
        target = self._store.path(digest)
        if target.exists():
            os.unlink(self._name)
        else:
            target.parent.mkdir(exist_ok=True)
            os.replace(self._name, target)
        self._name = ""
        return digest, self.size

    def abort(self) -> None:
        """Drop what was written."""
        if self._name:
            self._file.close()
            os.unlink(self._name)
            self._name = ""

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.abort()
