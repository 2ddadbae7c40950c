"""put_tree and read_tree against the local server, through the SDK client's connection."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path

import pytest
from blake3 import blake3
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm.codec import diskio
from kfp_pachyderm.errors import KfpPachydermError, NotFoundError
from kfp_pachyderm.pfs.commits import ensure_repo, inspect_commit, output_commit
from kfp_pachyderm.pfs.progress import Progress
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.transfer import put_tree, read_tree


def tree(root: Path, spec: dict[str, bytes]) -> Path:
    for rel, data in spec.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def expected_digest(spec: dict[str, bytes]) -> str:
    """A tree digest as documented: BLAKE3 over "<path>\\0<BLAKE3 of its bytes>\\n", sorted."""
    lines = "".join(f"{rel}\0{blake3(spec[rel]).hexdigest()}\n" for rel in sorted(spec))
    return "blake3:" + blake3(lines.encode()).hexdigest()


def test_round_trip_of_a_directory_is_byte_identical(client: Client, tmp_path: Path):
    spec = {"a.txt": b"alpha", "sub/b.bin": os.urandom(3 << 20), "sub/deep/empty": b""}
    src = tree(tmp_path / "src", spec)
    ref = CommitRef.parse("data@master")
    ensure_repo(client, ref)
    with output_commit(client, ref) as out:
        sent = put_tree(client, out.pfs_commit(), src, dest="/in")
    assert (sent.files, sent.bytes) == (3, sum(map(len, spec.values())))

    got = read_tree(client, out.ref.with_path("/in"), tmp_path / "back")
    assert got.digest == sent.digest == expected_digest(spec)
    for rel, data in spec.items():
        assert (tmp_path / "back" / rel).read_bytes() == data
    unhashed = read_tree(client, out.ref.with_path("/in"), tmp_path / "again", digest=False)
    assert (unhashed.files, unhashed.bytes, unhashed.digest) == (3, sent.bytes, "")
    assert (tmp_path / "again" / "sub/b.bin").read_bytes() == spec["sub/b.bin"]
    # the SDK sees the same files
    with client.pfs.pfs_file(pfs.File(commit=out.pfs_commit(), path="/in/sub/b.bin")) as f:
        assert f.read() == spec["sub/b.bin"]


def test_single_file_add_or_replace_and_mirror_semantics(client: Client, tmp_path: Path):
    ref = CommitRef.parse("data@master")
    ensure_repo(client, ref)
    src = tree(tmp_path / "src", {"x.csv": b"1,2\n"})
    with output_commit(client, ref) as first:
        put_tree(client, first.pfs_commit(), src / "x.csv", dest="/tables/t.csv")
        put_tree(client, first.pfs_commit(), src, dest="/keep")
    with output_commit(client, ref) as second:
        put_tree(client, second.pfs_commit(), tree(tmp_path / "v2", {"y.csv": b"3"}), dest="/keep")
    paths = {
        f.file.path
        for f in client.pfs.walk_file(file=pfs.File(commit=second.pfs_commit(), path="/"))
    }
    assert {"/tables/t.csv", "/keep/x.csv", "/keep/y.csv"} <= paths
    with output_commit(client, ref) as third:
        put_tree(client, third.pfs_commit(), tmp_path / "v2", dest="/keep", mirror=True)
    paths = {
        f.file.path
        for f in client.pfs.walk_file(file=pfs.File(commit=third.pfs_commit(), path="/keep"))
    }
    assert paths == {"/keep/", "/keep/y.csv"}
    got = read_tree(client, third.ref.with_path("/tables/t.csv"), tmp_path / "one")
    assert got.files == 1 and (tmp_path / "one" / "t.csv").read_bytes() == b"1,2\n"


def contents(client: Client, ref: CommitRef, dest: Path) -> dict[str, bytes]:
    read_tree(client, ref, dest)
    return {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}


def test_one_changed_file_committed_into_a_repo_of_many_leaves_the_others(
    client: Client, tmp_path: Path
):
    ref = CommitRef.parse("tables@master")
    ensure_repo(client, ref)
    spec = {f"t{i:02d}.csv": f"id,value\n{i},{i * i}\n".encode() for i in range(20)}
    with output_commit(client, ref) as full:
        put_tree(client, full.pfs_commit(), tree(tmp_path / "all", spec))
    changed = tree(tmp_path / "changed", {"t07.csv": b"id,value\n7,-1\n"})
    with output_commit(client, ref) as update:
        sent = put_tree(client, update.pfs_commit(), changed)
    assert (sent.files, sent.bytes) == (1, len(b"id,value\n7,-1\n"))
    assert contents(client, update.ref, tmp_path / "after") == {
        **spec,
        "t07.csv": b"id,value\n7,-1\n",  # replaced, not appended to
    }
    with output_commit(client, ref) as mirrored:
        put_tree(client, mirrored.pfs_commit(), changed, mirror=True)
    assert contents(client, mirrored.ref, tmp_path / "mirrored") == {"t07.csv": b"id,value\n7,-1\n"}
    with output_commit(client, ref, start_empty=True) as empty:
        put_tree(client, empty.pfs_commit(), changed / "t07.csv", dest="/only.csv")
    assert contents(client, empty.ref, tmp_path / "empty") == {"only.csv": b"id,value\n7,-1\n"}


def test_a_failed_upload_changes_nothing_and_the_commit_is_finished_with_the_error(
    client: Client, tmp_path: Path
):
    ref = CommitRef.parse("data@master")
    ensure_repo(client, ref)
    src = tree(tmp_path / "src", {"a": b"a" * 100})
    os.symlink("/proc/self/mem", src / "b")  # a regular file whose read fails (EIO)
    # grpc's Python server may report the client's cancel as a plain end of stream first
    # (about 1 failed stream in 170 was applied in part before the server checked), so fail
    # many streams, not one.
    for _ in range(100):
        with pytest.raises(OSError), output_commit(client, ref) as out:
            put_tree(client, out.pfs_commit(), src)
        info = inspect_commit(client, out.ref)
        assert info.finished.year > 1970 and "Error" in info.error
        assert list(client.pfs.walk_file(file=pfs.File(commit=out.pfs_commit(), path="/"))) == []


def test_a_stream_the_server_cannot_decode_applies_nothing(client: Client):
    import grpc

    from kfp_pachyderm.pfs.transfer import BytesChannel

    ref = CommitRef.parse("data@master")
    ensure_repo(client, ref)
    opened = client.pfs.start_commit(branch=ref.pfs_branch())
    good = pfs.ModifyFileRequest(add_file=pfs.AddFile(path="/good", raw=b"kept?"))
    bad = bytes(pfs.ModifyFileRequest(add_file=pfs.AddFile(path="/bad", raw=b"x")))
    undecodable = bad.replace(b"/bad", b"/\xff\xfe\xfd")  # a path that is not UTF-8
    stream = [bytes(pfs.ModifyFileRequest(set_commit=opened)), bytes(good), undecodable]
    with BytesChannel(client) as channel, pytest.raises(grpc.RpcError):
        channel.modify_file(iter(stream))
    assert list(client.pfs.walk_file(file=pfs.File(commit=opened, path="/"))) == []


def test_bad_sources_and_refs_fail_before_side_effects(client: Client, tmp_path: Path):
    ref = CommitRef.parse("data@master")
    ensure_repo(client, ref)
    bad_source = pytest.raises(KfpPachydermError, match="source path '.*nope' does not exist")
    with output_commit(client, ref) as out, bad_source:
        put_tree(client, out.pfs_commit(), tmp_path / "nope")
    assert inspect_commit(client, out.ref).error == ""
    with pytest.raises(NotFoundError, match="file /missing not found"):
        read_tree(client, out.ref.with_path("/missing"), tmp_path / "x")
    with pytest.raises(NotFoundError, match="repo default/ghost not found"):
        read_tree(client, CommitRef.parse("ghost@master"), tmp_path / "x")


@pytest.mark.parametrize("size", [0, 1, 299, 300, 999, 1000, 1001, 2003])
def test_read_hashed_reads_every_byte_once_after_the_reserved_room(
    tmp_path: Path, monkeypatch, size: int
):
    monkeypatch.setattr(diskio, "SLICE_BYTES", 300)
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    buffer = memoryview(bytearray(b"R" * 7 + bytes(1000)))
    content, got = hashlib.sha256(), b""
    for view, n in diskio.read_hashed(tmp_path / "f", content, buffer, reserve=7):
        assert view[:7] == b"R" * 7 and 0 < n <= 1000
        got += bytes(view[7 : 7 + n])
    assert got == data and content.digest() == hashlib.sha256(data).digest()


def test_the_background_writer_writes_in_order_and_reports_a_failure(tmp_path: Path):
    writer = diskio.BackgroundWriter()
    files = {name: open(tmp_path / name, "wb", buffering=0) for name in ("a", "b")}  # noqa: SIM115
    for i in range(20):
        for name, out in files.items():
            writer.write(out, f"{name}{i},".encode())
    for out in files.values():
        writer.close(out)
    writer.finish()
    assert (tmp_path / "a").read_bytes() == "".join(f"a{i}," for i in range(20)).encode()
    assert all(out.closed for out in files.values())

    failing = diskio.BackgroundWriter()
    read_only = open(tmp_path / "a", "rb", buffering=0)  # noqa: SIM115
    failing.write(read_only, b"x")
    failing.close(read_only)
    with pytest.raises(OSError):
        failing.finish()
    assert read_only.closed


def test_a_write_that_fails_while_reading_fails_the_read(
    client: Client, tmp_path: Path, monkeypatch
):
    ref = CommitRef.parse("data@master")
    ensure_repo(client, ref)
    with output_commit(client, ref) as out:
        put_tree(client, out.pfs_commit(), tree(tmp_path / "src", {"big": os.urandom(3 << 20)}))

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(diskio, "write_slices", disk_full)
    with pytest.raises(OSError, match="No space left"):
        read_tree(client, out.ref, tmp_path / "back")
    assert not any(t.name == "pfs-disk-writer" for t in threading.enumerate())


def test_progress_logs_on_non_terminals_and_draws_a_bar_on_terminals(caplog):
    now = [0.0]
    log_progress = Progress("upload", total_bytes=100, stream=io.StringIO(), clock=lambda: now[0])
    caplog.set_level("INFO")
    for _ in range(10):
        now[0] += 1.0
        log_progress.add(10)
    log_progress.done()
    lines = [r.message for r in caplog.records if r.name == "kfp_pachyderm.pfs.progress"]
    assert len(lines) == 3 and "100 B of 100 B (100%)" in lines[-1]

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    bar = Progress("upload", total_bytes=100, stream=tty, clock=lambda: now[0])
    now[0] += 1
    bar.add(50)
    bar.done()
    assert "[###############...............]" in tty.getvalue() and tty.getvalue().endswith("\n")


def test_a_read_writes_nothing_outside_dest_through_a_symlink(client: Client, tmp_path: Path):
    """A symlink already in ``dest`` is followed only where it stays inside ``dest``; one
    leading out makes the read fail, with nothing written out there."""
    ref = CommitRef.parse("data@master")
    ensure_repo(client, ref)
    src = tree(tmp_path / "src", {"sub/a.txt": b"a", "top.txt": b"t", "in/b.txt": b"b"})
    with output_commit(client, ref) as out:
        put_tree(client, out.pfs_commit(), src)
    outside = tmp_path / "outside"
    outside.mkdir()
    for link, target in (("sub", outside), ("top.txt", outside / "top.txt")):
        dest = tmp_path / f"dest-{link}"
        dest.mkdir()
        (dest / link).symlink_to(target)
        with pytest.raises(KfpPachydermError, match=f"refusing to write '{link}.*outside"):
            read_tree(client, out.ref, dest)
        assert list(outside.iterdir()) == []

    dest = tmp_path / "dest-inside"
    (dest / "real").mkdir(parents=True)
    (dest / "in").symlink_to(dest / "real")
    read_tree(client, out.ref, dest)
    assert (dest / "real" / "b.txt").read_bytes() == b"b"
    assert (dest / "sub" / "a.txt").read_bytes() == b"a"


def _open_files_under(folder: Path) -> list[str]:
    """The files under ``folder`` this process holds a descriptor of (other threads' own
    descriptors, such as the local server's, are not counted)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed since it was listed
            continue
        if target.startswith(str(folder) + os.sep):
            found.append(target)
    return found


def test_a_read_of_nested_directories_writes_every_file_and_leaves_no_descriptor_open(
    client: Client, tmp_path: Path
):
    spec = {
        f"{top}/{mid}/{leaf}": f"{top}{mid}{leaf}".encode()
        for top in ("a", "b", "c")
        for mid in ("x", "x/y", "x/y/z", "w")
        for leaf in ("1.txt", "2.txt")
    }
    spec["top.txt"] = b"t"
    src = tree(tmp_path / "src", spec)
    ref = CommitRef.parse("data@master")
    ensure_repo(client, ref)
    with output_commit(client, ref) as out:
        put_tree(client, out.pfs_commit(), src)
    read_tree(client, out.ref, tmp_path / "back")
    assert _open_files_under(tmp_path / "back") == []
    got = {
        p.relative_to(tmp_path / "back").as_posix(): p.read_bytes()
        for p in (tmp_path / "back").rglob("*")
        if p.is_file()
    }
    assert got == spec
