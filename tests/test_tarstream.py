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
