"""A SIGKILL of the real server process at any moment loses no finished commit, and no S3
multipart upload in progress."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sqlite3
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import grpc
import pytest
from blake3 import blake3
from botocore.config import Config
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.transfer import read_tree

from .conftest import free_port, ready_client

pytestmark = pytest.mark.slow


def make_tree(root: Path, files: int = 50, size: int = 10_000) -> Path:
    for i in range(files):
        path = root / f"d{i % 5}" / f"f{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    return root


def same_tree(a: Path, b: Path) -> bool:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return files_a == files_b and all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)


def test_commit_survives_sigkill_and_restart(tmp_path: Path, server_process):
    source = make_tree(tmp_path / "src")
    server = server_process()
    client = Client.from_pachd_address(server.address)
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    with client.pfs.commit(branch=pfs.Branch.from_uri("data@master")) as commit:
        commit.put_files(source=source, path="/")
    server.kill()

    restarted = server_process(data_dir=server.data_dir, port=server.port)
    client = ready_client(restarted.address)
    info = client.pfs.inspect_commit(commit=commit, wait=pfs.CommitState.FINISHED)
    assert info.details.size_bytes == 50 * 10_000
    read_tree(client, CommitRef("data", commit=commit.id), tmp_path / "back")
    assert same_tree(source, tmp_path / "back")


def test_kill_during_writes_keeps_every_finished_commit(tmp_path: Path, server_process):
    server = server_process()
    client = Client.from_pachd_address(server.address)
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    finished: list[tuple[str, bytes]] = []
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            payload = os.urandom(50_000 + i)
            try:
                with client.pfs.commit(branch=pfs.Branch.from_uri("data@master")) as c:
                    c.put_file_from_bytes(f"/f{i}", payload)
            except (grpc.RpcError, ConnectionError):
                return
            finished.append((c.id, payload))
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    deadline = time.monotonic() + 20
    while len(finished) < 15 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()
    stop.set()
    thread.join(timeout=30)
    assert len(finished) >= 15

    restarted = server_process(data_dir=server.data_dir, port=server.port)
    client = ready_client(restarted.address)
    for i, (commit_id, payload) in enumerate(finished):
        commit = pfs.Commit(repo=pfs.Repo(name="data"), id=commit_id)
        assert client.pfs.inspect_commit(commit=commit).finished.year > 1970
        with client.pfs.pfs_file(pfs.File(commit=commit, path=f"/f{i}")) as f:
            assert f.read() == payload
    # The store is readable end to end: every commit, finished or not, lists its files.
    for info in client.pfs.list_commit(repo=pfs.Repo(name="data")):
        list(client.pfs.walk_file(file=pfs.File(commit=info.commit, path="/")))


# ------------------------------------------------------------------- S3 multipart uploads

MB = 1 << 20


def s3_client(endpoint: str):
    """A boto3 client for a gateway that may be restarting: it retries connections."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="any",
        aws_secret_access_key="any",
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5}),
    )


def upload_part(s3, key: str, upload: str, number: int, body: bytes) -> str:
    """UploadPart into bucket ``data``; the part's ETag."""
    return s3.upload_part(Bucket="data", Key=key, UploadId=upload, PartNumber=number, Body=body)[
        "ETag"
    ]


def cut_part_upload(s3, key: str, upload: str, number: int) -> socket.socket:
    """An UploadPart that has sent 1 MiB of its 5 MiB body and waits (the caller kills the
    server meanwhile)."""
    url = s3.generate_presigned_url(
        "upload_part",
        Params={"Bucket": "data", "Key": key, "UploadId": upload, "PartNumber": number},
    )
    target = urlsplit(url)
    conn = socket.create_connection((target.hostname, target.port))
    conn.sendall(
        f"PUT {target.path}?{target.query} HTTP/1.1\r\nHost: {target.netloc}\r\n"
        f"Content-Length: {5 * MB}\r\n\r\n".encode()
        + os.urandom(MB)
    )
    return conn


def s3_etag(digests: list[str]) -> str:
    """S3's multipart ETag over part ETags: MD5 of their bytes, concatenated, '-', count."""
    joined = b"".join(bytes.fromhex(digest.strip('"')) for digest in digests)
    return f'"{hashlib.md5(joined).hexdigest()}-{len(digests)}"'


def test_multipart_uploads_survive_sigkill_and_restart(tmp_path: Path, server_process):
    server = server_process(s3_port=free_port())
    s3 = s3_client(server.s3_endpoint)
    s3.create_bucket(Bucket="data")
    upload = s3.create_multipart_upload(Bucket="data", Key="big.bin")["UploadId"]
    other = s3.create_multipart_upload(Bucket="data", Key="other.bin")["UploadId"]
    bodies = [os.urandom(5 * MB), os.urandom(5 * MB), os.urandom(MB)]
    etags = [upload_part(s3, "big.bin", upload, n, bodies[n - 1]) for n in (1, 2)]
    upload_part(s3, "other.bin", other, 1, os.urandom(MB))
    cut = cut_part_upload(s3, "big.bin", upload, 3)
    tmp = server.data_dir / "blobs" / "tmp"
    deadline = time.monotonic() + 10
    while not any(tmp.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any(tmp.iterdir()), "part 3 is being received when the server is killed"
    server.kill()
    cut.close()
    # What a kill between staging a part and recording it leaves, and the parts of an upload
    # completed or aborted just before a kill: the restart removes both.
    staging = server.data_dir / "blobs" / "uploads"
    (staging / upload / ("0" * 64)).write_bytes(b"staged, never recorded")
    (staging / ("f" * 32)).mkdir()
    (staging / ("f" * 32) / ("1" * 64)).write_bytes(b"an upload that is gone")

    restarted = server_process(data_dir=server.data_dir, s3_port=server.s3_port)
    s3 = s3_client(restarted.s3_endpoint)
    assert sorted(p.name for p in staging.iterdir()) == sorted([upload, other])
    assert sorted(p.name for p in (staging / upload).iterdir()) == sorted(
        e.strip('"') for e in etags
    )
    assert list(tmp.iterdir()) == []
    listed = s3.list_multipart_uploads(Bucket="data")["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in listed] == [
        ("big.bin", upload),
        ("other.bin", other),
    ]
    parts = s3.list_parts(Bucket="data", Key="big.bin", UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts] == [
        (1, 5 * MB, etags[0]),
        (2, 5 * MB, etags[1]),
    ]
    etags.append(upload_part(s3, "big.bin", upload, 3, bodies[2]))
    done = s3.complete_multipart_upload(
        Bucket="data",
        Key="big.bin",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )
    s3.abort_multipart_upload(Bucket="data", Key="other.bin", UploadId=other)
    assert done["ETag"] == s3_etag(etags)
    assert "Uploads" not in s3.list_multipart_uploads(Bucket="data")
    assert list(staging.iterdir()) == []

    restarted.kill()
    again = server_process(data_dir=server.data_dir, s3_port=server.s3_port)
    s3 = s3_client(again.s3_endpoint)
    got = s3.get_object(Bucket="data", Key="big.bin", Range=f"bytes={5 * MB - 3}-")
    assert got["Body"].read() == b"".join(bodies)[5 * MB - 3 :]
    assert s3.head_object(Bucket="data", Key="big.bin")["ETag"] == done["ETag"]
    client = ready_client(again.address)
    commit = pfs.Commit(repo=pfs.Repo(name="data"), id=done["VersionId"])
    assert client.pfs.inspect_commit(commit=commit).details.size_bytes == 11 * MB


def stopped_server_with_two_objects(server_process):
    """A stopped server whose bucket ``data`` holds ``large.bin`` (3 MB, a blob file) and
    ``small.bin`` (4 KiB, inline); (server, large, small)."""
    server = server_process(s3_port=free_port())
    s3 = s3_client(server.s3_endpoint)
    s3.create_bucket(Bucket="data")
    large, small = os.urandom(3 * MB), os.urandom(4096)
    s3.put_object(Bucket="data", Key="large.bin", Body=large)
    s3.put_object(Bucket="data", Key="small.bin", Body=small)
    server.stop()
    return server, large, small


def test_a_store_from_before_composite_blobs_opens(tmp_path: Path, server_process):
    """A data dir in the layout before multipart uploads were stored (no ``composite``,
    ``uploads`` or ``upload_parts`` table, no staging folder) opens, reads, and takes a
    multipart upload."""
    server, large, small = stopped_server_with_two_objects(server_process)
    data_dir = server.data_dir
    with sqlite3.connect(data_dir / "pfs.sqlite") as db:
        db.executescript("DROP TABLE uploads; DROP TABLE upload_parts;")
    with sqlite3.connect(data_dir / "blobs" / "small.sqlite") as db:
        db.execute("DROP TABLE composite")
    shutil.rmtree(data_dir / "blobs" / "uploads")

    restarted = server_process(data_dir=data_dir, s3_port=server.s3_port)
    s3 = s3_client(restarted.s3_endpoint)
    assert s3.get_object(Bucket="data", Key="large.bin")["Body"].read() == large
    head = s3.head_object(Bucket="data", Key="small.bin")
    assert head["ETag"] == f'"{blake3(small).hexdigest()}"'
    upload = s3.create_multipart_upload(Bucket="data", Key="new.bin")["UploadId"]
    etags = [
        upload_part(s3, "new.bin", upload, n, body) for n, body in ((1, large * 2), (2, small))
    ]
    s3.complete_multipart_upload(
        Bucket="data",
        Key="new.bin",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )
    assert s3.get_object(Bucket="data", Key="new.bin")["Body"].read() == large * 2 + small


def test_a_store_with_sha256_blob_names_reads_and_takes_new_writes(tmp_path: Path, server_process):
    """Blobs written before content was hashed with BLAKE3 are named by their SHA-256: a data
    dir renamed that way reads back byte for byte, keeps those ETags, and takes new writes."""
    server, large, small = stopped_server_with_two_objects(server_process)
    blobs = server.data_dir / "blobs"
    renames = {blake3(d).hexdigest(): hashlib.sha256(d).hexdigest() for d in (large, small)}
    with sqlite3.connect(server.data_dir / "pfs.sqlite") as db:
        for new, old in renames.items():
            assert db.execute("UPDATE files SET blob=? WHERE blob=?", (old, new)).rowcount >= 1
    with sqlite3.connect(blobs / "small.sqlite") as db:
        new, old = blake3(small).hexdigest(), hashlib.sha256(small).hexdigest()
        assert db.execute("UPDATE small SET digest=? WHERE digest=?", (old, new)).rowcount == 1
    new, old = blake3(large).hexdigest(), hashlib.sha256(large).hexdigest()
    (blobs / "objects" / old[:2]).mkdir(exist_ok=True)
    os.replace(blobs / "objects" / new[:2] / new, blobs / "objects" / old[:2] / old)

    restarted = server_process(data_dir=server.data_dir, s3_port=server.s3_port)
    s3 = s3_client(restarted.s3_endpoint)
    for key, data in (("large.bin", large), ("small.bin", small)):
        got = s3.get_object(Bucket="data", Key=key)
        assert got["Body"].read() == data
        assert got["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    s3.put_object(Bucket="data", Key="copy.bin", Body=large)
    got = s3.get_object(Bucket="data", Key="copy.bin")
    assert got["Body"].read() == large and got["ETag"] == f'"{blake3(large).hexdigest()}"'
    read_tree(ready_client(restarted.address), CommitRef.parse("data@master"), tmp_path / "out")
    assert (tmp_path / "out" / "large.bin").read_bytes() == large
