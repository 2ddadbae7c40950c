"""One reproducible image layer from local directories: the same files give the same digest.

Reproducible means every byte of the compressed layer depends only on the files' paths,
contents and executable bits: entries in path order, parents before children; owner 0:0 with
no user or group names; modes 0755 (directories and executables) or 0644; one fixed mtime;
PAX format; and a gzip stream with mtime 0 and no file name.

A layer can also hold a tree a second time without its bytes (``links``): the same
directories, and for each file a tar hard-link entry naming the first copy. KServe's modelcars
read a model at ``/models`` of the image while its servers read ``/mnt/models``; one layer
serves both, as large as it is with one copy.

The gzip stream is written in 1 MiB segments, each deflated on its own (as pigz does, so the
result is one ordinary gzip member). A segment whose first 64 KiB do not deflate to under 90%
is stored rather than deflated: model weights barely compress (about 7%), and deflating them
costs more time than sending them, while the graph and text files still shrink. Segment
boundaries and the choice per segment depend only on the bytes, so the output is reproducible
wherever zlib is the same (deflated segments can differ under zlib-ng; stored ones cannot).

Example:
    >>> layer = build_layer({"/mnt/models": Path("context/model")}, Path("layer.tar.gz"),
    ...                     mtime=1700000000)                                   # doctest: +SKIP
    >>> layer.digest, layer.diff_id, layer.size                                 # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from kfp_pachyderm.errors import UsageError

SEGMENT_BYTES = 1 << 20
PROBE_BYTES = 64 << 10
STORE_ABOVE_RATIO = 0.9
# ID1 ID2, deflate, no flags, mtime 0, no extra flags, OS "unknown": as `gzip -n` would.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


@dataclass(frozen=True)
class Layer:
    """A built layer: the compressed file, its digest and size, and the digest of the
    uncompressed tar (the config's ``diff_id``)."""

    path: Path
    digest: str
    diff_id: str
    size: int


class _Sha256Writer:
    """Hashes and counts what passes through to ``out``; ``tell`` is the count."""

    def __init__(self, out):
        self._out = out
        self.hash = hashlib.sha256()
        self.count = 0

    def write(self, data) -> int:
        self.hash.update(data)
        self.count += len(data)
        self._out.write(data)
        return len(data)

    def tell(self) -> int:
        return self.count

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


class SegmentedGzipWriter:
    """A gzip writer whose output depends only on its input (see the module docstring).

    ``write`` takes bytes; ``close`` finishes the stream (it does not close ``out``).
    """

    def __init__(self, out: BinaryIO, level: int = 6):
        if not 1 <= level <= 9:
            raise UsageError(f"gzip level {level} is out of range 1..9")
        self._out = out
        self._level = level
        self._pending = bytearray()
        self._crc = 0
        self._size = 0
        out.write(_GZIP_HEADER)

    def write(self, data) -> int:
        self._pending += data
        while len(self._pending) >= SEGMENT_BYTES:
            self._segment(bytes(self._pending[:SEGMENT_BYTES]), final=False)
            del self._pending[:SEGMENT_BYTES]
        return len(data)

    def _level_for(self, segment: bytes) -> int:
        probe = segment[:PROBE_BYTES]
        if not probe:
            return 0
        packer = zlib.compressobj(1, zlib.DEFLATED, -15)
        packed = len(packer.compress(probe)) + len(packer.flush())
        return 0 if packed > STORE_ABOVE_RATIO * len(probe) else self._level

    def _segment(self, segment: bytes, final: bool) -> None:
        self._crc = zlib.crc32(segment, self._crc)
        self._size += len(segment)
        packer = zlib.compressobj(self._level_for(segment), zlib.DEFLATED, -15)
        self._out.write(packer.compress(segment))
        self._out.write(packer.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH))

    def close(self) -> None:
        self._segment(bytes(self._pending), final=True)
        self._pending.clear()
        self._out.write(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))


def _entries(trees: Mapping[str, Path]) -> list[tuple[str, Path | None]]:
    """(archive path, local file or None for a directory), parents first, in path order."""
    entries: dict[str, Path | None] = {}
    for dest, source in trees.items():
        root = _root(dest, "layer destination")
        if not Path(source).is_dir():
            raise UsageError(f"layer source {source} is not a directory")
        for parent in reversed(root.parents[:-1]):
            entries[str(parent)[1:]] = None
        entries[str(root)[1:]] = None
        for directory, dirs, files in os.walk(source):
            rel_dir = Path(directory).relative_to(source)
            for name in dirs + files:
                local = Path(directory, name)
                if name.startswith(".wh."):
                    raise UsageError(
                        f"{local}: names starting with '.wh.' mean deletions in image layers"
                    )
                mode = local.lstat().st_mode
                if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                    raise UsageError(
                        f"{local} is neither a regular file nor a directory (links and special "
                        "files are not put into layers)"
                    )
                archive = str(root / PurePosixPath(*rel_dir.parts, name))[1:]
                entries[archive] = None if stat.S_ISDIR(mode) else local
    return sorted(entries.items())


def _root(dest: str, what: str) -> PurePosixPath:
    root = PurePosixPath("/", dest)
    if ".." in root.parts or root == PurePosixPath("/"):
        raise UsageError(f"{what} {dest!r} must be an absolute directory other than /")
    return root


def _link_entries(
    entries: list[tuple[str, Path | None]], trees: Mapping[str, Path], links: Mapping[str, str]
) -> list[tuple[str, str | None]]:
    """(archive path, archive path it hard-links to or None for a directory) for each link
    tree: its parents not already in ``entries``, then the tree in path order."""
    tree_roots = {_root(dest, "layer destination") for dest in trees}
    link_roots = {dest: _root(dest, "layer link") for dest in links}
    names = {name for name, _ in entries}
    found: dict[str, str | None] = {}
    for dest, target in links.items():
        root, source = link_roots[dest], _root(target, "layer link target")
        if source not in tree_roots:
            raise UsageError(
                f"layer link {dest!r} names {target!r}, which is not one of the layer's "
                f"directories ({', '.join(sorted(map(str, tree_roots)))})"
            )
        for other in tree_roots | {r for d, r in link_roots.items() if d != dest}:
            if root == other or root.is_relative_to(other) or other.is_relative_to(root):
                raise UsageError(f"layer link {dest!r} overlaps {str(other)!r}")
        for parent in reversed(root.parents[:-1]):
            if str(parent)[1:] not in names:
                found[str(parent)[1:]] = None
        prefix = str(source)[1:]
        for name, local in entries:
            if name == prefix or name.startswith(prefix + "/"):
                linked = str(root)[1:] + name[len(prefix) :]
                found[linked] = None if local is None else name
    return sorted(found.items())


def _header(name: str, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def build_layer(
    trees: Mapping[str, Path],
    out_path: Path,
    mtime: int,
    level: int = 6,
    links: Mapping[str, str] | None = None,
) -> Layer:
    """Write the layer holding each local directory of ``trees`` at its image path (the key)
    to ``out_path``; every entry gets ``mtime`` (seconds since the epoch).

    ``links`` maps an image directory to one of ``trees``' image paths: it gets the same
    directories, and a hard link to each file (after all of ``trees``' entries, so every
    link's target comes first). Without ``links`` the layer is what it always was.
    """
    if not isinstance(mtime, int) or mtime < 0:
        raise UsageError(f"layer mtime {mtime!r} must be a non-negative integer")
    entries = _entries(trees)
    linked = _link_entries(entries, trees, links or {})
    modes: dict[str, int] = {}
    with open(out_path, "wb") as raw:
        compressed = _Sha256Writer(raw)
        gz = SegmentedGzipWriter(compressed, level)
        uncompressed = _Sha256Writer(gz)
        with tarfile.TarFile(
            fileobj=uncompressed, mode="w", format=tarfile.PAX_FORMAT, copybufsize=1 << 20
        ) as tar:
            for name, local in entries:
                info = _header(name, mtime)
                if local is None:
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
                    continue
                executable = local.stat().st_mode & 0o111
                info.mode = modes[name] = 0o755 if executable else 0o644
                info.size = local.stat().st_size
                with open(local, "rb") as f:
                    tar.addfile(info, f)
            for name, target in linked:
                info = _header(name, mtime)
                if target is None:
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                else:
                    info.type, info.linkname, info.mode = tarfile.LNKTYPE, target, modes[target]
                tar.addfile(info)
        gz.close()
    return Layer(out_path, compressed.digest, uncompressed.digest, compressed.count)
