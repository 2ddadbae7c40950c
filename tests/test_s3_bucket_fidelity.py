"""The S3 gateway's bucket and object operations against pachd 2.12's gateway, through real
boto3 and the raw HTTP a client sends, cross-checked over gRPC with the real SDK.

pachd's gateway is ``src/server/pfs/s3/`` of pachyderm/pachyderm (branch 2.12.x) on the
``pachyderm/s2`` library it pins (``go.mod``: ``v0.0.0-20220510214824-e4a20345d93c``); each test
names the file whose behaviour it checks.
"""

from __future__ import annotations

import http.client
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm.local.server import LocalPachyderm

from .s3_clients import error_of, make_s3

# A gateway without a token takes any access key signed with itself as the secret, as pachd's.
KEY = "fidelity"
PACHD_OWNER = {"ID": "0" * 32, "DisplayName": "pachyderm"}  # defaultUser, s3.go
XMLNS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@pytest.fixture
def server(tmp_path: Path):
    with LocalPachyderm(tmp_path / "pfs", s3_port=0) as srv:
        yield srv


@pytest.fixture
def s3(server: LocalPachyderm):
    return make_s3(server, KEY)


@pytest.fixture
def pach(server: LocalPachyderm) -> Client:
    return Client.from_pachd_address(server.address)


def branch(repo: str, name: str = "master") -> pfs.Branch:
    return pfs.Branch(repo=pfs.Repo(name=repo, project=pfs.Project(name="default")), name=name)


def files(pach: Client, repo: str, name: str = "master") -> dict[str, bytes]:
    """Every file of the branch's head, read over gRPC."""
    commit = pfs.Commit(branch=branch(repo, name))
    out = {}
    for info in pach.pfs.walk_file(file=pfs.File(commit=commit, path="/")):
        if info.file_type == pfs.FileType.FILE:
            with pach.pfs.pfs_file(pfs.File(commit=commit, path=info.file.path)) as f:
                out[info.file.path] = f.read()
    return out


def raw(server: LocalPachyderm, method: str, target: str) -> tuple[int, bytes]:
    """``method target`` (path and query, as a client encodes them), SigV4-signed as botocore
    signs; the status and body."""
    request = AWSRequest(method=method, url=server.s3_endpoint + target)
    S3SigV4Auth(Credentials(KEY, KEY), "s3", "us-east-1").add_auth(request)
    split = urlsplit(server.s3_endpoint)
    connection = http.client.HTTPConnection(split.hostname, split.port, timeout=30)
    try:
        connection.request(method, target, headers=dict(request.headers.items()))
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def text_of(body: bytes, tag: str) -> list[str]:
    """The text of every ``tag`` element of an S3 XML document, in document order."""
    root = ElementTree.fromstring(body)
    return [element.text or "" for element in root.iter(XMLNS + tag)]


# ------------------------------------------------------------------------- DeleteBucket


def test_delete_bucket_refuses_a_bucket_whose_head_holds_files(s3, pach: Client):
    """pachd's DeleteBucket (``src/server/pfs/s3/bucket.go``) walks the files of the branch's
    head commit and answers BucketNotEmpty (409) when it finds one, deleting nothing; an open
    head counts with what it holds so far (``openCommit`` reads an open commit,
    ``src/server/pfs/server/server_commit.go``). S3 answers 409 BucketNotEmpty too."""
    s3.create_bucket(Bucket="data")
    s3.put_object(Bucket="data", Key="dir/a.csv", Body=b"a,b\n")
    s3.create_bucket(Bucket="dev.data")
    pach.pfs.start_commit(branch=branch("data", "dev"))
    s3.put_object(Bucket="dev.data", Key="open.txt", Body=b"in an open commit")

    for name in ("data", "dev.data", "master.data.default"):
        with pytest.raises(ClientError) as info:
            s3.delete_bucket(Bucket=name)
        error = info.value.response["Error"]
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409, error
        assert error["Code"] == "BucketNotEmpty" and "not empty" in error["Message"]

    assert files(pach, "data") == {"/dir/a.csv": b"a,b\n"}
    assert files(pach, "data", "dev") == {"/open.txt": b"in an open commit"}
    assert {b.branch.name for b in pach.pfs.list_branch(repo=pfs.Repo(name="data"))} == {
        "master",
        "dev",
    }
    assert s3.get_object(Bucket="data", Key="dir/a.csv")["Body"].read() == b"a,b\n"


def test_delete_bucket_of_an_empty_head_deletes_the_branch_then_the_repo(s3, pach: Client):
    """With no file in the head, pachd's DeleteBucket (``bucket.go``) deletes the branch and,
    when the repo has no branch left, the repo with every commit: only the head is looked at,
    so files of older commits go with the repo. A missing branch is NoSuchBucket (404)."""
    s3.create_bucket(Bucket="data")
    old = s3.put_object(Bucket="data", Key="f", Body=b"old")["VersionId"]
    s3.delete_object(Bucket="data", Key="f")  # the head is empty; commit `old` still holds f
    s3.create_bucket(Bucket="dev.data")

    s3.delete_bucket(Bucket="dev.data")
    assert [b.branch.name for b in pach.pfs.list_branch(repo=pfs.Repo(name="data"))] == ["master"]
    assert s3.get_object(Bucket="data", Key="f", VersionId=old)["Body"].read() == b"old"

    s3.delete_bucket(Bucket="data")
    assert not pach.pfs.repo_exists(pfs.Repo(name="data"))
    assert error_of(lambda: s3.delete_bucket(Bucket="data")) == ("NoSuchBucket", 404)
    s3.create_bucket(Bucket="other")
    assert error_of(lambda: s3.delete_bucket(Bucket="nobranch.other")) == ("NoSuchBucket", 404)


# --------------------------------------------------------------------- folder markers


def test_a_key_ending_in_a_slash_is_the_file_without_it(s3, pach: Client):
    """pachd's PutObject, GetObject (HEAD too), CopyObject and DeleteObject drop one trailing
    '/' from the key (``strings.TrimSuffix(file, "/")``, ``src/server/pfs/s3/object.go``): the
    folder marker ``logs/`` that S3 consoles, Hadoop's s3a and TensorFlow's ``makedirs`` write
    is the file ``/logs``, and lists as ``logs``. GetObject compares the first path ListFile
    gives with the key, so a directory is no object; DeleteFile of a path without a trailing
    '/' deletes that file only (``UnorderedWriter.Delete``,
    ``src/internal/storage/fileset/unordered_writer.go``)."""
    s3.create_bucket(Bucket="data")
    put = s3.put_object(Bucket="data", Key="logs/", Body=b"")
    assert put["ETag"] and put["VersionId"]
    s3.put_object(Bucket="data", Key="models/v1/", Body=b"marker")
    assert files(pach, "data") == {"/logs": b"", "/models/v1": b"marker"}

    assert s3.head_object(Bucket="data", Key="logs/")["ContentLength"] == 0
    assert s3.get_object(Bucket="data", Key="logs/")["Body"].read() == b""
    assert s3.get_object(Bucket="data", Key="models/v1/")["Body"].read() == b"marker"
    assert s3.get_object(Bucket="data", Key="models/v1")["Body"].read() == b"marker"
    assert error_of(lambda: s3.get_object(Bucket="data", Key="models/")) == ("NoSuchKey", 404)
    assert error_of(lambda: s3.head_object(Bucket="data", Key="models/"))[1] == 404

    listed = s3.list_objects_v2(Bucket="data")
    assert [o["Key"] for o in listed["Contents"]] == ["logs", "models/v1"]
    assert "Contents" not in s3.list_objects_v2(Bucket="data", Prefix="logs/")
    top = s3.list_objects(Bucket="data", Delimiter="/")
    assert [o["Key"] for o in top["Contents"]] == ["logs"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["models/"]

    s3.copy_object(Bucket="data", Key="copied/", CopySource="/data/models/v1/")
    assert files(pach, "data")["/copied"] == b"marker"

    s3.delete_object(Bucket="data", Key="logs/")
    s3.delete_object(Bucket="data", Key="models/")  # no file /models: nothing is deleted
    assert files(pach, "data") == {"/copied": b"marker", "/models/v1": b"marker"}
    result = s3.delete_objects(Bucket="data", Delete={"Objects": [{"Key": "copied/"}]})
    assert [d["Key"] for d in result["Deleted"]] == ["copied/"]
    assert files(pach, "data") == {"/models/v1": b"marker"}


# ------------------------------------------------------------------------- conditions


def test_get_and_head_honour_the_date_conditions_in_rfc_7232_order(s3):
    """pachd's gateway serves GET and HEAD through Go's ``http.ServeContent`` (``object.go`` of
    pachyderm/s2), whose ``checkPreconditions`` (``net/http/fs.go``) follows RFC 7232 section
    6: If-Match, or If-Unmodified-Since when there is no If-Match, gives 412; then
    If-None-Match, or If-Modified-Since when there is no If-None-Match, gives 304. Times
    compare in whole seconds (Last-Modified's precision); a date that does not parse is no
    condition."""
    s3.create_bucket(Bucket="data")
    etag = s3.put_object(Bucket="data", Key="f", Body=b"0123456789")["ETag"]
    modified = s3.head_object(Bucket="data", Key="f")["LastModified"]
    before, after = modified - timedelta(seconds=1), modified + timedelta(seconds=1)

    def status(method, **conditions) -> int:
        call = s3.get_object if method == "GET" else s3.head_object
        try:
            return call(Bucket="data", Key="f", **conditions)["ResponseMetadata"]["HTTPStatusCode"]
        except ClientError as err:
            return err.response["ResponseMetadata"]["HTTPStatusCode"]

    for method in ("GET", "HEAD"):
        assert status(method, IfModifiedSince=modified) == 304, method
        assert status(method, IfModifiedSince=after) == 304, method
        assert status(method, IfModifiedSince=before) == 200, method
        assert status(method, IfUnmodifiedSince=before) == 412, method
        assert status(method, IfUnmodifiedSince=modified) == 200, method
        # If-Match decides, If-Unmodified-Since is not looked at; then the 304 conditions.
        assert status(method, IfMatch=etag, IfUnmodifiedSince=before) == 200, method
        assert status(method, IfMatch='"other"', IfUnmodifiedSince=after) == 412, method
        assert status(method, IfMatch=etag, IfModifiedSince=modified) == 304, method
        # If-None-Match decides, If-Modified-Since is not looked at.
        assert status(method, IfNoneMatch='"other"', IfModifiedSince=after) == 200, method
        assert status(method, IfNoneMatch=etag, IfModifiedSince=before) == 304, method
        assert status(method, IfNoneMatch="W/" + etag) == 304, method  # a weak comparison
        assert status(method, IfMatch="W/" + etag) == 412, method  # a strong one
        # 412 comes before 304.
        assert status(method, IfUnmodifiedSince=before, IfModifiedSince=after) == 412, method

    got = s3.get_object(Bucket="data", Key="f", IfModifiedSince=before, Range="bytes=2-4")
    assert got["Body"].read() == b"234"


def test_an_unparsable_date_is_no_condition(server: LocalPachyderm, s3):
    """Go's ``checkIfModifiedSince`` and ``checkIfUnmodifiedSince`` (``net/http/fs.go``) ignore
    a date ``http.ParseTime`` cannot read; the header's other forms (RFC 850, asctime) are
    read. Raw requests, as boto3 sends only datetimes."""
    s3.create_bucket(Bucket="data")
    s3.put_object(Bucket="data", Key="f", Body=b"x")
    modified = s3.head_object(Bucket="data", Key="f")["LastModified"]
    for header, expected in [
        ({"If-Modified-Since": "yesterday"}, 200),
        ({"If-Unmodified-Since": "not a date"}, 200),
        ({"If-Modified-Since": modified.strftime("%A, %d-%b-%y %H:%M:%S GMT")}, 304),
        ({"If-Unmodified-Since": "Sun Nov  6 08:49:37 1994"}, 412),
    ]:
        request = AWSRequest(method="GET", url=server.s3_endpoint + "/data/f", headers=header)
        S3SigV4Auth(Credentials(KEY, KEY), "s3", "us-east-1").add_auth(request)
        split = urlsplit(server.s3_endpoint)
        connection = http.client.HTTPConnection(split.hostname, split.port, timeout=30)
        connection.request("GET", "/data/f", headers=dict(request.headers.items()))
        response = connection.getresponse()
        response.read()
        connection.close()
        assert response.status == expected, header


# ---------------------------------------------------------------------------- listings


def test_list_objects_v1_prefix_is_as_sent(server: LocalPachyderm, s3):
    """pachd's listing (the ``get`` handler of s2's ``bucket.go``) never URL-encodes: its
    ``<Prefix>`` is the prefix as sent. boto3 asks for ``encoding-type=url`` on every listing and
    decodes, in ListObjects V1, Delimiter, Marker, NextMarker and the keys and common prefixes,
    but not ``<Prefix>`` (``decode_list_object``, botocore/handlers.py), so an encoded V1
    ``<Prefix>`` reached the caller as ``%0A`` or ``%20``. The fields boto3 decodes stay
    encoded (with ``<EncodingType>url</EncodingType>``), as S3 encodes them."""
    s3.create_bucket(Bucket="data")
    for key in ("dir/a b.txt", "dir/a b/c", "dir/z"):
        s3.put_object(Bucket="data", Key=key, Body=b"x")

    v1 = s3.list_objects(Bucket="data", Prefix="dir/a b", Delimiter="/")
    assert v1["Prefix"] == "dir/a b"
    assert [o["Key"] for o in v1["Contents"]] == ["dir/a b.txt"]
    assert [p["Prefix"] for p in v1["CommonPrefixes"]] == ["dir/a b/"]
    assert s3.list_objects(Bucket="data", Prefix="\n")["Prefix"] == "\n"
    page = s3.list_objects(Bucket="data", Prefix="dir/a ", MaxKeys=1)
    assert (page["Prefix"], page["NextMarker"]) == ("dir/a ", "dir/a b.txt")
    v2 = s3.list_objects_v2(Bucket="data", Prefix="dir/a b", Delimiter="/")
    assert v2["Prefix"] == "dir/a b" and [o["Key"] for o in v2["Contents"]] == ["dir/a b.txt"]

    status, body = raw(server, "GET", "/data?prefix=dir%2Fa%20b&encoding-type=url")
    assert status == 200
    assert text_of(body, "Prefix") == ["dir/a b"]
    assert text_of(body, "Key") == ["dir/a%20b.txt", "dir/a%20b/c"]
    assert text_of(body, "EncodingType") == ["url"]
    status, body = raw(server, "GET", "/data?list-type=2&prefix=dir%2Fa%20b&encoding-type=url")
    assert text_of(body, "Prefix") == ["dir/a%20b"]  # V2: boto3 decodes it


def test_listings_name_pachds_owner(s3):
    """pachd names one owner of everything, ``defaultUser`` (``src/server/pfs/s3/s3.go``: ID 32
    zeros, DisplayName ``pachyderm``): in ListBuckets (``service.go``), in every object of a
    listing (``newContents``, ``bucket.go``; s2 writes ``<Owner>`` unconditionally) and in
    ListMultipartUploads (``multipart.go``). S3 lists an object's owner in V1 always and in V2
    with ``fetch-owner=true`` only, as here."""
    s3.create_bucket(Bucket="data")
    s3.put_object(Bucket="data", Key="f", Body=b"x")
    s3.create_multipart_upload(Bucket="data", Key="g")

    assert s3.list_buckets()["Owner"] == PACHD_OWNER
    assert [o["Owner"] for o in s3.list_objects_v2(Bucket="data", FetchOwner=True)["Contents"]] == [
        PACHD_OWNER
    ]
    assert "Owner" not in s3.list_objects_v2(Bucket="data")["Contents"][0]
    assert "Owner" not in s3.list_objects_v2(Bucket="data", FetchOwner=False)["Contents"][0]
    assert s3.list_objects(Bucket="data")["Contents"][0]["Owner"] == PACHD_OWNER
    (upload,) = s3.list_multipart_uploads(Bucket="data")["Uploads"]
    assert upload["Owner"] == upload["Initiator"] == PACHD_OWNER


def test_get_bucket_location_is_pachyderm(server: LocalPachyderm, s3):
    """pachd's GetLocation (``bucket.go``) answers ``globalLocation``, ``PACHYDERM``
    (``s3.go``), as the text of ``<LocationConstraint>`` (s2's ``location`` handler); a missing
    bucket is NoSuchBucket."""
    s3.create_bucket(Bucket="data")
    assert s3.get_bucket_location(Bucket="data")["LocationConstraint"] == "PACHYDERM"
    status, body = raw(server, "GET", "/data?location")
    assert status == 200 and text_of(body, "LocationConstraint") == ["PACHYDERM"]
    assert error_of(lambda: s3.get_bucket_location(Bucket="ghost")) == ("NoSuchBucket", 404)


def test_list_buckets_ignores_max_buckets(s3):
    """pachd routes ``GET /`` to ListBuckets whatever its query (s2's ``Router``, ``s2.go``) and
    lists every branch (``listBuckets``, ``src/server/pfs/s3/driver.go``): ``max-buckets`` is
    ignored."""
    for name in ("a", "b", "c"):
        s3.create_bucket(Bucket=name)
    listed = s3.list_buckets(MaxBuckets=1)["Buckets"]
    assert [b["Name"] for b in listed] == [
        "master.a.default",
        "master.b.default",
        "master.c.default",
    ]


def test_put_bucket_versioning_accepts_only_enabled(s3):
    """pachd's buckets are always versioned (each object's version is its commit):
    ``SetBucketVersioning`` (``src/server/pfs/s3/bucket.go``) accepts ``Enabled`` and changes
    nothing, and answers NotImplemented to anything else."""
    s3.create_bucket(Bucket="data")
    s3.put_bucket_versioning(Bucket="data", VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket="data")["Status"] == "Enabled"
    suspend = {"Status": "Suspended"}
    assert error_of(
        lambda: s3.put_bucket_versioning(Bucket="data", VersioningConfiguration=suspend)
    ) == ("NotImplemented", 501)
    assert s3.get_bucket_versioning(Bucket="data")["Status"] == "Enabled"
