"""The local server answers as pachd 2.12 does where pachd's own source says how.

Each test names what it follows in pachd's source (github.com/pachyderm/pachyderm, branch
2.12.x) and runs the real ``pachyderm_sdk`` client, or real boto3 for the S3 gateway, against
the real local server.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import boto3
import grpc
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm.local.server import LocalPachyderm
from kfp_pachyderm.pfs.commits import ensure_branch, ensure_repo, output_commit
from kfp_pachyderm.pfs.refs import CommitRef

from .conftest import ready_client


def unknown_error(call: Callable[[], object]) -> str:
    """The details of the UNKNOWN status ``call`` fails with (pachd's code for an error it
    returns without a status)."""
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() == grpc.StatusCode.UNKNOWN, err.value.details()
    return err.value.details()


def paths(client: Client, commit: pfs.Commit) -> list[str]:
    return [
        info.file.path
        for info in client.pfs.walk_file(file=pfs.File(commit=commit, path="/"))
        if info.file_type == pfs.FileType.FILE
    ]


def read(client: Client, commit: pfs.Commit, path: str) -> bytes:
    with client.pfs.pfs_file(pfs.File(commit=commit, path=path)) as f:
        return f.read()


def test_branch_named_like_a_commit_id_is_refused(client: Client):
    """pachd refuses a branch name that is a UUID v4 without dashes, since ``repo@<id>`` would
    read as a commit: ``pfsdb.UpsertBranch`` (src/internal/pfsdb/branches.go) checks
    ``uuid.IsUUIDWithoutDashes`` (src/internal/uuid/uuid.go, ``^[0-9a-f]{12}4[0-9a-f]{19}$``)
    and returns "branch name cannot be a UUID V4" with no status code (UNKNOWN), wrapped by
    the RPC's callers (server_branch.go, server_commit.go, server_file.go). pachd's test:
    TestCreateInvalidBranchName (src/server/pfs/server/testing/server_test.go)."""
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    name = uuid.uuid4().hex
    as_branch = pfs.Branch.from_uri(f"data@{name}")
    assert unknown_error(lambda: client.pfs.create_branch(branch=as_branch)) == (
        "create branch: update head: branch name cannot be a UUID V4"
    )
    assert unknown_error(lambda: client.pfs.start_commit(branch=as_branch)) == (
        "start commit in transaction: create commit: create commit: update head: "
        "branch name cannot be a UUID V4"
    )
    one_off = pfs.Commit(branch=as_branch)
    assert unknown_error(
        lambda: client.pfs.put_file_from_bytes(commit=one_off, path="/f", data=b"x")
    ) == ("create commit: create commit: update head: branch name cannot be a UUID V4")
    assert list(client.pfs.list_branch(repo=pfs.Repo(name="data"))) == []
    assert list(client.pfs.list_commit(repo=pfs.Repo(name="data"))) == []
    not_v4 = name[:12] + "0" + name[13:]
    upper = (name[:12] + "4" + name[13:]).upper()
    for ordinary in (not_v4, upper):
        client.pfs.create_branch(branch=pfs.Branch.from_uri(f"data@{ordinary}"))
    names = {b.branch.name for b in client.pfs.list_branch(repo=pfs.Repo(name="data"))}
    assert names == {not_v4, upper}


def test_put_file_valid_characters(client: Client):
    """pachd's ``ValidateFilename`` (src/internal/storage/paths.go) refuses a written path
    that is not all printable ASCII (``^[ -~]+$``: control characters, DEL and any non-ASCII
    character) or that holds a glob character (``[*?[\\]{}!()@+^]``), with no status code
    (UNKNOWN). These are the cases of pachd's TestPutFileValidCharacters
    (src/server/pfs/server/testing/server_test.go), plus every glob character, non-ASCII
    names and deletes (``UnorderedWriter.Delete`` validates too)."""
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    commit = client.pfs.start_commit(branch=pfs.Branch.from_uri("data@master"))

    def put(path: str) -> object:
        return client.pfs.put_file_from_bytes(commit=commit, path=path, data=b"foobar\n")

    for path in ("foo\x00bar", "\x1ffoobar", "foo\x7fbar", "foobar\x0b", "caf\u00e9", "\u00fc/x"):
        assert unknown_error(lambda path=path: put(path)) == (
            f"path ({path}) invalid: only printable ASCII characters allowed"
        )
    for glob in "*?[]{}!()@+^":
        path = f"/foobar{glob}"
        assert unknown_error(lambda path=path: put(path)) == (
            f"path ({path}) invalid: globbing character ({glob}) not allowed in path"
        )
    for path in ("foo\x20bar", "foobar\x7e", "\x41foobar", "/a-b_c.d,e;f=g&h#i%j$k'l"):
        put(path)
    assert unknown_error(lambda: client.pfs.delete_file(commit=commit, path="/foobar*")) == (
        "path (/foobar*) invalid: globbing character (*) not allowed in path"
    )
    assert sorted(paths(client, commit)) == [
        "/Afoobar",
        "/a-b_c.d,e;f=g&h#i%j$k'l",
        "/foo bar",
        "/foobar~",
    ]


def test_relative_paths_are_refused_on_write_and_cleaned_on_read_and_copy(client: Client):
    """pachd refuses a put or delete whose path, as sent, has a ``.`` or ``..`` part
    (``ValidateFilename``, src/internal/storage/paths.go), and the stream writes nothing:
    TestPutFileDirectoryTraversal (src/server/pfs/server/testing/server_test.go). Reads and
    the destination of a copy are only cleaned with ``pfsfile.CleanPath`` (``path.Clean``,
    src/internal/pfsfile/pfsfile.go; ``inspectFile`` and ``copyFile`` in
    src/server/pfs/server/server_file.go), and ``copyFile`` does not validate its
    destination: the UnorderedWriter validates only Put and Delete
    (src/internal/storage/fileset/unordered_writer.go)."""
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    commit = client.pfs.start_commit(branch=pfs.Branch.from_uri("data@master"))
    for path in ("../foo", "foo/../../bar", "foo/../bar", "/a/./b", "/a/b/.", "./a"):
        assert unknown_error(
            lambda path=path: client.pfs.put_file_from_bytes(commit=commit, path=path, data=b"x")
        ) == (f"path ({path}) invalid: relative file paths are not allowed")
    assert paths(client, commit) == []
    client.pfs.put_file_from_bytes(commit=commit, path="//a//b/", data=b"ab")
    assert paths(client, commit) == ["/a/b"]
    assert unknown_error(lambda: client.pfs.delete_file(commit=commit, path="/a/./b")) == (
        "path (/a/./b) invalid: relative file paths are not allowed"
    )
    info = client.pfs.inspect_file(file=pfs.File(commit=commit, path="/x/../a/./b"))
    assert info.file.path == "/a/b"
    assert read(client, commit, "/a/c/../b") == b"ab"
    source = pfs.File(commit=commit, path="/a/b")
    client.pfs.copy_file(commit=commit, src=source, dst="/x/../copied")
    client.pfs.copy_file(commit=commit, src=source, dst="/copy (1)")
    assert sorted(paths(client, commit)) == ["/a/b", "/copied", "/copy (1)"]
    assert read(client, commit, "/copy (1)") == b"ab"


@pytest.mark.slow
def test_started_commit_stays_open_across_sigkill(server_process):
    """pachd keeps a started commit in PostgreSQL and, after a restart, finishes only commits
    a client asked to finish: the master's ``postProcessCommit``
    (src/server/pfs/server/master.go) skips any commit whose ``Finishing`` is unset. A
    ModifyFile stream's file set joins the commit only once the whole stream has been read
    (``withCommitUnorderedWriter``, src/server/pfs/server/server_file.go), so a stream cut
    by the crash adds nothing."""
    server = server_process()
    client = Client.from_pachd_address(server.address)
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    commit = client.pfs.start_commit(branch=pfs.Branch.from_uri("data@master"))
    client.pfs.put_file_from_bytes(commit=commit, path="/kept", data=b"kept")
    sent, release, failures = threading.Event(), threading.Event(), []

    def half_stream():
        yield pfs.ModifyFileRequest(set_commit=commit)
        yield pfs.ModifyFileRequest(add_file=pfs.AddFile(path="/half", raw=b"h" * 100_000))
        sent.set()
        release.wait(timeout=60)

    def write() -> None:
        try:
            client.pfs.modify_file(half_stream())
        except grpc.RpcError as err:
            failures.append(err)

    writer = threading.Thread(target=write)
    writer.start()
    assert sent.wait(timeout=30)
    time.sleep(0.5)
    server.kill()
    release.set()
    writer.join(timeout=30)
    assert failures

    restarted = server_process(data_dir=server.data_dir, port=server.port)
    client = ready_client(restarted.address)
    info = client.pfs.inspect_commit(commit=commit)
    assert info.finished.year == 1970, "the started commit was finished by the restart"
    assert paths(client, commit) == ["/kept"]
    client.pfs.put_file_from_bytes(commit=commit, path="/after", data=b"after")
    client.pfs.finish_commit(commit=commit)
    info = client.pfs.inspect_commit(commit=commit, wait=pfs.CommitState.FINISHED)
    assert info.finished.year > 1970
    assert sorted(paths(client, commit)) == ["/after", "/kept"]


@pytest.fixture
def s3_server(tmp_path: Path):
    with LocalPachyderm(tmp_path / "pfs", s3_port=0) as srv:
        yield srv


@pytest.fixture
def s3(s3_server: LocalPachyderm):
    """Real boto3, path-style, against the gateway; no retries, so errors show at once."""
    return boto3.client(
        "s3",
        endpoint_url=s3_server.s3_endpoint,
        aws_access_key_id="any",
        aws_secret_access_key="any",
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


@pytest.fixture
def pach(s3_server: LocalPachyderm) -> Client:
    return Client.from_pachd_address(s3_server.address)


def s3_error(call: Callable[[], object]) -> tuple[str, int]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["ResponseMetadata"][
        "HTTPStatusCode"
    ]


def test_s3_refuses_file_paths_pachd_refuses(s3, pach: Client):
    """pachd's gateway answers a PutObject whose key ``ValidateFilename`` refuses with 400
    InvalidFilePath "Invalid file path" (``PutObject``, src/server/pfs/s3/object.go;
    ``invalidFilePathError``, src/server/pfs/s3/error.go; ``errutil.IsInvalidPathError``).
    Multipart uploads and deletes of such keys fail in pachd too (its multipart ``.keep``
    file and DeleteFile are validated), there as 500 InternalError; the local gateway
    answers InvalidFilePath for them as well, per key in DeleteObjects as s2 reports
    per-key failures."""
    s3.create_bucket(Bucket="data")
    for key in ("a*b", "na\u00efve.txt", "tab\there", "x/(1)", "v@2", "a+b"):
        assert s3_error(lambda key=key: s3.put_object(Bucket="data", Key=key, Body=b"x")) == (
            "InvalidFilePath",
            400,
        )
    assert s3_error(lambda: s3.create_multipart_upload(Bucket="data", Key="big[0]")) == (
        "InvalidFilePath",
        400,
    )
    assert s3_error(lambda: s3.delete_object(Bucket="data", Key="a*b")) == ("InvalidFilePath", 400)
    s3.put_object(Bucket="data", Key="ok", Body=b"x")
    result = s3.delete_objects(Bucket="data", Delete={"Objects": [{"Key": "ok"}, {"Key": "a?b"}]})
    assert [d["Key"] for d in result["Deleted"]] == ["ok"]
    assert [(e["Key"], e["Code"]) for e in result["Errors"]] == [("a?b", "InvalidFilePath")]
    master = pfs.Commit(branch=pfs.Branch.from_uri("data@master"))
    assert paths(pach, master) == []


def test_s3_copy_object(s3, pach: Client):
    """pachd's gateway copies objects: the s2 copy handler pachd pins (pachyderm/s2
    e4a20345d93c, ``objectHandler.copy`` in object.go) reads ``x-amz-copy-source`` (``/bucket/
    key`` or ``bucket/key``, split in at most three parts, so without the leading slash a key
    may not hold ``/``; ``?versionId=``), refuses a copy onto itself without a version
    (InvalidRequest), checks ``x-amz-copy-source-if-*`` (PreconditionFailed), and pachd's
    ``CopyObject`` (src/server/pfs/s3/object.go) does a CopyFile from the source bucket's commit
    into any writable bucket, same or other repo, branch or open commit."""
    s3.create_bucket(Bucket="data")
    v1 = s3.put_object(Bucket="data", Key="f", Body=b"one")["VersionId"]
    put = s3.put_object(Bucket="data", Key="f", Body=b"two")
    before = len(list(pach.pfs.list_commit(repo=pfs.Repo(name="data"))))

    copied = s3.copy_object(Bucket="data", Key="g", CopySource="data/f")
    assert copied["CopyObjectResult"]["ETag"] == put["ETag"]
    assert s3.get_object(Bucket="data", Key="g")["Body"].read() == b"two"
    assert len(list(pach.pfs.list_commit(repo=pfs.Repo(name="data")))) == before + 1
    head = pfs.Commit(repo=pfs.Repo(name="data"), id=copied["VersionId"])
    assert sorted(paths(pach, head)) == ["/f", "/g"]

    restored = s3.copy_object(
        Bucket="data", Key="f", CopySource={"Bucket": "data", "Key": "f", "VersionId": v1}
    )
    assert restored["CopySourceVersionId"] == v1
    assert s3.get_object(Bucket="data", Key="f")["Body"].read() == b"one"

    s3.create_bucket(Bucket="dev.data")
    s3.create_bucket(Bucket="other")
    s3.copy_object(Bucket="dev.data", Key="from-master", CopySource="data/g")
    s3.copy_object(Bucket="other", Key="deep/copy", CopySource="/dev.data/from-master")
    assert s3.get_object(Bucket="other", Key="deep/copy")["Body"].read() == b"two"
    s3.copy_object(Bucket="data", Key="flat", CopySource="/other/deep/copy")
    assert s3_error(
        lambda: s3.copy_object(
            Bucket="data", Key="x", CopySource={"Bucket": "other", "Key": "deep/copy"}
        )
    ) == ("InvalidArgument", 400)

    assert s3_error(lambda: s3.copy_object(Bucket="data", Key="f", CopySource="data/f")) == (
        "InvalidRequest",
        400,
    )
    assert s3_error(lambda: s3.copy_object(Bucket="data", Key="x", CopySource="data/nope")) == (
        "NoSuchKey",
        404,
    )
    assert s3_error(lambda: s3.copy_object(Bucket="data", Key="x", CopySource="ghost/f")) == (
        "NoSuchBucket",
        404,
    )
    assert s3_error(lambda: s3.copy_object(Bucket="nob.data", Key="x", CopySource="data/f")) == (
        "NoSuchBucket",
        404,
    )
    for condition in (
        {"CopySourceIfMatch": '"0000"'},
        {"CopySourceIfNoneMatch": copied["CopyObjectResult"]["ETag"]},
        {"CopySourceIfUnmodifiedSince": "Sat, 01 Jan 2000 00:00:00 GMT"},
        {"CopySourceIfModifiedSince": "Fri, 01 Jan 2100 00:00:00 GMT"},
    ):
        assert s3_error(
            lambda condition=condition: s3.copy_object(
                Bucket="data", Key="x", CopySource="data/g", **condition
            )
        ) == ("PreconditionFailed", 412)

    s3.copy_object(Bucket="data", Key="copy (1)", CopySource="data/g")
    assert s3_error(lambda: s3.put_object(Bucket="data", Key="copy (2)", Body=b"")) == (
        "InvalidFilePath",
        400,
    )

    open_commit = pach.pfs.start_commit(branch=pfs.Branch.from_uri("data@master"))
    into_open = s3.copy_object(
        Bucket=f"{open_commit.id}.master.data", Key="in-open", CopySource="data/g"
    )
    assert into_open["VersionId"] == open_commit.id
    pach.pfs.finish_commit(commit=open_commit)
    assert s3_error(
        lambda: s3.copy_object(
            Bucket=f"{open_commit.id}.master.data", Key="late", CopySource="data/g"
        )
    ) == ("InvalidBucketState", 409)


def head(client: Client, uri: str) -> pfs.CommitInfo:
    return client.pfs.inspect_commit(commit=pfs.Commit(branch=pfs.Branch.from_uri(uri)))


def commit_ids(client: Client, repo: str) -> list[str]:
    return [c.commit.id for c in client.pfs.list_commit(repo=pfs.Repo(name=repo))]


def test_create_branch_with_provenance_leaves_its_new_head_open(client: Client):
    """pachd's ``createBranch`` (src/server/pfs/server/server_branch.go) makes a new head with
    ``makeEmptyCommit`` (server_commit.go) when the branch has no head, or when its provenance
    changes to a non-empty one (not when it is set again unchanged, nor when it is removed):
    origin AUTO, parent the current head, direct provenance the provenance branches' heads,
    finished only without provenance. An upstream commit then opens a commit whose parent is
    that open head and leaves the head open (``propagateBranches``, server_branch.go). pachd's
    tests: TestToggleBranchProvenance, TestUpdateBranchNewOutputCommit (server_test.go)."""
    for name in ("in", "in2", "out"):
        client.pfs.create_repo(repo=pfs.Repo(name=name))
    client.pfs.create_branch(branch=pfs.Branch.from_uri("in@master"))
    upstream = head(client, "in@master")
    assert upstream.finished.year > 1970 and upstream.origin.kind == pfs.OriginKind.AUTO
    prov = [pfs.Branch.from_uri("in@master")]
    client.pfs.create_branch(branch=pfs.Branch.from_uri("out@master"), provenance=prov)
    empty = head(client, "out@master")
    assert empty.finished.year == 1970 and empty.origin.kind == pfs.OriginKind.AUTO
    assert not empty.parent_commit or not empty.parent_commit.id
    assert [c.id for c in empty.direct_provenance] == [upstream.commit.id]
    client.pfs.create_branch(branch=pfs.Branch.from_uri("out@master"), provenance=prov)
    assert commit_ids(client, "out") == [empty.commit.id]

    with client.pfs.commit(branch=pfs.Branch.from_uri("in@master")) as written:
        written.put_file_from_bytes("/x", b"1")
    propagated = head(client, "out@master")
    assert propagated.commit.id == written.id and propagated.parent_commit.id == empty.commit.id
    assert client.pfs.inspect_commit(commit=empty.commit).finished.year == 1970
    client.pfs.finish_commit(commit=propagated.commit)
    client.pfs.finish_commit(commit=empty.commit)

    other = [pfs.Branch.from_uri("in2@master")]
    client.pfs.create_branch(branch=pfs.Branch.from_uri("out@master"), provenance=other)
    changed = head(client, "out@master")
    assert changed.finished.year == 1970 and changed.parent_commit.id == written.id
    client.pfs.finish_commit(commit=changed.commit)
    client.pfs.create_branch(branch=pfs.Branch.from_uri("out@master"), new_commit_set=True)
    assert head(client, "out@master").commit.id == changed.commit.id
    assert len(commit_ids(client, "out")) == 3


def test_create_branch_with_head_and_new_provenance_adds_a_commit_on_that_head(client: Client):
    """With a head and a changed provenance, pachd's ``createBranch`` still makes the new
    empty commit, its parent the given head (server_branch.go; TestRecreateBranchProvenance,
    server_test.go). pachd refuses a provenance branch in the branch's own repo, with no
    status code: "repo ... cannot be in the provenance of its own branch" (server_branch.go)."""
    for name in ("in", "out"):
        client.pfs.create_repo(repo=pfs.Repo(name=name))
    with client.pfs.commit(branch=pfs.Branch.from_uri("out@side")) as side:
        pass
    client.pfs.create_branch(
        branch=pfs.Branch.from_uri("out@master"),
        head=pfs.Commit(repo=pfs.Repo(name="out"), id=side.id),
        provenance=[pfs.Branch.from_uri("in@master")],
    )
    info = head(client, "out@master")
    assert info.commit.id != side.id and info.parent_commit.id == side.id
    assert info.finished.year == 1970
    assert unknown_error(
        lambda: client.pfs.create_branch(
            branch=pfs.Branch.from_uri("out@dev"), provenance=[pfs.Branch.from_uri("out@side")]
        )
    ) == ("repo default/out cannot be in the provenance of its own branch")


def test_create_branch_creates_missing_provenance_branches(client: Client):
    """pachd's ``fillNewBranches`` (src/server/pfs/server/server_branch.go) creates each
    provenance branch that does not exist yet, its head a finished empty commit (origin AUTO,
    no parent) of the same transaction, so with the same ID as the new branch's head; the
    repo must exist (``pfsdb.CreateCommit`` fails with the repo not found). pachd's tests:
    TestToggleBranchProvenance, TestProvenance via ``createProvenantRepos`` (server_test.go)."""
    for name in ("in", "out"):
        client.pfs.create_repo(repo=pfs.Repo(name=name))
    client.pfs.create_branch(
        branch=pfs.Branch.from_uri("out@master"), provenance=[pfs.Branch.from_uri("in@master")]
    )
    filled, out = head(client, "in@master"), head(client, "out@master")
    assert filled.finished.year > 1970 and filled.origin.kind == pfs.OriginKind.AUTO
    assert not filled.parent_commit or not filled.parent_commit.id
    assert filled.commit.id == out.commit.id
    assert [c.id for c in out.direct_provenance] == [filled.commit.id]
    with pytest.raises(grpc.RpcError) as err:
        client.pfs.create_branch(
            branch=pfs.Branch.from_uri("out@dev"), provenance=[pfs.Branch.from_uri("nope@master")]
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "out@dev" not in {
        str(b.branch) for b in client.pfs.list_branch(repo=pfs.Repo(name="out"))
    }


def test_ensure_branch_leaves_no_open_commit(client: Client, caplog: pytest.LogCaptureFixture):
    """On pachd, setting provenance leaves an open empty head (``makeEmptyCommit``,
    src/server/pfs/server/server_commit.go), which pachd cannot read under a child until it
    finishes (``getFileset``, server_file.go); ``ensure_branch`` finishes that commit and no
    other: a head whose parent is open is left as it is."""
    for name in ("in", "in2", "out"):
        ensure_repo(client, CommitRef(name))
    ensure_branch(client, CommitRef("out", branch="master"), [CommitRef("in", branch="master")])
    assert all(c.finished.year > 1970 for c in client.pfs.list_commit(repo=pfs.Repo(name="out")))
    with output_commit(client, CommitRef("in", branch="master")) as written:
        pass
    propagated = head(client, "out@master")
    assert propagated.commit.id == written.commit and propagated.finished.year == 1970
    with output_commit(client, CommitRef("out", branch="master"), same_id_as=written.commit):
        pass

    client.pfs.create_branch(
        branch=pfs.Branch.from_uri("out@dev"), provenance=[pfs.Branch.from_uri("in@master")]
    )
    opened = head(client, "out@dev")
    with caplog.at_level(logging.WARNING):
        ensure_branch(client, CommitRef("out", branch="dev"), [CommitRef("in2", branch="master")])
    left = head(client, "out@dev")
    assert left.parent_commit.id == opened.commit.id and left.finished.year == 1970
    assert "is open" in caplog.text
