"""commit_data from every kind of source, against real servers: the local Pachyderm server, its
S3 gateway (through real boto3), and a real HTTP server on loopback."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import boto3
import pytest
from pachyderm_sdk import Client

from kfp_pachyderm.errors import KfpPachydermError, NotFoundError
from kfp_pachyderm.local.server import LocalPachyderm
from kfp_pachyderm.pfs.commits import inspect_commit
from kfp_pachyderm.pfs.ingest import commit_data
from kfp_pachyderm.pfs.provenance import read_provenance
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.transfer import read_tree


@pytest.fixture
def s3_server(tmp_path: Path, monkeypatch):
    with LocalPachyderm(tmp_path / "pfs", s3_port=0) as server:
        monkeypatch.setenv("S3_ENDPOINT", server.s3_endpoint)
        for var, value in (
            ("AWS_ACCESS_KEY_ID", "x"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ):
            monkeypatch.setenv(var, value)
        yield server


@pytest.fixture
def http_root(tmp_path: Path):
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_an_http_source_is_committed_reused_replaced_and_mirrored(
    client: Client, http_root, tmp_path: Path
):
    root, base = http_root
    (root / "mnist.npz").write_bytes(b"\x00" * 100_000)
    result = commit_data(client, f"{base}/mnist.npz", CommitRef("raw"), dest_path="/data/mnist.npz")
    assert (result.files, result.bytes) == (1, 100_000)
    read_tree(client, result.ref.with_path("/data/mnist.npz"), tmp_path / "back")
    assert (tmp_path / "back" / "mnist.npz").read_bytes() == b"\x00" * 100_000
    again = commit_data(client, f"{base}/mnist.npz", CommitRef("raw"), dest_path="/data/mnist.npz")
    assert again.reused and again.ref.commit == result.ref.commit
    assert len(list(client.pfs.list_commit(repo=CommitRef("raw").pfs_repo()))) == 1
    (root / "mnist.npz").write_bytes(b"\x01" * 10)
    changed = commit_data(
        client, f"{base}/mnist.npz", CommitRef("raw"), dest_path="/data/mnist.npz"
    )
    assert not changed.reused and changed.bytes == 10
    read_tree(client, changed.ref, tmp_path / "changed")
    assert (tmp_path / "changed" / "mnist.npz").read_bytes() == b"\x01" * 10  # replaced
    mirrored = commit_data(
        client, f"{base}/mnist.npz", CommitRef("raw"), dest_path="/data/mnist.npz", mirror=True
    )
    assert not mirrored.reused and mirrored.ref.commit != changed.ref.commit
    again = commit_data(
        client, f"{base}/mnist.npz", CommitRef("raw"), dest_path="/data/mnist.npz", mirror=True
    )
    assert again.reused and again.ref.commit == mirrored.ref.commit
    assert len(list(client.pfs.list_commit(repo=CommitRef("raw").pfs_repo()))) == 3
    with pytest.raises(KfpPachydermError, match="answered HTTP 404"):
        commit_data(client, f"{base}/missing.npz", CommitRef("raw2"))
    assert not client.pfs.repo_exists(CommitRef("raw2").pfs_repo())


def test_s3_source_through_the_gateway(s3_server: LocalPachyderm, tmp_path: Path):
    client = Client.from_pachd_address(s3_server.address)
    s3 = boto3.client("s3", endpoint_url=s3_server.s3_endpoint)
    s3.create_bucket(Bucket="master.landing")
    for key in ("batch/a.csv", "batch/sub/b.csv", "other/c.csv"):
        s3.put_object(Bucket="master.landing", Key=key, Body=key.encode())
    result = commit_data(client, "s3://master.landing/batch/", CommitRef("raw"), dest_path="/in")
    assert result.files == 2
    paths = {f.file.path for f in client.pfs.walk_file(file=result.ref.pfs_file())}
    assert paths == {"/in/", "/in/a.csv", "/in/sub/", "/in/sub/b.csv"}
    record = read_provenance(inspect_commit(client, result.ref))
    assert (
        record.inputs == ["s3://master.landing/batch/"]
        and record.extra["content_digest"] == result.digest
    )
    with pytest.raises(KfpPachydermError, match="has no objects under that prefix"):
        commit_data(client, "s3://master.landing/nothing/", CommitRef("raw"))


def test_commit_source_is_copied_inside_pachyderm_and_reused(client: Client, tmp_path: Path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.txt").write_text("x")
    first = commit_data(client, str(tmp_path / "data"), CommitRef("src"))
    source = f"src@{first.ref.commit}:/"
    copy = commit_data(client, source, CommitRef("dst"), dest_path="/copied")
    assert copy.files == 1 and not copy.reused
    assert read_provenance(inspect_commit(client, copy.ref)).inputs == [f"src@{first.ref.commit}:/"]
    again = commit_data(client, source, CommitRef("dst"), dest_path="/copied")
    assert again.reused and again.ref.commit == copy.ref.commit
    with pytest.raises(NotFoundError):
        commit_data(client, "src@0123456789ab4def0123456789abcdef", CommitRef("dst"))


def files_of(client: Client, ref: CommitRef, dest: Path) -> dict[str, bytes]:
    read_tree(client, ref.with_path("/"), dest)
    return {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}


def write(root: Path, spec: dict[str, bytes]) -> Path:
    for rel, data in spec.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


TABLES = {f"t{i:02d}.csv": f"id,value\n{i},{i * i}\n".encode() for i in range(20)}
CHANGED = {"t07.csv": b"id,value\n7,-1\n"}


def test_a_folder_with_one_changed_file_changes_only_that_file(client: Client, tmp_path: Path):
    first = commit_data(client, str(write(tmp_path / "all", TABLES)), CommitRef("tables"))
    assert first.files == 20
    one = write(tmp_path / "one", CHANGED)
    update = commit_data(client, str(one), CommitRef("tables"))
    assert not update.reused and (update.files, update.bytes) == (1, len(CHANGED["t07.csv"]))
    assert files_of(client, update.ref, tmp_path / "after") == {**TABLES, **CHANGED}
    assert read_provenance(inspect_commit(client, update.ref)).parameters["mirror"] == "False"
    # the whole folder again with another file edited: every file as in the folder
    edited = write(tmp_path / "all", {"t03.csv": b"id,value\n3,0\n"})
    again = commit_data(client, str(edited), CommitRef("tables"))
    expected = {**TABLES, "t03.csv": b"id,value\n3,0\n"}
    assert files_of(client, again.ref, tmp_path / "again") == expected


def test_mirror_removes_what_the_source_lacks_and_never_reuses_an_added_commit(
    client: Client, tmp_path: Path
):
    commit_data(client, str(write(tmp_path / "all", TABLES)), CommitRef("tables"))
    one = write(tmp_path / "one", CHANGED)
    added = commit_data(client, str(one), CommitRef("tables"))
    assert commit_data(client, str(one), CommitRef("tables")).ref.commit == added.ref.commit
    # the head holds this content, but also the other 19 files: a mirror must not reuse it
    mirrored = commit_data(client, str(one), CommitRef("tables"), mirror=True)
    assert not mirrored.reused and mirrored.ref.commit != added.ref.commit
    assert files_of(client, mirrored.ref, tmp_path / "mirrored") == CHANGED
    assert read_provenance(inspect_commit(client, mirrored.ref)).parameters["mirror"] == "True"
    again = commit_data(client, str(one), CommitRef("tables"), mirror=True)
    assert again.reused and again.ref.commit == mirrored.ref.commit
    assert (again.files, again.digest) == (1, mirrored.digest)
    # adding what a mirror commit holds changes nothing: reused too
    plain = commit_data(client, str(one), CommitRef("tables"))
    assert plain.reused and plain.ref.commit == mirrored.ref.commit


def test_mirror_under_a_dest_path_keeps_the_rest_of_the_repo(client: Client, tmp_path: Path):
    commit_data(client, str(write(tmp_path / "all", TABLES)), CommitRef("tables"), dest_path="/in")
    commit_data(client, str(write(tmp_path / "docs", {"README": b"r"})), CommitRef("tables"))
    one = write(tmp_path / "one", CHANGED)
    result = commit_data(client, str(one), CommitRef("tables"), dest_path="/in", mirror=True)
    assert files_of(client, result.ref, tmp_path / "back") == {
        "README": b"r",
        "in/t07.csv": CHANGED["t07.csv"],
    }


def test_a_commit_source_adds_by_default_and_replaces_with_mirror(client: Client, tmp_path: Path):
    src = commit_data(client, str(write(tmp_path / "src", {"x.txt": b"new x"})), CommitRef("src"))
    source = f"src@{src.ref.commit}:/"
    old = write(tmp_path / "old", {"x.txt": b"old x", "old.txt": b"kept?"})
    commit_data(client, str(old), CommitRef("dst"), dest_path="/copied")
    copy = commit_data(client, source, CommitRef("dst"), dest_path="/copied")
    assert not copy.reused and (copy.files, copy.bytes) == (1, 5)
    assert files_of(client, copy.ref, tmp_path / "copy") == {
        "copied/x.txt": b"new x",
        "copied/old.txt": b"kept?",
    }
    mirrored = commit_data(client, source, CommitRef("dst"), dest_path="/copied", mirror=True)
    assert not mirrored.reused
    assert files_of(client, mirrored.ref, tmp_path / "mirrored") == {"copied/x.txt": b"new x"}
    again = commit_data(client, source, CommitRef("dst"), dest_path="/copied", mirror=True)
    assert again.reused and again.ref.commit == mirrored.ref.commit
