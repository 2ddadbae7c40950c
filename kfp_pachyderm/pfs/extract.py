"""Writing the files of a GetFileTAR stream under a local directory.

A read of many small files spends its time per file, so each costs as few system calls and as
little Python as it can: a directory is checked and created once, not once per file in it, and
a file is opened with ``O_NOFOLLOW``. Names cannot leave the directory: PFS paths have no
``..`` (:func:`~kfp_pachyderm.pfs.refs.normalize_path`), the archive's own symlinks are not
written, and a symlink already in the directory is followed only where it stays inside.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from kfp_pachyderm.errors import KfpPachydermError
from kfp_pachyderm.pfs.contenthash import TreeDigest, content_hash
from kfp_pachyderm.pfs.diskio import BackgroundWriter, hash_and_write
from kfp_pachyderm.pfs.progress import Progress
from kfp_pachyderm.pfs.refs import normalize_path
from kfp_pachyderm.pfs.tarstream import members

INLINE_FILE_BYTES = 1 << 20  # files up to this size are written on the receiving thread
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


class _NoHash:
    """Stands in for a content hash when no digest is wanted."""

    def update(self, data) -> None:
        pass


class _Destination:
    """Paths under ``root`` for the members of one archive."""

    def __init__(self, root: Path):
        self.root = os.path.realpath(root)
        self._inside = os.path.join(self.root, "")  # what every path under it starts with
        self._made: set[str] = set()

    def directory(self, rel: str) -> str:
        """The directory ``rel`` (``""``: the root), created once it is known to be inside."""
        path = os.path.join(self.root, rel) if rel else self.root
        if rel not in self._made:
            self._check(path, rel)
            os.makedirs(path, exist_ok=True)
            self._made.add(rel)
        return path

    def create_file(self, rel: str) -> int:
        """A descriptor of the file ``rel``, created or truncated, for writing."""
        parent, _, name = rel.rpartition("/")
        path = os.path.join(self.directory(parent), name)
        try:
            return os.open(path, _CREATE | os.O_NOFOLLOW, 0o666)
        except OSError as err:
            if err.errno != errno.ELOOP:
                raise
        self._check(path, rel)  # an existing symlink, written through when inside
        return os.open(path, _CREATE, 0o666)

    def _check(self, path: str, rel: str) -> None:
        resolved = os.path.realpath(path)
        if resolved != self.root and not resolved.startswith(self._inside):
            raise KfpPachydermError(
                f"refusing to write {rel!r} outside {self.root}: a symlink there leads to "
                f"{resolved}"
            )


def extract(
    chunks: Iterator[memoryview],
    root: str,
    dest: Path,
    progress: Progress,
    tree: TreeDigest | None,
    writer: BackgroundWriter,
) -> None:
    """Write the files of a GetFileTAR stream of the PFS path ``root`` under ``dest``, adding
    each to ``tree`` unless it is None: files up to :data:`INLINE_FILE_BYTES` on this thread,
    larger ones written by ``writer`` while this thread hashes them and receives the next
    message."""
    destination = _Destination(dest)
    for member in members(chunks):
        name = normalize_path(member.name)
        if name == root:
            rel = PurePosixPath(root).name if member.is_file else ""
        elif root == "/" or name.startswith(root + "/"):
            rel = name[len(root) :].lstrip("/")
        else:
            continue
        if member.is_dir:
            destination.directory(rel)
            continue
        if not member.is_file:
            continue
        content = content_hash() if tree is not None else _NoHash()
        out = os.fdopen(destination.create_file(rel), "wb", buffering=0)
        if member.size <= INLINE_FILE_BYTES:
            with out:
                for piece in member.body:
                    hash_and_write(out, content, piece)
                    progress.add(len(piece))
        else:
            try:
                for piece in member.body:
                    writer.write(out, piece)
                    content.update(piece)
                    progress.add(len(piece))
            finally:
                writer.close(out)
        if tree is not None:
            tree.add(rel, content.hexdigest())
        progress.add(0, files=1)
