"""PFS file paths as pachd 2.12 takes them: which paths a write may name, and the clean form
every path is stored and looked up under.

pachd checks the path a client writes or deletes, as sent, with ``ValidateFilename``
(``src/internal/storage/paths.go``), then cleans it; reads and copies only clean it
(``pfsfile.CleanPath``), so ``/a/../b`` reads ``/b`` while writing it fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from kfp_pachyderm.local.store.errors import StoreError

PRINTABLE_ASCII_RE = re.compile(r"[ -~]+")
GLOB_CHARACTER_RE = re.compile(r"[*?\[\]{}!()@+^]")


def clean_path(path: str) -> str:
    """pachd's ``pfsfile.CleanPath``: Go's ``path.Clean`` (``.`` and empty parts dropped,
    ``..`` resolved, never above the root of an absolute path), made absolute."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part != "..":
            parts.append(part)
        elif parts and parts[-1] != "..":
            parts.pop()
        elif not rooted:
            parts.append(part)
    return "/" + "/".join(parts)


def filename_error(path: str) -> str | None:
    """Why pachd's ``ValidateFilename`` refuses ``path`` (its wording), or None."""
    if not PRINTABLE_ASCII_RE.fullmatch(path):
        return f"path ({path}) invalid: only printable ASCII characters allowed"
    glob = GLOB_CHARACTER_RE.search(path)
    if glob:
        return f"path ({path}) invalid: globbing character ({glob[0]}) not allowed in path"
    if any(part in (".", "..") for part in path.split("/")):
        return f"path ({path}) invalid: relative file paths are not allowed"
    return None


def writable_path(path: str) -> str:
    """The clean form of a path a put or delete names; refused as pachd refuses it (gRPC
    status UNKNOWN: pachd returns the validation error without a status code)."""
    error = filename_error(path)
    if error is not None:
        raise StoreError("UNKNOWN", error)
    return clean_path(path)


def path_collision(paths: Iterable[str]) -> str:
    """The error pachd's validation gives a commit whose ``paths`` (in path order) put one
    path both as a file and as a directory (``CheckIndex``,
    src/internal/storage/fileset/validator.go, which compares each path with the one before
    it), or ``""``."""
    previous = None
    for path in paths:
        if previous is not None and path.startswith(previous + "/"):
            return f"file / directory path collision ({path})"
        previous = path
    return ""
