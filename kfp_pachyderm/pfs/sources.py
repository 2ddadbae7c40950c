"""Where ``commit_data`` reads from: a local path, an http(s) URL, an s3:// URL, or a commit.

Each opener validates its source before anything is written (a missing file, a 404, an empty
S3 prefix, an unknown commit all fail here, naming the source) and returns the files as
:class:`~kfp_pachyderm.pfs.transfer.SourceFile` streams, so nothing is held in memory whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import requests
from pachyderm_sdk import Client

from kfp_pachyderm.errors import OperationError, UsageError
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.transfer import CHUNK_BYTES, SourceFile, local_files

HTTP_TIMEOUT_S = 60
S3_ENDPOINT_ENV = "S3_ENDPOINT"


@dataclass
class OpenedSource:
    """A validated source: its files, whether it is one file, and a stable description."""

    kind: str
    files: list[SourceFile]
    single_file: bool
    description: str


def _http(url: str) -> OpenedSource:
    try:
        response = requests.get(url, stream=True, timeout=HTTP_TIMEOUT_S)
    except requests.RequestException as err:
        raise OperationError(f"cannot fetch source URL {url!r}: {err}") from err
    if response.status_code != 200:
        response.close()
        raise OperationError(
            f"source URL {url!r} answered HTTP {response.status_code}; expected 200"
        )
    name = PurePosixPath(urlparse(url).path).name or "index.html"
    size = response.headers.get("Content-Length")

    def chunks() -> Iterator[bytes]:
        with response:
            yield from response.iter_content(CHUNK_BYTES)

    return OpenedSource("http", [SourceFile(name, int(size) if size else None, chunks)], True, url)


def _s3(url: str) -> OpenedSource:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    parsed = urlparse(url)
    bucket, prefix = parsed.netloc, parsed.path.lstrip("/")
    if not bucket:
        raise UsageError(f"source URL {url!r} names no bucket: expected s3://bucket/prefix")
    s3 = boto3.client("s3", endpoint_url=os.environ.get(S3_ENDPOINT_ENV) or None)
    try:
        keys = [
            (obj["Key"], obj["Size"])
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for obj in page.get("Contents", [])
            if not obj["Key"].endswith("/")
        ]
    except (BotoCoreError, ClientError) as err:
        raise OperationError(f"cannot list source {url!r}: {err}") from err
    if not keys:
        raise UsageError(f"source {url!r} has no objects under that prefix")
    single = len(keys) == 1 and keys[0][0] == prefix

    def opener(key: str):
        def chunks() -> Iterator[bytes]:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
            try:
                yield from body.iter_chunks(CHUNK_BYTES)
            finally:
                body.close()

        return chunks

    base = prefix if single else prefix.rstrip("/") + "/" if prefix else ""
    files = [
        SourceFile(PurePosixPath(key).name if single else key[len(base) :], size, opener(key))
        for key, size in keys
    ]
    return OpenedSource("s3", files, single, url)


def open_source(source: str) -> OpenedSource:
    """Validate a path or URL ``source`` and list its files (commit sources are copied inside
    Pachyderm instead: see :func:`is_commit_reference`)."""
    if not source:
        raise UsageError(
            "empty source: give a local path, an http(s):// or s3:// URL, or a commit "
            "reference such as repo@<commit id>:/path"
        )
    scheme = urlparse(source).scheme
    if scheme in ("http", "https"):
        return _http(source)
    if scheme == "s3":
        return _s3(source)
    if scheme in ("", "file"):
        path = Path(source.removeprefix("file://")).expanduser()
        if path.exists() or "@" not in source:
            return OpenedSource("local", local_files(path), path.is_file(), str(path.resolve()))
    raise UsageError(
        f"unsupported source {source!r}: use a local path, http(s)://, s3://, or a commit "
        "reference repo@<commit id>[:/path]"
    )


def is_commit_reference(source: str) -> bool:
    """Whether ``source`` names Pachyderm data rather than a path or URL."""
    scheme = urlparse(source).scheme
    if scheme == "pfs":
        return True
    return scheme == "" and "@" in source and not Path(source).expanduser().exists()


def resolve_commit_source(client: Client, source: str) -> CommitRef:
    """A commit source pinned to its commit ID, checked to exist with its path."""
    from kfp_pachyderm.pfs.commits import resolve
    from kfp_pachyderm.pfs.rpc import rpc_errors

    ref = resolve(client, CommitRef.parse(source))
    if ref.path not in (None, "/"):
        with rpc_errors(f"checking source {ref}"):
            if not client.pfs.path_exists(ref.pfs_file()):
                raise UsageError(f"source path {ref.path} does not exist in {ref}")
    return ref
