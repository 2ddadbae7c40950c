"""S3 settings for training code, and the reader/writer, against a real local server."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm.errors import ConnectionSettingsError, InvalidReferenceError
from kfp_pachyderm.local.s3.buckets import Bucket
from kfp_pachyderm.local.server import LocalPachyderm
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.s3 import S3Data, bucket_name, key_prefix, s3_env

COMMIT = "0123456789ab4def0123456789abcdef"
TOKEN = "helper-token"


def test_bucket_names_follow_pachd():
    assert bucket_name("images") == "master.images"
    assert bucket_name("images@dev") == "dev.images"
    assert bucket_name(f"images@{COMMIT}") == f"{COMMIT}.master.images"
    assert bucket_name(f"vision/images@dev={COMMIT}:/x") == f"{COMMIT}.dev.images.vision"
    assert key_prefix("images@dev:/train/") == "train/"
    assert key_prefix("images@dev:/") == key_prefix("images") == ""
    with pytest.raises(InvalidReferenceError, match="not a commit reference"):
        bucket_name(42)


names = st.from_regex(r"[a-zA-Z0-9_-]{1,12}", fullmatch=True).filter(
    lambda n: len(n) != 32  # a name shaped like a global ID reads as a commit, as in pachd
)


@given(
    repo=names,
    branch=st.none() | names,
    commit=st.none() | st.builds(lambda: uuid.uuid4().hex),
    project=st.just("default") | names,
)
def test_bucket_names_round_trip_through_the_gateway(repo, branch, commit, project):
    ref = CommitRef(repo=repo, branch=branch, commit=commit, project=project)
    parsed = Bucket.parse(bucket_name(ref))
    assert (parsed.repo.project, parsed.repo.name) == (project, repo)
    assert parsed.branch.name == (branch or "master")
    assert parsed.commit == commit


def test_s3_env_in_the_seeds_style():
    env = s3_env(
        "http://pachd.pachyderm:600", f"images@master={COMMIT}:/train", "models@master:/run"
    )
    assert env == {
        "S3_ENDPOINT": "pachd.pachyderm:600",
        "S3_USE_HTTPS": "0",
        "S3_VERIFY_SSL": "1",
        "S3_REQUEST_TIMEOUT_MSEC": "600000",
        "S3_CONNECT_TIMEOUT_MSEC": "600000",
        "S3_REGION": "us-east-1",
        "S3_INPUT_BUCKET": f"{COMMIT}.master.images",
        "S3_INPUT_PREFIX": "train/",
        "S3_OUTPUT_BUCKET": "master.models",
        "S3_OUTPUT_PREFIX": "run/",
        "AWS_ACCESS_KEY_ID": "pachyderm",
        "AWS_SECRET_ACCESS_KEY": "pachyderm",
    }
    secure = s3_env(
        "https://gw:443",
        CommitRef("images", commit=COMMIT),
        "models",
        token="t",
        verify_ssl=False,
        request_timeout_ms=5,
    )
    assert (secure["S3_ENDPOINT"], secure["S3_USE_HTTPS"], secure["S3_VERIFY_SSL"]) == (
        "gw:443",
        "1",
        "0",
    )
    assert secure["AWS_ACCESS_KEY_ID"] == secure["AWS_SECRET_ACCESS_KEY"] == "t"
    assert s3_env("gw:600", f"images@{COMMIT}", "models")["S3_USE_HTTPS"] == "0"


def test_s3_env_refuses_bad_input():
    with pytest.raises(InvalidReferenceError, match="names no commit ID"):
        s3_env("gw:600", "images@master", "models")
    with pytest.raises(ConnectionSettingsError, match="ftp://gw"):
        s3_env("ftp://gw", f"images@{COMMIT}", "models")
    with pytest.raises(ConnectionSettingsError, match="request_timeout_ms 0"):
        s3_env("gw:600", f"images@{COMMIT}", "models", request_timeout_ms=0)
    with pytest.raises(InvalidReferenceError, match="bad name"):
        s3_env("gw:600", f"images@{COMMIT}", "bad name")
    with pytest.raises(ConnectionSettingsError, match="S3_ENDPOINT, S3_INPUT_BUCKET"):
        S3Data({"S3_OUTPUT_BUCKET": "master.models"})
    env = s3_env("gw:600", f"images@{COMMIT}", "models")
    with pytest.raises(ConnectionSettingsError, match="S3_USE_HTTPS='yes'"):
        S3Data({**env, "S3_USE_HTTPS": "yes"})


@pytest.fixture
def server(tmp_path: Path):
    with LocalPachyderm(tmp_path / "pfs", token=TOKEN, s3_port=0) as srv:
        yield srv


@pytest.fixture
def pach(server: LocalPachyderm) -> Client:
    return Client.from_pachd_address(server.address, auth_token=TOKEN)


def branch(repo: str) -> pfs.Branch:
    return pfs.Branch(repo=pfs.Repo(name=repo), name="master")


def test_reader_and_writer_against_the_gateway(tmp_path: Path, server, pach: Client):
    pach.pfs.create_repo(repo=pfs.Repo(name="images"))
    pach.pfs.create_repo(repo=pfs.Repo(name="models"))
    pach.pfs.create_branch(branch=branch("models"))
    with pach.pfs.commit(branch=branch("images")) as pinned:
        pinned.put_file_from_bytes(path="/train/a.bin", data=b"a")
        pinned.put_file_from_bytes(path="/train/sub/b.bin", data=b"bb")
        pinned.put_file_from_bytes(path="/test/c.bin", data=b"c")
    with pach.pfs.commit(branch=branch("images")) as later:
        later.put_file_from_bytes(path="/train/a.bin", data=b"changed")

    env = s3_env(
        server.s3_endpoint, f"images@master={pinned.id}:/train", "models@master:/run", token=TOKEN
    )
    data = S3Data(env)
    assert list(data.list_inputs()) == ["a.bin", "sub/b.bin"]
    assert data.read("a.bin") == b"a"  # the pinned commit, not the branch head
    copied = data.download_all(tmp_path / "in")
    assert [p.read_bytes() for p in copied] == [b"a", b"bb"]

    commit_id = data.write("metrics.json", b"{}")
    model = tmp_path / "model.keras"
    model.write_bytes(b"weights" * 1000)
    data.upload(model, "model.keras")
    head = pfs.Commit(branch=branch("models"))
    with pach.pfs.pfs_file(pfs.File(commit=head, path="/run/model.keras")) as f:
        assert f.read() == b"weights" * 1000
    info = pach.pfs.inspect_commit(commit=pfs.Commit(repo=pfs.Repo(name="models"), id=commit_id))
    assert info.finished

    wrong = S3Data({**env, "AWS_SECRET_ACCESS_KEY": "wrong"})
    with pytest.raises(Exception, match="SignatureDoesNotMatch"):
        wrong.read("a.bin")


def test_writer_into_an_open_commit_makes_one_commit(tmp_path: Path, server, pach: Client):
    pach.pfs.create_repo(repo=pfs.Repo(name="images"))
    pach.pfs.create_repo(repo=pfs.Repo(name="models"))
    with pach.pfs.commit(branch=branch("images")) as pinned:
        pinned.put_file_from_bytes(path="/x", data=b"x")
    output = pach.pfs.start_commit(branch=branch("models"))
    out_dir = tmp_path / "out"
    (out_dir / "sub").mkdir(parents=True)
    (out_dir / "a.txt").write_text("a")
    (out_dir / "sub" / "b.txt").write_text("b")

    env = s3_env(
        server.s3_endpoint, f"images@{pinned.id}", f"models@master={output.id}", token=TOKEN
    )
    assert S3Data(env).upload_dir(out_dir, "export/") == ["export/a.txt", "export/sub/b.txt"]
    pach.pfs.finish_commit(commit=output)
    files = pach.pfs.walk_file(file=pfs.File(commit=output, path="/"))
    assert sorted(f.file.path for f in files if f.file_type == pfs.FileType.FILE) == [
        "/export/a.txt",
        "/export/sub/b.txt",
    ]
    assert [c.commit.id for c in pach.pfs.list_commit(repo=pfs.Repo(name="models"))] == [output.id]
