"""Reading a tar archive from a stream of chunks without copying file bodies.

``tarfile``'s stream mode re-joins its read buffer on every read, which made reading a
GetFileTAR stream slower than the network. Here headers are parsed with ``tarfile.TarInfo``
(ustar, GNU long names and PAX ``path``/``size`` records, as pachd's Go archive/tar writes) and
file bodies are handed out as the slices of the chunks they arrived in.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

BLOCK = tarfile.BLOCKSIZE


class TarFormatError(ValueError):
    """The stream is not a tar archive this reader understands."""


class _Chunks:
    def __init__(self, chunks: Iterator[memoryview | bytes]):
        self._chunks = chunks
        self._current = memoryview(b"")

    def _fill(self) -> bool:
        while not self._current:
            try:
                self._current = memoryview(next(self._chunks))
            except StopIteration:
                return False
        return True

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or fewer only at the end of the stream."""
        parts = []
        while n and self._fill():
            take = self._current[:n]
            parts.append(bytes(take))
            self._current = self._current[len(take) :]
            n -= len(take)
        return b"".join(parts)

    def slices(self, n: int) -> Iterator[memoryview]:
        """``n`` bytes as the slices they arrived in."""
        while n:
            if not self._fill():
                raise TarFormatError(f"tar stream ended {n} bytes before the end of a file")
            take = self._current[:n]
            self._current = self._current[len(take) :]
            n -= len(take)
            yield take


@dataclass
class Member:
    """One entry: its name as archived, kind, size, and its body as slices (files only)."""

    name: str
    is_dir: bool
    is_file: bool
    size: int
    body: Iterator[memoryview]


def _pax_records(data: bytes) -> dict[str, str]:
    records, pos = {}, 0
    while pos < len(data):
        space = data.index(b" ", pos)
        length = int(data[pos:space])
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        records[key.decode()] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


def _padding(size: int) -> int:
    return -size % BLOCK


def members(chunks: Iterator[memoryview | bytes]) -> Iterator[Member]:
    """The members of the tar archive in ``chunks``; consume each body before the next."""
    stream = _Chunks(chunks)
    long_name: str | None = None
    pax: dict[str, str] = {}
    while True:
        header = stream.read(BLOCK)
        if not header or header == bytes(BLOCK):
            return
        if len(header) < BLOCK:
            raise TarFormatError("tar stream ended inside a header")
        try:
            info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
        except tarfile.HeaderError as err:
            raise TarFormatError(f"bad tar header: {err}") from err
        if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME):
            data = stream.read(info.size)
            stream.read(_padding(info.size))
            if info.type == tarfile.GNUTYPE_LONGNAME:
                long_name = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
            elif info.type == tarfile.XHDTYPE:
                pax = _pax_records(data)
            continue
        size = int(pax.get("size", info.size))
        name = pax.get("path") or long_name or info.name
        long_name, pax = None, {}
        body_size = size if info.isfile() else 0
        body = stream.slices(body_size)
        yield Member(name, info.isdir(), info.isfile(), body_size, body)
        for _ in body:
            pass
        stream.read(_padding(body_size))
