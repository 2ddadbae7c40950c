"""An audit of the local server against behaviours pachd 2.12's own server tests state:
writing, reading and deleting files (PutFile, GetFile, InspectFile, DeleteFile, CopyFile).

How the audit works (the Go test each test follows, xfail for a difference): see
``tests/pachd_audit_helpers.py``.
"""

from __future__ import annotations

from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from .pachd_audit_helpers import (
    at,
    branch,
    commit_files,
    fails,
    head,
    ls,
    put,
    read,
    repo,
)


def test_append_and_overwrite(client: Client):
    """TestSimpleFile, TestPutFileCommitOverwrite: an append adds to the parent's file (the
    parent keeps its content); a plain put to a branch head replaces the file."""
    client.pfs.create_repo(repo=repo("test"))
    c1 = client.pfs.start_commit(branch=branch("test"))
    put(client, c1, "foo", b"foo\n", append=True)
    client.pfs.finish_commit(commit=c1)
    c2 = client.pfs.start_commit(branch=branch("test"))
    put(client, c2, "foo", b"foo\n", append=True)
    client.pfs.finish_commit(commit=c2)
    assert read(client, c1, "foo") == b"foo\n"
    assert read(client, c2, "foo") == b"foo\nfoo\n"
    for i in range(5):
        put(client, head("test"), "file", str(i).encode())
    assert read(client, head("test"), "file") == b"4"


def test_get_file_offset_invalid_commit_and_directory(client: Client):
    """TestGetFile: a file reads the same before and after its commit finishes; GetFile with
    an offset returns the rest of the file (empty at its end); a bad commit ID or a
    directory path fails."""
    client.pfs.create_repo(repo=repo("test"))
    commit = client.pfs.start_commit(branch=branch("test"))
    put(client, commit, "dir/file", b"foo\n")
    assert read(client, commit, "dir/file") == b"foo\n"
    client.pfs.finish_commit(commit=commit)
    assert read(client, commit, "dir/file") == b"foo\n"
    for i in range(5):
        assert read(client, commit, "dir/file", offset=i) == b"foo\n"[i:]
    fails(lambda: read(client, at("test", "aninvalidcommitid"), "dir/file"))
    fails(lambda: read(client, commit, "dir"))


def test_inspect_file_size_through_appends_and_delete(client: Client):
    """TestInspectFile, TestInspectFile2: InspectFile gives FILE and the size before and
    after finishing; appends add to it; delete then put in one commit leaves the new data;
    the path is returned absolute."""
    client.pfs.create_repo(repo=repo("test"))
    c1 = client.pfs.start_commit(branch=branch("test"))
    put(client, c1, "file", b"foo\n", append=True)
    for finish in (True, False):
        info = client.pfs.inspect_file(file=pfs.File(commit=c1, path="file"))
        assert (info.file_type, info.size_bytes, info.file.path) == (pfs.FileType.FILE, 4, "/file")
        if finish:
            client.pfs.finish_commit(commit=c1)
    put(client, head("test"), "file", b"foo\n", append=True)
    assert client.pfs.inspect_file(file=pfs.File(commit=head("test"), path="file")).size_bytes == 8
    with client.pfs.commit(branch=branch("test")) as c3:
        c3.delete_file(path="file")
        c3.put_file_from_bytes("file", b"buzz\n", append=True)
    assert client.pfs.inspect_file(file=pfs.File(commit=c3, path="file")).size_bytes == 5


def test_inspect_dir_reports_its_type_size_and_trailing_slash(client: Client):
    """TestInspectDir, TestInspectDir2, TestInspectFile3: a directory inspects as DIR with
    its contents' size and a trailing-slash path; the root does too; a directory is visible
    in an open commit."""
    client.pfs.create_repo(repo=repo("test"))
    c = client.pfs.start_commit(branch=branch("test"))
    put(client, c, "foo/bar", b"foo\n")
    assert (
        client.pfs.inspect_file(file=pfs.File(commit=c, path="foo")).file_type == pfs.FileType.DIR
    )
    client.pfs.finish_commit(commit=c)
    with client.pfs.commit(branch=branch("test")) as c2:
        c2.put_file_from_bytes("dir/1", b"foo\n")
        c2.put_file_from_bytes("dir/2", b"foo\n")
    info = client.pfs.inspect_file(file=pfs.File(commit=c2, path="/dir"))
    assert (info.file.path, info.file_type, info.size_bytes) == ("/dir/", pfs.FileType.DIR, 8)
    root = client.pfs.inspect_file(file=pfs.File(commit=c2, path=""))
    assert (root.file_type, root.size_bytes) == (pfs.FileType.DIR, 12)


def test_delete_file_semantics(client: Client):
    """TestDeleteFile: a file put then deleted in one commit is gone; deleting in a finished
    commit fails; an empty child keeps the files; a later delete removes the file; deleting
    a nonexistent file is a no-op."""
    client.pfs.create_repo(repo=repo("test"))
    with client.pfs.commit(branch=branch("test")) as c1:
        c1.put_file_from_bytes("foo", b"foo\n")
        c1.put_file_from_bytes("bar", b"bar\n")
        c1.delete_file(path="foo")
    assert ls(client, c1) == ["/bar"]
    fails(lambda: client.pfs.inspect_file(file=pfs.File(commit=c1, path="foo")))
    fails(lambda: client.pfs.delete_file(commit=c1, path="bar"))
    c2 = commit_files(client, "test", {})
    assert ls(client, c2) == ["/bar"]
    with client.pfs.commit(branch=branch("test")) as c3:
        c3.delete_file(path="bar")
    assert ls(client, c3) == []
    with client.pfs.commit(branch=branch("test")) as c4:
        c4.delete_file(path="nonexistent")
    assert ls(client, c4) == []


def test_delete_then_put_in_one_commit(client: Client):
    """TestDeleteFile2: delete then put in one commit leaves the new content; put, delete,
    put leaves the last put."""
    client.pfs.create_repo(repo=repo("test"))
    commit_files(client, "test", {"file": b"foo\n"})
    with client.pfs.commit(branch=branch("test")) as c2:
        c2.delete_file(path="file")
        c2.put_file_from_bytes("file", b"bar\n")
    assert read(client, head("test"), "file") == b"bar\n"
    with client.pfs.commit(branch=branch("test")) as c3:
        c3.put_file_from_bytes("file", b"buzz\n")
        c3.delete_file(path="file")
        c3.put_file_from_bytes("file", b"foo\n")
    assert read(client, c3, "file") == b"foo\n"


def test_delete_dir_removes_the_files_under_it(client: Client):
    """TestDeleteDir: deleting ``/dir/`` removes the files under it; the directory no longer
    exists."""
    client.pfs.create_repo(repo=repo("test"))
    with client.pfs.commit(branch=branch("test")) as c1:
        c1.put_file_from_bytes("dir/foo", b"foo1")
        c1.put_file_from_bytes("dir/bar", b"bar1")
        c1.delete_file(path="/dir/")
    assert ls(client, c1) == []
    fails(lambda: client.pfs.inspect_file(file=pfs.File(commit=c1, path="dir")))


def test_put_file_into_finished_commit_fails(client: Client):
    """TestPutFileIntoOpenCommit: a put file to a commit by ID fails once it is finished."""
    client.pfs.create_repo(repo=repo("test"))
    for _ in range(2):
        c = client.pfs.start_commit(branch=branch("test"))
        put(client, c, "foo", b"foo\n")
        client.pfs.finish_commit(commit=c)
        fails(lambda c=c: put(client, at("test", c.id), "foo", b"foo\n"))


def test_put_file_directory_traversal(client: Client):
    """TestPutFileDirectoryTraversal: put file paths ``../foo``, ``foo/../../bar`` and
    ``foo/../bar`` are refused and nothing is written."""
    client.pfs.create_repo(repo=repo("repo"))
    client.pfs.start_commit(branch=branch("repo"))
    for path in ("../foo", "foo/../../bar", "foo/../bar"):
        fails(lambda path=path: put(client, head("repo"), path, b"foo\n"))
    assert ls(client, head("repo"), "") == []


def test_file_and_directory_collision_errors_the_commit(client: Client):
    """TestPutFileValidPaths: a one-off commit writing ``foo/bar`` and ``foo`` finishes with an
    error (a path cannot be both a file and a directory)."""
    client.pfs.create_repo(repo=repo("test"))
    requests = [
        pfs.ModifyFileRequest(set_commit=head("test", "branch-2")),
        pfs.ModifyFileRequest(add_file=pfs.AddFile(path="foo/bar", raw=b"foo\n")),
        pfs.ModifyFileRequest(add_file=pfs.AddFile(path="foo", raw=b"foo\n")),
    ]
    client.pfs.modify_file(iter(requests))
    info = client.pfs.inspect_commit(commit=head("test", "branch-2"), wait=pfs.CommitState.FINISHED)
    assert info.error != ""


def test_put_and_delete_through_the_branch_head(client: Client):
    """TestPutFile: puts addressed to the branch replace the file; a delete then a put leaves
    the new content."""
    client.pfs.create_repo(repo=repo("test"))
    for data in (b"foo", b"bar"):
        put(client, head("test"), "file", data)
        assert read(client, head("test"), "file") == data
    client.pfs.delete_file(commit=head("test"), path="file")
    put(client, head("test"), "file", b"buzz")
    assert read(client, head("test"), "file") == b"buzz"


def test_delete_directory_then_write_into_it(client: Client):
    """TestDeleteFile3: after deleting ``/`` and rewriting, deleting ``/dir1/dir2/`` leaves
    ``/dir1`` and ``/dir1/bar`` and removes the directory and its files; a later put recreates
    it."""
    client.pfs.create_repo(repo=repo("test"))
    commit_files(client, "test", {"/bar": b"bar\n", "/dir1/dir2/bar": b"bar\n"})
    with client.pfs.commit(branch=branch("test")) as c2:
        c2.delete_file(path="/")
        for path in ("/bar", "/dir1/bar", "/dir1/dir2/bar", "/dir1/dir2/barbar"):
            c2.put_file_from_bytes(path, b"bar\n")
    with client.pfs.commit(branch=branch("test")) as c3:
        c3.delete_file(path="/dir1/dir2/")

    def exists(commit: pfs.Commit, path: str) -> bool:
        return client.pfs.path_exists(pfs.File(commit=commit, path=path))

    assert exists(c3, "/dir1") and exists(c3, "/dir1/bar")
    assert not any(exists(c3, p) for p in ("/dir1/dir2", "/dir1/dir2/bar", "/dir1/dir2/barbar"))
    c4 = commit_files(client, "test", {"/dir1/dir2/bar": b"bar\n"})
    assert all(exists(c4, p) for p in ("/dir1", "/dir1/bar", "/dir1/dir2", "/dir1/dir2/bar"))


def test_copy_file_copies_a_dir_a_file_and_the_root(client: Client):
    """TestCopyFile: CopyFile copies a directory, a single file and the whole root (under a
    new prefix) from another commit."""
    client.pfs.create_repo(repo=repo("test"))
    src = commit_files(client, "test", {f"files/{i}": f"foo {i}\n".encode() for i in range(5)})
    with client.pfs.commit(branch=branch("test", "other")) as other:
        other.copy_file(src=pfs.File(commit=src, path="files"), dst="files", append=True)
        other.copy_file(src=pfs.File(commit=src, path="files/0"), dst="file0", append=True)
        other.copy_file(src=pfs.File(commit=src, path="/"), dst="all", append=True)
    for i in range(5):
        assert read(client, other, f"files/{i}") == f"foo {i}\n".encode()
        assert read(client, other, f"all/files/{i}") == f"foo {i}\n".encode()
    assert read(client, other, "file0") == b"foo 0\n"


def test_file_and_directory_at_one_path_is_an_error(client: Client):
    """TestWalkFileInvalid: when a child commit writes ``/a/a`` over the file ``/a``,
    InspectFile and WalkFile of ``/`` fail (a path cannot be both a file and a
    directory)."""
    client.pfs.create_repo(repo=repo("test"))
    commit_files(client, "test", {"/a": b""})
    c2 = client.pfs.start_commit(branch=branch("test"))
    put(client, c2, "/a/a", b"")
    fails(lambda: client.pfs.inspect_file(file=pfs.File(commit=c2, path="/")))
    fails(lambda: client.pfs.walk_file(file=pfs.File(commit=c2, path="/")))
