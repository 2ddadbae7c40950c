"""The tar stream reader agrees with tarfile on what tarfile writes, in every header format."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from kfp_pachyderm.pfs.tarstream import TarFormatError, members


def archive(entries: dict[str, bytes | None], fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def chunked(data: bytes, size: int):
    return (memoryview(data)[i : i + size] for i in range(0, len(data), size))


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
@pytest.mark.parametrize("chunk", [1, 511, 512, 4096, 1 << 20])
def test_members_match_what_tarfile_wrote(fmt, chunk):
    long = "/deep/" + "x" * 120 + "/file.bin" if fmt != tarfile.USTAR_FORMAT else "/deep/f.bin"
    entries = {"/dir/": None, "/dir/a.txt": b"alpha", "/empty": b"", long: os.urandom(3000)}
    got = {}
    for m in members(chunked(archive(entries, fmt), chunk)):
        got[m.name] = b"".join(bytes(p) for p in m.body) if m.is_file else None
    assert got == {
        name.rstrip("/") if data is None else name: data for name, data in entries.items()
    }


def test_unread_bodies_are_skipped():
    data = archive({"/a": b"1" * 1000, "/b": b"2"}, tarfile.PAX_FORMAT)
    assert [m.name for m in members(chunked(data, 100))] == ["/a", "/b"]


def test_truncated_stream_is_an_error():
    data = archive({"/a": b"1" * 1000}, tarfile.PAX_FORMAT)[:700]
    with pytest.raises(TarFormatError, match="ended"):
        for m in members(chunked(data, 100)):
            list(m.body)


def test_a_ustar_name_split_into_prefix_and_name_is_joined():
    name = "/" + "/".join(["p" * 60, "q" * 60, "file.bin"])
    data = archive({name: b"body"}, tarfile.USTAR_FORMAT)
    assert data[345:500].strip(b"\0")  # tarfile did use the prefix field
    assert [(m.name, b"".join(m.body)) for m in members(chunked(data, 512))] == [(name, b"body")]


def test_a_header_with_a_wrong_checksum_is_an_error():
    data = bytearray(archive({"/a": b"1"}, tarfile.PAX_FORMAT))
    data[0:2] = b"/b"  # the name changes, the checksum field does not
    with pytest.raises(TarFormatError, match="checksum"):
        list(members(chunked(bytes(data), 512)))


def header_block(name: bytes, size_field: bytes, kind: bytes, prefix: bytes = b"") -> bytes:
    """A POSIX ustar header written by hand, with a signed checksum as old Sun tars wrote it."""
    block = bytearray(512)
    block[0 : len(name)] = name
    block[124:136] = size_field
    block[156:157] = kind
    block[257:265] = b"ustar\x0000"
    block[345 : 345 + len(prefix)] = prefix
    block[148:156] = b" " * 8
    signed = sum(b - 256 if b > 127 else b for b in block)
    block[148:156] = b"%06o\0 " % signed
    return bytes(block)


@pytest.mark.parametrize(
    "name, size_field, kind, prefix",
    [
        ("café.txt".encode(), b"00000000004\0", b"0", b""),  # a signed checksum
        (b"a.txt", b"0000004\0zzzz", b"0", b""),  # bytes after the number's NUL
        (b"", b"00000000000\0", b"\0", b"pre"),  # an empty name under a prefix
    ],
)
def test_unusual_headers_read_as_tarfile_reads_them(name, size_field, kind, prefix):
    header = header_block(name, size_field, kind, prefix)
    expected = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
    body = b"body" if expected.isfile() and expected.size else b""
    data = header + body.ljust(512, b"\0") * bool(body) + bytes(1024)
    got = [(m.name, m.is_dir, m.is_file, m.size) for m in members(chunked(data, 512))]
    assert got == [(expected.name, expected.isdir(), expected.isfile(), expected.size)]
