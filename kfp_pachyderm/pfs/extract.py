"""Writing the files of a GetFileTAR stream under a local directory.

A read of many small files spends its time per file, so each costs as few system calls and as
little Python as it can: a directory is checked and created once, not once per file in it, and
a file is opened with ``O_NOFOLLOW``. Names cannot leave the directory: PFS paths have no
``..`` (:func:`~kfp_pachyderm.codec.names.normalize_path`), the archive's own symlinks are not
written, and a symlink already in the directory is followed only where it stays inside.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from kfp_pachyderm.codec.contenthash import TreeDigest, content_hash
from kfp_pachyderm.codec.diskio import BackgroundWriter, hash_and_write
from kfp_pachyderm.codec.names import normalize_path
from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.pfs.progress import Progress
from kfp_pachyderm.pfs.tarstream import members

INLINE_FILE_BYTES = 1 << 20  # files up to this size are written on the receiving thread
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class _NoHash:
    """Stands in for a content hash when no digest is wanted."""

    def update(self, data) -> None:
        pass


def _within(rel: str, directory: str) -> bool:
    """Whether the relative path ``rel`` is ``directory`` or under it (``""``: the root)."""
    return not directory or rel == directory or rel.startswith(directory + "/")


class _Destination:
    """Directories and files under ``root`` for the members of one archive, opened relative to
    their parent directory's descriptor, so a directory checked once cannot be swapped for a
    symlink behind the check. Descriptors are kept for the current directory and its
    ancestors only (an archive lists a directory's files together), and closed by
    :meth:`close`."""

    def __init__(self, root: Path):
        self.root = os.path.realpath(root)
        self._inside = os.path.join(self.root, "")  # what every path under it starts with
        self._open: list[tuple[str, int]] = [("", os.open(self.root, _DIRECTORY))]

    def directory(self, rel: str) -> int:
        """A descriptor of the directory ``rel`` (``""``: the root), made if it is missing."""
        while len(self._open) > 1 and not _within(rel, self._open[-1][0]):
            os.close(self._open.pop()[1])
        opened, fd = self._open[-1]
        rest = rel[len(opened) :].lstrip("/")
        for name in rest.split("/") if rest else []:
            opened = f"{opened}/{name}" if opened else name
            fd = self._child_directory(fd, name, opened)
            self._open.append((opened, fd))
        return fd

    def _child_directory(self, parent: int, name: str, rel: str) -> int:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o777, dir_fd=parent)
        try:
            return os.open(name, _DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
        except OSError as err:  # a symlink is ENOTDIR under O_DIRECTORY
            if err.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
        self._check(rel)  # an existing symlink, followed when it stays inside
        return os.open(os.path.join(self.root, rel), _DIRECTORY)

    def create_file(self, rel: str) -> int:
        """A descriptor of the file ``rel``, created or truncated, for writing."""
        parent, _, name = rel.rpartition("/")
        try:
            return os.open(name, _CREATE | os.O_NOFOLLOW, 0o666, dir_fd=self.directory(parent))
        except OSError as err:
            if err.errno != errno.ELOOP:
                raise
        self._check(rel)  # an existing symlink, written through when it stays inside
        return os.open(os.path.join(self.root, rel), _CREATE, 0o666)

    def _check(self, rel: str) -> None:
        resolved = os.path.realpath(os.path.join(self.root, rel))
        if resolved != self.root and not resolved.startswith(self._inside):
            raise UsageError(
                f"refusing to write {rel!r} outside {self.root}: a symlink there leads to "
                f"{resolved}"
            )

    def close(self) -> None:
        """Close every directory descriptor."""
        while self._open:
            os.close(self._open.pop()[1])


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
    try:
        _extract_members(chunks, root, destination, progress, tree, writer)
    finally:
        destination.close()


def _extract_members(
    chunks: Iterator[memoryview],
    root: str,
    destination: _Destination,
    progress: Progress,
    tree: TreeDigest | None,
    writer: BackgroundWriter,
) -> None:
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
