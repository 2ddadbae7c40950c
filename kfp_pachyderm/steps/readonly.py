"""A datum's input directories, read-only while the step function runs.

A write into an input would be lost (only the output directory becomes the output commit), so
it fails the datum, naming the path. The input trees lose their write bits during the call (a
user other than root then fails at the write itself), and since root writes anyway, a snapshot
of each tree (stat only: type, size, mtime, inode) taken before the call is compared with the
tree after it. The files' mtimes are set one second back first, so a rewrite of the same size
within one tick of the clock still shows.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
_REFUSED_WRITE = (errno.EACCES, errno.EPERM, errno.EROFS)


def _scan(root: Path) -> dict[str, os.stat_result]:
    """Every entry under ``root`` (not following links), by its path from ``root``."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            found["/" + path.relative_to(root).as_posix()] = path.lstat()
    return found


def _fingerprint(entry: os.stat_result) -> tuple[int, ...]:
    kind = stat.S_IFMT(entry.st_mode)
    if kind == stat.S_IFDIR:  # its mtime moves with its entries, which are compared themselves
        return (kind, entry.st_ino)
    return (kind, entry.st_size, entry.st_mtime_ns, entry.st_ino)


def _freeze(root: Path) -> dict[str, os.stat_result]:
    """Take the write bits off ``root`` and everything under it, and set each file's mtime
    one second back (so a rewrite of the same size within one tick of the clock still moves
    it); return the entries as they were, to restore their modes."""
    original = {"": root.lstat(), **_scan(root)}
    for relative, entry in original.items():
        if stat.S_ISLNK(entry.st_mode):
            continue
        path = root / relative.lstrip("/")
        if stat.S_ISREG(entry.st_mode):
            os.utime(path, ns=(entry.st_atime_ns, entry.st_mtime_ns - 1_000_000_000))
        os.chmod(path, stat.S_IMODE(entry.st_mode) & ~_WRITE_BITS)
    return original


def _thaw(root: Path, original: dict[str, os.stat_result]) -> None:
    """Give back the modes :func:`_freeze` took, to whatever of the tree is still there."""
    for relative, entry in original.items():
        path = root / relative.lstrip("/")
        if stat.S_ISLNK(entry.st_mode):
            continue
        # gone (removed by the step) or now a link: either is reported from the snapshot
        with contextlib.suppress(FileNotFoundError, NotImplementedError):
            os.chmod(path, stat.S_IMODE(entry.st_mode), follow_symlinks=False)


def _first_change(before: dict[str, os.stat_result], after: dict[str, os.stat_result]) -> str:
    """The first path (in path order) added, removed or changed, and how; empty if none."""
    for path in sorted(before.keys() | after.keys()):
        if path not in after:
            return f"{path} was removed"
        if path not in before:
            return f"{path} was added"
        if _fingerprint(before[path]) != _fingerprint(after[path]):
            return f"{path} was changed"
    return ""


def _refused_input_write(err: Exception | None, roots: dict[str, Path]) -> str:
    """``input: /path`` when ``err`` is the OS refusing a write under an input (the step ran
    as a user whom the missing write bits stop); empty otherwise."""
    if not isinstance(err, OSError) or err.errno not in _REFUSED_WRITE or not err.filename:
        return ""
    target = Path(os.fsdecode(err.filename))
    for name, root in roots.items():
        if target.is_relative_to(root):
            return f"{name}: /{target.relative_to(root).as_posix()}"
    return ""


class ReadOnlyInputs:
    """While the block runs, the input trees ``roots`` (input name to directory) are
    read-only; afterwards :meth:`first_write` names the first write into one."""

    def __init__(self, roots: dict[str, Path]):
        self.roots = roots
        self._original: dict[str, dict[str, os.stat_result]] = {}
        self._before: dict[str, dict[str, os.stat_result]] = {}

    def __enter__(self) -> ReadOnlyInputs:
        self._original = {name: _freeze(root) for name, root in self.roots.items()}
        self._before = {name: _scan(root) for name, root in self.roots.items()}
        return self

    def __exit__(self, *exc: object) -> None:
        for name, root in self.roots.items():
            _thaw(root, self._original[name])

    def first_write(self, failure: Exception | None = None) -> str:
        """``input: /path was added`` (or removed, or changed) for the first write into an
        input, or the write the OS refused that raised ``failure``; empty when none."""
        for name, root in self.roots.items():
            if change := _first_change(self._before[name], _scan(root)):
                return f"{name}: {change}"
        return _refused_input_write(failure, self.roots)
