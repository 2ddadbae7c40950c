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


def test_http_source(client: Client, http_root, tmp_path: Path):
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
