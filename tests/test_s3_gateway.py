"""The local server's S3 gateway through real boto3, cross-checked with the real SDK over gRPC."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from blake3 import blake3
from boto3.s3.transfer import TransferConfig
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm.local.server import LocalPachyderm

from .s3_clients import error_of, make_s3

TOKEN = "s3-test-token"
MB = 1 << 20


@pytest.fixture
def server(tmp_path: Path):
    with LocalPachyderm(tmp_path / "pfs", s3_port=0) as srv:
        yield srv


@pytest.fixture
def token_server(tmp_path: Path):
    with LocalPachyderm(tmp_path / "pfs-auth", token=TOKEN, s3_port=0) as srv:
        yield srv


@pytest.fixture
def s3(server: LocalPachyderm):
    return make_s3(server)


@pytest.fixture
def pach(server: LocalPachyderm) -> Client:
    return Client.from_pachd_address(server.address)


def branch(repo: str, name: str = "master", project: str = "default") -> pfs.Branch:
    return pfs.Branch(repo=pfs.Repo(name=repo, project=pfs.Project(name=project)), name=name)


def grpc_read(pach: Client, commit: pfs.Commit, path: str) -> bytes:
    with pach.pfs.pfs_file(pfs.File(commit=commit, path=path)) as f:
        return f.read()


def head(pach: Client, repo: str, name: str = "master") -> str:
    return pach.pfs.inspect_branch(branch=branch(repo, name)).head.id


# ------------------------------------------------------------------------------ buckets


def test_buckets_are_branches(s3, pach: Client):
    s3.create_bucket(Bucket="images")
    s3.create_bucket(Bucket="dev.images")
    pach.pfs.create_project(project=pfs.Project(name="vision"))
    s3.create_bucket(Bucket="master.models.vision")

    assert {b.branch.name for b in pach.pfs.list_branch(repo=pfs.Repo(name="images"))} == {
        "master",
        "dev",
    }
    assert pach.pfs.branch_exists(branch("models", project="vision"))
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert names == ["dev.images.default", "master.images.default", "master.models.vision"]

    assert error_of(lambda: s3.create_bucket(Bucket="dev.images")) == (
        "BucketAlreadyOwnedByYou",
        409,
    )
    s3.head_bucket(Bucket="images")
    assert s3.get_bucket_location(Bucket="images")["LocationConstraint"] == "PACHYDERM"
    assert s3.get_bucket_versioning(Bucket="master.images.default")["Status"] == "Enabled"

    s3.delete_bucket(Bucket="dev.images")
    assert not pach.pfs.branch_exists(branch("images", "dev"))
    s3.delete_bucket(Bucket="images")
    assert not pach.pfs.repo_exists(pfs.Repo(name="images"))


# ---------------------------------------------------------------------- reads and writes


def test_s3_writes_and_grpc_writes_see_each_other(s3, pach: Client):
    s3.create_bucket(Bucket="data")
    put = s3.put_object(Bucket="data", Key="dir/a.txt", Body=b"from s3")
    first = head(pach, "data")
    assert put["VersionId"] == first
    assert put["ETag"] == '"' + blake3(b"from s3").hexdigest() + '"'
    info = pach.pfs.inspect_commit(commit=pfs.Commit(repo=pfs.Repo(name="data"), id=first))
    assert info.finished
    assert grpc_read(pach, info.commit, "/dir/a.txt") == b"from s3"

    with pach.pfs.commit(branch=branch("data")) as c:
        c.put_file_from_bytes(path="/dir/b.txt", data=b"from grpc")
    got = s3.get_object(Bucket="data", Key="dir/b.txt")
    assert got["Body"].read() == b"from grpc"
    assert got["VersionId"] == c.id
    assert s3.get_object(Bucket="data", Key="dir/a.txt")["Body"].read() == b"from s3"
    listed = s3.list_objects_v2(Bucket="data")["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("dir/a.txt", 7), ("dir/b.txt", 9)]

    s3.delete_object(Bucket="data", Key="dir/a.txt")
    assert not pach.pfs.path_exists(
        pfs.File(commit=pfs.Commit(branch=branch("data")), path="/dir/a.txt")
    )
    deleted_at = head(pach, "data")
    s3.delete_object(Bucket="data", Key="dir/missing")  # nothing to delete: no commit
    assert head(pach, "data") == deleted_at
    assert len(list(pach.pfs.list_commit(repo=pfs.Repo(name="data")))) == 4


def test_plain_and_streamed_bodies(server: LocalPachyderm, s3, pach: Client):
    s3.create_bucket(Bucket="data")
    plain = make_s3(server, request_checksum_calculation="when_required")
    plain.put_object(Bucket="data", Key="plain", Body=b"p" * 100_000)

    trailer = make_s3(server)

    # Over https boto3 streams PutObject as aws-chunked with a CRC32 trailer; make it do the
    # same over this plain-http endpoint.
    def use_trailer(params, **_):
        params["context"]["checksum"]["request_algorithm"]["in"] = "trailer"

    trailer.meta.events.register("before-call.s3.PutObject", use_trailer)
    body = os.urandom(3 * MB + 5)
    trailer.put_object(Bucket="data", Key="chunked", Body=body)
    master = pfs.Commit(branch=branch("data"))
    assert grpc_read(pach, master, "/plain") == b"p" * 100_000
    assert grpc_read(pach, master, "/chunked") == body


def test_write_into_open_and_finished_commits(s3, pach: Client):
    s3.create_bucket(Bucket="data")
    commit = pach.pfs.start_commit(branch=branch("data"))
    s3.put_object(Bucket="data", Key="one", Body=b"1")
    s3.put_object(Bucket=f"{commit.id}.master.data", Key="two", Body=b"2")
    assert head(pach, "data") == commit.id  # both went into the open commit
    pach.pfs.finish_commit(commit=commit)
    assert grpc_read(pach, commit, "/one") + grpc_read(pach, commit, "/two") == b"12"

    code = error_of(lambda: s3.put_object(Bucket=f"{commit.id}.master.data", Key="x", Body=b""))
    assert code == ("InvalidBucketState", 409)
    code = error_of(lambda: s3.delete_object(Bucket=f"{commit.id}.data", Key="one"))
    assert code == ("InvalidBucketState", 409)


def test_read_a_commit_through_its_bucket(s3, pach: Client):
    s3.create_bucket(Bucket="data")
    old = s3.put_object(Bucket="data", Key="f", Body=b"old")["VersionId"]
    s3.put_object(Bucket="data", Key="g", Body=b"new file")
    s3.put_object(Bucket="data", Key="f", Body=b"new")

    assert s3.get_object(Bucket=f"{old}.master.data", Key="f")["Body"].read() == b"old"
    assert s3.get_object(Bucket=f"{old}.data", Key="f")["Body"].read() == b"old"
    assert s3.get_object(Bucket="data", Key="f", VersionId=old)["Body"].read() == b"old"
    assert s3.get_object(Bucket="data", Key="f")["Body"].read() == b"new"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=f"{old}.master.data")["Contents"]] == ["f"]
    assert error_of(lambda: s3.get_object(Bucket=f"{old}.master.data", Key="g")) == (
        "NoSuchKey",
        404,
    )


def test_ranges_and_conditions(s3):
    s3.create_bucket(Bucket="data")
    etag = s3.put_object(Bucket="data", Key="f", Body=b"0123456789")["ETag"]
    assert s3.get_object(Bucket="data", Key="f", Range="bytes=2-4")["Body"].read() == b"234"
    got = s3.get_object(Bucket="data", Key="f", Range="bytes=-3")
    assert (got["Body"].read(), got["ContentRange"]) == (b"789", "bytes 7-9/10")
    assert s3.get_object(Bucket="data", Key="f", Range="bytes=8-100")["Body"].read() == b"89"
    assert error_of(lambda: s3.get_object(Bucket="data", Key="f", Range="bytes=10-")) == (
        "InvalidRange",
        416,
    )
    assert s3.head_object(Bucket="data", Key="f")["ContentLength"] == 10
    assert s3.get_object(Bucket="data", Key="f", IfMatch=etag)["Body"].read() == b"0123456789"
    assert error_of(lambda: s3.get_object(Bucket="data", Key="f", IfMatch='"nope"')) == (
        "PreconditionFailed",
        412,
    )
    assert error_of(lambda: s3.get_object(Bucket="data", Key="f", IfNoneMatch=etag))[1] == 304


def test_delete_objects_is_one_commit(s3, pach: Client):
    s3.create_bucket(Bucket="data")
    for key in ("a", "b", "c/d"):
        s3.put_object(Bucket="data", Key=key, Body=key.encode())
    before = len(list(pach.pfs.list_commit(repo=pfs.Repo(name="data"))))
    result = s3.delete_objects(
        Bucket="data", Delete={"Objects": [{"Key": "a"}, {"Key": "c/d"}, {"Key": "nope"}]}
    )
    assert sorted(d["Key"] for d in result["Deleted"]) == ["a", "c/d", "nope"]
    assert len(list(pach.pfs.list_commit(repo=pfs.Repo(name="data")))) == before + 1
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="data")["Contents"]] == ["b"]


# ------------------------------------------------------------------------------ multipart


def part_digests(data: bytes, part_size: int) -> list[str]:
    """The gateway's ETag of each part (its BLAKE3) of ``data`` cut in ``part_size`` parts."""
    return [blake3(data[i : i + part_size]).hexdigest() for i in range(0, len(data), part_size)]


def multipart_etag(digests: list[str]) -> str:
    """S3's multipart ETag over part ETags: MD5 of their bytes, concatenated, '-', count."""
    joined = b"".join(bytes.fromhex(digest.strip('"')) for digest in digests)
    return f'"{hashlib.md5(joined).hexdigest()}-{len(digests)}"'


def stored_bytes(data_dir: Path) -> int:
    """Bytes of every file under the store's blobs/, each inode once."""
    inodes: dict[int, int] = {}
    for path in (data_dir / "blobs").rglob("*"):
        try:
            if path.is_file():
                stat = path.stat()
                inodes[stat.st_ino] = stat.st_size
        except FileNotFoundError:
            continue
    return sum(inodes.values())


def written_bytes() -> int:
    """Bytes this process (the test and its in-process server) has passed to write calls."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("no wchar in /proc/self/io")


def test_multipart_upload_reads_as_one_piece(tmp_path: Path, s3, pach: Client):
    """upload_file in 5 parts: S3 (ranges across part boundaries, HEAD, listing, CopyObject) and
    gRPC (GetFile at an offset, ListFile, GlobFile, GetFileTAR, DiffFile, CopyFile, commit size)
    see the same bytes and sizes as for the same bytes written in one piece."""
    s3.create_bucket(Bucket="big")
    part = 5 * MB
    data = os.urandom(4 * part + 3 * MB)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=part, multipart_chunksize=part)
    s3.upload_file(str(source), "big", "data/parts.bin", Config=config)
    parts_commit = pfs.Commit(repo=pfs.Repo(name="big"), id=head(pach, "big"))
    s3.put_object(Bucket="big", Key="data/whole.bin", Body=data)
    whole_commit = pfs.Commit(repo=pfs.Repo(name="big"), id=head(pach, "big"))

    etag = multipart_etag(part_digests(data, part))
    assert etag.endswith('-5"')
    assert s3.head_object(Bucket="big", Key="data/parts.bin")["ETag"] == etag
    assert s3.head_object(Bucket="big", Key="data/parts.bin")["ContentLength"] == len(data)
    assert s3.get_object(Bucket="big", Key="data/parts.bin")["Body"].read() == data
    size = len(data)
    for spec, first, end in [
        (f"bytes={part - 10}-{part + 9}", part - 10, part + 10),
        (f"bytes={2 * part - 1}-{3 * part}", 2 * part - 1, 3 * part + 1),
        (f"bytes={part}-{4 * part - 1}", part, 4 * part),
        (f"bytes={4 * part}-", 4 * part, size),
        (f"bytes=-{3 * MB + 7}", size - 3 * MB - 7, size),
        (f"bytes=1-{size + 100}", 1, size),
    ]:
        got = s3.get_object(Bucket="big", Key="data/parts.bin", Range=spec)
        assert got["ContentRange"] == f"bytes {first}-{end - 1}/{size}", spec
        assert got["Body"].read() == data[first:end], spec
    listing = s3.list_objects_v2(Bucket="big", Prefix="data/")["Contents"]
    whole_etag = f'"{blake3(data).hexdigest()}"'
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listing] == [
        ("data/parts.bin", size, etag),
        ("data/whole.bin", size, whole_etag),
    ]
    copied = s3.copy_object(Bucket="big", Key="copied.bin", CopySource="/big/data/parts.bin")
    assert copied["CopyObjectResult"]["ETag"] == etag
    assert (
        s3.get_object(Bucket="big", Key="copied.bin", Range="bytes=5242870-5242889")["Body"].read()
        == data[5242870:5242890]
    )

    assert grpc_read(pach, whole_commit, "/data/parts.bin") == data
    file = pfs.File(commit=whole_commit, path="/data/parts.bin")
    tail = b"".join(v.value for v in pach.pfs.get_file(file=file, offset=3 * part + 1))
    assert tail == data[3 * part + 1 :]
    directory = pfs.File(commit=whole_commit, path="/data")
    sizes = {(i.file.path, i.size_bytes) for i in pach.pfs.list_file(file=directory)}
    assert sizes == {("/data/parts.bin", size), ("/data/whole.bin", size)}
    globbed = pach.pfs.glob_file(commit=whole_commit, pattern="/data/*.bin")
    assert {(i.file.path, i.size_bytes) for i in globbed} == sizes
    with pach.pfs.pfs_tar_file(directory) as tar:
        contents = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    assert contents == {"data/parts.bin": data, "data/whole.bin": data}
    added = list(pach.pfs.diff_file(new_file=pfs.File(commit=parts_commit, path="/")))
    assert [(d.new_file.file.path, d.new_file.size_bytes) for d in added] == [
        ("/data/parts.bin", size)
    ]
    unchanged = list(pach.pfs.diff_file(new_file=pfs.File(commit=whole_commit, path="/")))
    assert [d.new_file.file.path for d in unchanged] == ["/data/whole.bin"]
    info = pach.pfs.inspect_commit(commit=whole_commit)
    assert info.details.size_bytes == 2 * size

    pach.pfs.create_repo(repo=pfs.Repo(name="copies"))
    with pach.pfs.commit(branch=branch("copies")) as commit:
        commit.copy_file(src=file, dst="/copy.bin")
    assert grpc_read(pach, commit, "/copy.bin") == data
    assert s3.head_object(Bucket="copies", Key="copy.bin")["ETag"] == etag
    assert pach.pfs.inspect_commit(commit=commit).details.size_bytes == size
    with pach.pfs.commit(branch=branch("copies")) as appended:
        appended.put_file_from_bytes("/copy.bin", b"appended", append=True)
    assert grpc_read(pach, appended, "/copy.bin") == data + b"appended"


def test_completing_a_multipart_upload_writes_no_blob_bytes(server: LocalPachyderm, s3):
    """The parts named become the file's blobs: completion writes nothing again, removes the
    part not named, and leaves no staged part behind."""
    s3.create_bucket(Bucket="data")
    upload = s3.create_multipart_upload(Bucket="data", Key="obj")["UploadId"]
    bodies = {1: os.urandom(5 * MB), 2: os.urandom(6 * MB), 4: os.urandom(2 * MB)}
    unnamed = os.urandom(5 * MB)
    etags = {
        n: s3.upload_part(Bucket="data", Key="obj", UploadId=upload, PartNumber=n, Body=body)[
            "ETag"
        ]
        for n, body in bodies.items()
    }
    s3.upload_part(Bucket="data", Key="obj", UploadId=upload, PartNumber=3, Body=unnamed)
    disk_before, written_before = stored_bytes(server.data_dir), written_bytes()

    done = s3.complete_multipart_upload(
        Bucket="data",
        Key="obj",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in etags.items()]},
    )

    assert written_bytes() - written_before < 256 << 10
    assert abs(stored_bytes(server.data_dir) - (disk_before - len(unnamed))) < 256 << 10
    assert done["ETag"] == multipart_etag(list(etags.values()))
    got = s3.get_object(Bucket="data", Key="obj")
    assert got["ETag"] == done["ETag"] and got["VersionId"] == done["VersionId"]
    assert got["Body"].read() == b"".join(bodies.values())
    blobs = server.data_dir / "blobs"
    assert list((blobs / "uploads").iterdir()) == []
    assert not list(blobs.rglob(blake3(unnamed).hexdigest()))


def test_multipart_parts_list_abort_and_errors(server: LocalPachyderm, s3):
    s3.create_bucket(Bucket="data")
    upload = s3.create_multipart_upload(Bucket="data", Key="obj")["UploadId"]
    first = s3.upload_part(
        Bucket="data", Key="obj", UploadId=upload, PartNumber=1, Body=b"a" * (5 * MB)
    )["ETag"]
    second = s3.upload_part(Bucket="data", Key="obj", UploadId=upload, PartNumber=2, Body=b"b")[
        "ETag"
    ]
    parts = s3.list_parts(Bucket="data", Key="obj", UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts] == [
        (1, 5 * MB, first),
        (2, 1, second),
    ]
    page = s3.list_parts(Bucket="data", Key="obj", UploadId=upload, MaxParts=1)
    assert page["IsTruncated"] and page["NextPartNumberMarker"] == 1

    def complete(*parts):
        return s3.complete_multipart_upload(
            Bucket="data",
            Key="obj",
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]},
        )

    assert error_of(lambda: complete((2, second), (1, first))) == ("InvalidPartOrder", 400)
    assert error_of(lambda: complete((1, first), (1, first))) == ("InvalidPartOrder", 400)
    assert error_of(lambda: complete((1, second))) == ("InvalidPart", 400)
    assert error_of(lambda: complete((1, first), (3, second))) == ("InvalidPart", 400)
    md5 = f'"{hashlib.md5(b"a" * (5 * MB)).hexdigest()}"'
    assert error_of(lambda: complete((1, md5), (2, second))) == ("InvalidPart", 400)
    small = s3.upload_part(Bucket="data", Key="obj", UploadId=upload, PartNumber=3, Body=b"c")
    assert error_of(lambda: complete((2, second), (3, small["ETag"])))[0] == "EntityTooSmall"
    replaced = s3.upload_part(Bucket="data", Key="obj", UploadId=upload, PartNumber=2, Body=b"B")
    staged = server.data_dir / "blobs" / "uploads" / upload
    assert sorted(p.name for p in staged.iterdir()) == sorted(
        e.strip('"') for e in (first, replaced["ETag"], small["ETag"])
    )
    assert error_of(lambda: complete((1, first), (2, second))) == ("InvalidPart", 400)
    done = complete((1, first), (2, replaced["ETag"].strip('"')))
    assert done["ETag"] == multipart_etag([first, replaced["ETag"]])
    got = s3.get_object(Bucket="data", Key="obj")
    assert got["Body"].read() == b"a" * (5 * MB) + b"B"
    assert not staged.exists()
    assert error_of(lambda: complete((1, first))) == ("NoSuchUpload", 404)
    assert error_of(
        lambda: s3.upload_part(Bucket="data", Key="obj", UploadId=upload, PartNumber=1, Body=b"")
    ) == ("NoSuchUpload", 404)

    other = s3.create_multipart_upload(Bucket="data", Key="other")["UploadId"]
    s3.upload_part(Bucket="data", Key="other", UploadId=other, PartNumber=1, Body=b"x" * MB)
    assert (server.data_dir / "blobs" / "uploads" / other).exists()
    s3.abort_multipart_upload(Bucket="data", Key="other", UploadId=other)
    assert not (server.data_dir / "blobs" / "uploads" / other).exists()
    assert error_of(lambda: s3.list_parts(Bucket="data", Key="other", UploadId=other)) == (
        "NoSuchUpload",
        404,
    )
    assert error_of(
        lambda: s3.abort_multipart_upload(Bucket="data", Key="other", UploadId=other)
    ) == ("NoSuchUpload", 404)
    assert error_of(lambda: s3.get_object(Bucket="data", Key="other"))[0] == "NoSuchKey"
    assert "Uploads" not in s3.list_multipart_uploads(Bucket="data")


def test_list_multipart_uploads(s3):
    s3.create_bucket(Bucket="data")
    s3.create_bucket(Bucket="dev.data")
    started = [
        (key, s3.create_multipart_upload(Bucket="data", Key=key)["UploadId"])
        for key in ("b/1", "a", "b/1", "c")
    ]
    s3.create_multipart_upload(Bucket="dev.data", Key="a")
    expected = sorted(started)
    listed = s3.list_multipart_uploads(Bucket="data")
    assert [(u["Key"], u["UploadId"]) for u in listed["Uploads"]] == expected
    assert not listed["IsTruncated"]
    first = s3.list_multipart_uploads(Bucket="data", MaxUploads=2)
    assert first["IsTruncated"]
    assert (first["NextKeyMarker"], first["NextUploadIdMarker"]) == expected[1]
    rest = s3.list_multipart_uploads(
        Bucket="data", KeyMarker=first["NextKeyMarker"], UploadIdMarker=first["NextUploadIdMarker"]
    )
    assert [(u["Key"], u["UploadId"]) for u in rest["Uploads"]] == expected[2:]
    after_key = s3.list_multipart_uploads(Bucket="data", KeyMarker="b/1")
    assert [(u["Key"], u["UploadId"]) for u in after_key["Uploads"]] == expected[3:]
    prefixed = s3.list_multipart_uploads(Bucket="data", Prefix="b/")
    assert [(u["Key"], u["UploadId"]) for u in prefixed["Uploads"]] == expected[1:3]
    assert error_of(lambda: s3.list_multipart_uploads(Bucket="nothere"))[0] == "NoSuchBucket"


# ---------------------------------------------------------------------------- listing


@pytest.fixture
def many_keys(s3, pach: Client) -> list[str]:
    """2,500 files written over gRPC in one commit: 500 at the top, 200 in each of 10 dirs."""
    keys = [f"top-{i:04d}" for i in range(500)]
    keys += [f"dir{d}/file-{i:03d}" for d in range(10) for i in range(200)]
    s3.create_bucket(Bucket="many")
    commit = pach.pfs.start_commit(branch=branch("many"))
    requests = [pfs.ModifyFileRequest(set_commit=commit)]
    requests += [
        pfs.ModifyFileRequest(add_file=pfs.AddFile(path="/" + k, raw=k.encode())) for k in keys
    ]
    pach.pfs.modify_file(iter(requests))
    pach.pfs.finish_commit(commit=commit)
    return sorted(keys)


@pytest.mark.slow
def test_pagination_over_2500_keys_in_both_list_versions(s3, many_keys: list[str]):
    for operation in ("list_objects", "list_objects_v2"):
        pages = list(s3.get_paginator(operation).paginate(Bucket="many"))
        assert [len(p["Contents"]) for p in pages] == [1000, 1000, 500]
        assert [o["Key"] for p in pages for o in p["Contents"]] == many_keys

        pages = list(
            s3.get_paginator(operation).paginate(
                Bucket="many", Delimiter="/", PaginationConfig={"PageSize": 300}
            )
        )
        keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
        prefixes = [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])]
        assert prefixes == [f"dir{d}/" for d in range(10)]
        assert keys == [k for k in many_keys if k.startswith("top-")]
        assert len(pages) == 2

        pages = list(
            s3.get_paginator(operation).paginate(
                Bucket="many", Prefix="dir3/file-1", PaginationConfig={"PageSize": 40}
            )
        )
        assert [o["Key"] for p in pages for o in p["Contents"]] == [
            f"dir3/file-{i}" for i in range(100, 200)
        ]

    after = s3.list_objects_v2(Bucket="many", StartAfter="top-0497")
    assert [o["Key"] for o in after["Contents"]] == ["top-0498", "top-0499"]
    assert s3.list_objects(Bucket="many", Marker="dir9/file-199", MaxKeys=2)["NextMarker"] == (
        "top-0001"
    )


# --------------------------------------------------------------------------------- auth


def test_token_auth_takes_the_token_and_refuses_wrong_or_missing_keys(
    token_server: LocalPachyderm, tmp_path: Path
):
    good = make_s3(token_server, TOKEN, TOKEN)
    good.create_bucket(Bucket="data")
    good.put_object(Bucket="data", Key="f", Body=b"secret data")

    wrong_secret = make_s3(token_server, TOKEN, "not-the-token")
    assert error_of(lambda: wrong_secret.get_object(Bucket="data", Key="f")) == (
        "SignatureDoesNotMatch",
        403,
    )
    assert error_of(lambda: wrong_secret.put_object(Bucket="data", Key="g", Body=b"x"))[1] == 403
    wrong_key = make_s3(token_server, "someone", TOKEN)
    assert error_of(lambda: wrong_key.list_buckets()) == ("InvalidAccessKeyId", 403)
    anonymous = make_s3(token_server, signature_version=UNSIGNED)
    assert error_of(lambda: anonymous.list_objects_v2(Bucket="data")) == ("AccessDenied", 403)

    v4 = make_s3(token_server, TOKEN, TOKEN, signature_version="s3v4")
    url = v4.generate_presigned_url("get_object", Params={"Bucket": "data", "Key": "f"})
    assert "X-Amz-Signature=" in url
    assert urllib.request.urlopen(url).read() == b"secret data"
    put_url = v4.generate_presigned_url("put_object", Params={"Bucket": "data", "Key": "up"})
    urllib.request.urlopen(urllib.request.Request(put_url, data=b"uploaded", method="PUT"))
    assert good.get_object(Bucket="data", Key="up")["Body"].read() == b"uploaded"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url.replace("Key=f", "").replace("/f?", "/g?"))
    assert info.value.code == 403

    v2 = make_s3(token_server, TOKEN, TOKEN, signature_version="s3")
    assert v2.get_object(Bucket="data", Key="f")["Body"].read() == b"secret data"
    v2.put_object(Bucket="data", Key="v2", Body=b"signed v2")
    v2_url = v2.generate_presigned_url("get_object", Params={"Bucket": "data", "Key": "v2"})
    assert "AWSAccessKeyId=" in v2_url
    assert urllib.request.urlopen(v2_url).read() == b"signed v2"
    odd = "a b,c/~'=&#%;$.txt"  # signatures cover the encoded path; pachd refuses glob chars
    for client in (good, v2):
        client.put_object(Bucket="data", Key=odd, Body=b"odd")
        assert client.get_object(Bucket="data", Key=odd)["Body"].read() == b"odd"
        listed = client.list_objects_v2(Bucket="data", Prefix="a b,")["Contents"]
        assert [o["Key"] for o in listed] == [odd]
    v2_wrong = make_s3(token_server, TOKEN, "nope", signature_version="s3")
    assert error_of(lambda: v2_wrong.list_buckets()) == ("SignatureDoesNotMatch", 403)


def test_without_a_token_any_access_key_signs_with_itself(server: LocalPachyderm):
    make_s3(server, "alice", "alice").create_bucket(Bucket="data")
    make_s3(server, "bob", "bob").put_object(Bucket="data", Key="f", Body=b"x")
    anonymous = make_s3(server, signature_version=UNSIGNED)
    assert anonymous.get_object(Bucket="data", Key="f")["Body"].read() == b"x"


def _signed_chunked_put(
    server: LocalPachyderm, key: str, body: bytes, trailer: bool = False, corrupt: str = ""
) -> int:
    """PutObject with a body of signed aws-chunks (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or
    -TRAILER with a signed CRC32 trailer), built as the AWS spec describes on a seed signature
    from botocore's SigV4 signer; ``corrupt`` ("chunk" or "trailer") gets one part wrong."""
    url = f"{server.s3_endpoint}/data/{key}"
    payload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer else "")
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(body)),
        "X-Amz-Content-SHA256": payload,
    }
    if trailer:
        headers["x-amz-trailer"] = "x-amz-checksum-crc32"
    request = AWSRequest(method="PUT", url=url, headers=headers)
    SigV4Auth(Credentials(TOKEN, TOKEN), "s3", "us-east-1").add_auth(request)
    amz_date = request.headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    signing_key = ("AWS4" + TOKEN).encode()
    for part in (amz_date[:8], "us-east-1", "s3", "aws4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    previous = request.headers["Authorization"].rpartition("Signature=")[2]

    def sign(kind: str, *digests: str) -> str:
        lines = [f"AWS4-HMAC-SHA256-{kind}", amz_date, scope, previous, *digests]
        return hmac.new(signing_key, "\n".join(lines).encode(), hashlib.sha256).hexdigest()

    encoded = b""
    chunks = [body[i : i + 64 * 1024] for i in range(0, len(body), 64 * 1024)] + [b""]
    for chunk in chunks:
        previous = sign(
            "PAYLOAD", hashlib.sha256(b"").hexdigest(), hashlib.sha256(chunk).hexdigest()
        )
        data = b"X" + chunk[1:] if corrupt == "chunk" and chunk else chunk
        encoded += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + data
        encoded += b"\r\n" if chunk or not trailer else b""
    if trailer:
        crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
        line = f"x-amz-checksum-crc32:{crc}\n"
        signature = sign("TRAILER", hashlib.sha256(line.encode()).hexdigest())
        if corrupt == "trailer":
            signature = signature[::-1]
        encoded += f"{line[:-1]}\r\nx-amz-trailer-signature:{signature}\r\n\r\n".encode()
    split = urlsplit(url)
    connection = http.client.HTTPConnection(split.hostname, split.port, timeout=30)
    connection.request("PUT", split.path, body=encoded, headers=dict(request.headers.items()))
    status = connection.getresponse().status
    connection.close()
    return status


def test_signed_chunked_bodies(token_server: LocalPachyderm):
    s3 = make_s3(token_server, TOKEN, TOKEN)
    s3.create_bucket(Bucket="data")
    body = os.urandom(200_000)
    assert _signed_chunked_put(token_server, "signed", body) == 200
    assert _signed_chunked_put(token_server, "trailed", body, trailer=True) == 200
    for key in ("signed", "trailed"):
        assert s3.get_object(Bucket="data", Key=key)["Body"].read() == body
    assert _signed_chunked_put(token_server, "bad", body, corrupt="chunk") == 403
    assert _signed_chunked_put(token_server, "bad", body, trailer=True, corrupt="trailer") == 403
    assert error_of(lambda: s3.head_object(Bucket="data", Key="bad"))[1] == 404


def test_unsigned_trailer_checksum_is_verified(server: LocalPachyderm, s3):
    s3.create_bucket(Bucket="data")
    body = b"trailer body"
    good = zlib.crc32(body).to_bytes(4, "big")
    for crc, expected in ((good, 200), (b"\0\0\0\0", 400)):
        trailer = f"x-amz-checksum-crc32:{base64.b64encode(crc).decode()}\r\n".encode()
        encoded = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n" + trailer + b"\r\n"
        split = urlsplit(server.s3_endpoint)
        connection = http.client.HTTPConnection(split.hostname, split.port, timeout=30)
        connection.request(
            "PUT",
            "/data/trailed",
            body=encoded,
            headers={
                "Content-Encoding": "aws-chunked",
                "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                "x-amz-trailer": "x-amz-checksum-crc32",
                "x-amz-decoded-content-length": str(len(body)),
            },
        )
        response = connection.getresponse()
        assert response.status == expected, response.read()
        connection.close()
    assert s3.get_object(Bucket="data", Key="trailed")["Body"].read() == body


# ------------------------------------------------------------------------------- errors


def test_s3_errors_carry_the_aws_error_codes_and_statuses(s3, pach: Client):
    s3.create_bucket(Bucket="data")
    s3.put_object(Bucket="data", Key="f", Body=b"x")
    assert error_of(lambda: s3.list_objects_v2(Bucket="ghost")) == ("NoSuchBucket", 404)
    assert error_of(lambda: s3.get_object(Bucket="nobranch.data", Key="f")) == ("NoSuchBucket", 404)
    assert error_of(lambda: s3.put_object(Bucket="nobranch.data", Key="f", Body=b"")) == (
        "NoSuchBucket",
        404,
    )
    big = b"x" * (2 * MB)  # refused before its body is read: the connection must recover
    assert error_of(lambda: s3.put_object(Bucket="ghost", Key="f", Body=big))[0] == "NoSuchBucket"
    assert s3.get_object(Bucket="data", Key="f")["Body"].read() == b"x"
    assert error_of(lambda: s3.get_object(Bucket="data", Key="g")) == ("NoSuchKey", 404)
    assert error_of(lambda: s3.head_object(Bucket="data", Key="g"))[1] == 404
    assert error_of(lambda: s3.list_objects(Bucket="a.b.c.d")) == ("InvalidBucketName", 400)
    assert error_of(lambda: s3.create_bucket(Bucket=uuid.uuid4().hex + ".data")) == (
        "InvalidBucketName",
        400,
    )
    assert error_of(lambda: s3.get_object(Bucket="data", Key="f", Range="bytes=5-")) == (
        "InvalidRange",
        416,
    )
    assert error_of(lambda: s3.put_object(Bucket="data", Key="a//b", Body=b"")) == (
        "InvalidArgument",
        400,
    )
    assert error_of(lambda: s3.get_bucket_acl(Bucket="data")) == ("NotImplemented", 501)
    assert error_of(lambda: s3.copy_object(Bucket="data", Key="f", CopySource="data/f")) == (
        "InvalidRequest",
        400,
    )  # a copy onto itself without a version, as pachd's gateway refuses it
    assert error_of(lambda: s3.list_object_versions(Bucket="data"))[1] == 501
    assert error_of(lambda: s3.get_object(Bucket="data", Key="f", VersionId=uuid.uuid4().hex)) == (
        "NoSuchVersion",
        404,
    )


@pytest.mark.slow
def test_the_aws_cli_syncs_lists_and_copies_through_the_gateway(
    tmp_path: Path, token_server: LocalPachyderm
):
    aws_cli = Path(sys.executable).with_name("aws")
    assert aws_cli.exists(), "the AWS CLI is a dev dependency: pip install -e '.[dev]'"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": TOKEN,
        "AWS_SECRET_ACCESS_KEY": TOKEN,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }

    def aws(*args: str) -> str:
        command = [str(aws_cli), "--endpoint-url", token_server.s3_endpoint, "s3", *args]
        return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout

    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("a")
    (source / "sub" / "b.bin").write_bytes(os.urandom(12 * MB))
    aws("mb", "s3://data")
    aws("sync", "--only-show-errors", str(source), "s3://data/in/")
    listing = aws("ls", "--recursive", "s3://data/")
    assert [line.split()[-2:] for line in listing.splitlines()] == [
        ["1", "in/a.txt"],
        [str(12 * MB), "in/sub/b.bin"],
    ]
    aws("cp", "--only-show-errors", "s3://data/in/sub/b.bin", str(tmp_path / "b.bin"))
    assert (tmp_path / "b.bin").read_bytes() == (source / "sub" / "b.bin").read_bytes()
