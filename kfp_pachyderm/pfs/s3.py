"""S3 access to Pachyderm for training code: settings as environment variables, and a small
reader/writer that uses them.

In the seeds, a TFJob reads its input and writes its model through pachd's S3 gateway with
ordinary S3 code, configured by ``S3_ENDPOINT`` (``host:port``), ``S3_USE_HTTPS``,
``S3_VERIFY_SSL``, ``S3_REQUEST_TIMEOUT_MSEC``, ``S3_CONNECT_TIMEOUT_MSEC`` and ``S3_REGION``
(the variables TensorFlow's S3 file system reads). :func:`s3_env` produces those, plus the bucket
and key prefix of one input commit and one output branch, and ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` (pachd's gateway takes the Pachyderm token as both).
:class:`S3Data` reads them back inside the job.

A bucket is pachd's ``[<commitID>.]<branch>.<repo>[.<project>]``: the input bucket names its
commit, so the job reads exactly that version; each write to an output branch bucket is one
commit on the branch (or goes into the open commit the output names, if it names one).

Example:
    >>> env = s3_env("http://localhost:30600",
    ...              "images@master=0123456789ab4def0123456789abcdef:/train", "models@master")
    >>> env["S3_INPUT_BUCKET"], env["S3_INPUT_PREFIX"], env["S3_OUTPUT_BUCKET"]
    ('0123456789ab4def0123456789abcdef.master.images', 'train/', 'master.models')
    >>> data = S3Data(env)                                   # doctest: +SKIP
    >>> for key in data.list_inputs(): data.download(key, f"/tmp/in/{key}")   # doctest: +SKIP
    >>> data.upload("model.keras", "model.keras")            # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

import boto3
from botocore.config import Config

from kfp_pachyderm.codec.names import DEFAULT_BRANCH, DEFAULT_PROJECT
from kfp_pachyderm.errors import ConnectionSettingsError, InvalidReferenceError
from kfp_pachyderm.pfs.refs import CommitRef

ENDPOINT_ENV = "S3_ENDPOINT"
USE_HTTPS_ENV = "S3_USE_HTTPS"
VERIFY_SSL_ENV = "S3_VERIFY_SSL"
REQUEST_TIMEOUT_ENV = "S3_REQUEST_TIMEOUT_MSEC"
CONNECT_TIMEOUT_ENV = "S3_CONNECT_TIMEOUT_MSEC"
REGION_ENV = "S3_REGION"
INPUT_BUCKET_ENV = "S3_INPUT_BUCKET"
INPUT_BUCKETS_ENV = "S3_INPUT_BUCKETS"  # every input of a multi-input step, space-separated
INPUT_PREFIX_ENV = "S3_INPUT_PREFIX"
OUTPUT_BUCKET_ENV = "S3_OUTPUT_BUCKET"
OUTPUT_PREFIX_ENV = "S3_OUTPUT_PREFIX"
ACCESS_KEY_ENV = "AWS_ACCESS_KEY_ID"
SECRET_KEY_ENV = "AWS_SECRET_ACCESS_KEY"

DEFAULT_TIMEOUT_MS = 600_000
DEFAULT_REGION = "us-east-1"
# Without auth, pachd's gateway accepts any access key id but checks the signature with it as the
# secret, so clients sign with this one value as both.
NO_TOKEN_CREDENTIAL = "pachyderm"
REQUIRED_ENV = (ENDPOINT_ENV, INPUT_BUCKET_ENV, OUTPUT_BUCKET_ENV)


def _ref(value: CommitRef | str, what: str) -> CommitRef:
    if isinstance(value, CommitRef):
        return value
    if isinstance(value, str):
        return CommitRef.parse(value)
    raise InvalidReferenceError(
        f"{what} {value!r} is not a commit reference: pass a CommitRef or a string such as "
        "'repo@branch=commitid'"
    )


def bucket_name(ref: CommitRef | str) -> str:
    """pachd's S3 bucket for ``ref``: its commit when it names one, else its branch's head.

    The shortest form pachd accepts: ``[<commitID>.]<branch>.<repo>``, with ``.<project>``
    outside project ``default``; a ref with no branch uses master. The path is not part of it
    (see :func:`key_prefix`).
    """
    ref = _ref(ref, "ref")
    parts = [ref.commit] if ref.commit else []
    parts += [ref.branch or DEFAULT_BRANCH, ref.repo]
    if ref.project != DEFAULT_PROJECT:
        parts.append(ref.project)
    return ".".join(parts)


def key_prefix(ref: CommitRef | str) -> str:
    """The S3 key prefix of ``ref``'s path: ``train/`` for ``:/train``, empty for the root."""
    path = _ref(ref, "ref").path
    return "" if path in (None, "/") else path[1:] + "/"


def parse_endpoint(endpoint: str) -> SplitResult:
    """The S3 gateway address ``endpoint`` (``http[s]://host:port``, or ``host:port`` for
    http) split into scheme and host; ConnectionSettingsError naming it when it is neither."""
    parsed = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    if (
        parsed.scheme not in ("http", "https")
        or not parsed.hostname
        or parsed.path not in ("", "/")
    ):
        raise ConnectionSettingsError(
            f"S3 endpoint {endpoint!r} is invalid: expected http://host:port, https://host:port "
            "or host:port"
        )
    return parsed


def s3_env(
    endpoint: str,
    input_commit: CommitRef | str,
    output_branch: CommitRef | str,
    *,
    token: str | None = None,
    verify_ssl: bool = True,
    request_timeout_ms: int = DEFAULT_TIMEOUT_MS,
    connect_timeout_ms: int = DEFAULT_TIMEOUT_MS,
    region: str = DEFAULT_REGION,
) -> dict[str, str]:
    """Environment variables, in the seeds' style, that point training code at Pachyderm's S3
    gateway: it reads ``input_commit`` and writes to ``output_branch``.

    Args:
        endpoint: the gateway, ``http[s]://host:port`` or ``host:port`` (http).
        input_commit: the data to read; it must name a commit ID (``repo@branch=id`` or
            ``repo@id``) so the job reads exactly that version. A path restricts it to a prefix.
        output_branch: where to write (``repo@branch``, a path for a prefix); naming an open
            commit instead (``repo@branch=id``) writes into that commit.
        token: the Pachyderm token, used as access key id and secret; without one, a
            placeholder as both (a gateway without auth accepts any access key id, and checks
            the signature with it as the secret). The value lands in the environment: in a
            pod, prefer taking ``AWS_*`` from a Kubernetes Secret.
        verify_ssl: whether to verify the gateway's TLS certificate.
        request_timeout_ms, connect_timeout_ms: client timeouts, in milliseconds.
        region: the signing region (pachd accepts any).

    Raises:
        ConnectionSettingsError: ``endpoint`` or a timeout is unusable.
        InvalidReferenceError: a reference cannot be parsed, or the input names no commit ID.
    """
    parsed = parse_endpoint(endpoint)
    for name, value in (
        ("request_timeout_ms", request_timeout_ms),
        ("connect_timeout_ms", connect_timeout_ms),
    ):
        if not isinstance(value, int) or value <= 0:
            raise ConnectionSettingsError(
                f"{name} {value!r} is invalid: expected a positive number of milliseconds"
            )
    source = _ref(input_commit, "input_commit")
    if not source.commit:
        raise InvalidReferenceError(
            f"input {source} names no commit ID: pin it (repo@branch=commitid) so the job reads "
            "a fixed version"
        )
    target = _ref(output_branch, "output_branch")
    credential = token or NO_TOKEN_CREDENTIAL
    return {
        ENDPOINT_ENV: parsed.netloc,
        USE_HTTPS_ENV: "1" if parsed.scheme == "https" else "0",
        VERIFY_SSL_ENV: "1" if verify_ssl else "0",
        REQUEST_TIMEOUT_ENV: str(request_timeout_ms),
        CONNECT_TIMEOUT_ENV: str(connect_timeout_ms),
        REGION_ENV: region,
        INPUT_BUCKET_ENV: bucket_name(source),
        INPUT_PREFIX_ENV: key_prefix(source),
        OUTPUT_BUCKET_ENV: bucket_name(target),
        OUTPUT_PREFIX_ENV: key_prefix(target),
        ACCESS_KEY_ENV: credential,
        SECRET_KEY_ENV: credential,
    }


def _flag(env: Mapping[str, str], name: str, default: str) -> bool:
    value = env.get(name, default).strip().lower()
    if value not in ("0", "1", "true", "false"):
        raise ConnectionSettingsError(f"{name}={value!r} is invalid: use 1 or 0")
    return value in ("1", "true")


def _millis(env: Mapping[str, str], name: str) -> float:
    value = env.get(name, str(DEFAULT_TIMEOUT_MS))
    if not value.isdigit() or int(value) == 0:
        raise ConnectionSettingsError(
            f"{name}={value!r} is invalid: use a positive number of milliseconds"
        )
    return int(value) / 1000


class S3Data:
    """Reads the input bucket and writes the output bucket that :func:`s3_env`'s variables name.

    Keys are relative to the input or output prefix. Each write to a branch bucket is one
    commit; to write many files as one commit, make the output an open commit
    (``s3_env(..., output_branch="repo@branch=<open commit id>")``) and finish it afterwards.

    Args:
        env: the variables; ``os.environ`` when omitted.

    Raises:
        ConnectionSettingsError: a required variable is missing or a value is unusable.
    """

    def __init__(self, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        missing = [name for name in REQUIRED_ENV if not env.get(name)]
        if missing:
            raise ConnectionSettingsError(
                f"S3 settings missing: {', '.join(missing)} "
                "(set them with kfp_pachyderm.pfs.s3.s3_env)"
            )
        self.input_bucket = env[INPUT_BUCKET_ENV]
        self.input_prefix = env.get(INPUT_PREFIX_ENV, "")
        self.output_bucket = env[OUTPUT_BUCKET_ENV]
        self.output_prefix = env.get(OUTPUT_PREFIX_ENV, "")
        https = _flag(env, USE_HTTPS_ENV, "0")
        credential = env.get(ACCESS_KEY_ENV) or NO_TOKEN_CREDENTIAL
        self.client = boto3.client(
            "s3",
            endpoint_url=f"{'https' if https else 'http'}://{env[ENDPOINT_ENV]}",
            aws_access_key_id=credential,
            aws_secret_access_key=env.get(SECRET_KEY_ENV) or credential,
            region_name=env.get(REGION_ENV) or DEFAULT_REGION,
            verify=_flag(env, VERIFY_SSL_ENV, "1"),
            config=Config(
                s3={"addressing_style": "path"},
                connect_timeout=_millis(env, CONNECT_TIMEOUT_ENV),
                read_timeout=_millis(env, REQUEST_TIMEOUT_ENV),
            ),
        )

    def list_inputs(self, prefix: str = "") -> Iterator[str]:
        """Keys of the input files under ``prefix``, relative to the input prefix, sorted."""
        paginator = self.client.get_paginator("list_objects_v2")
        full = self.input_prefix + prefix
        for page in paginator.paginate(Bucket=self.input_bucket, Prefix=full):
            for item in page.get("Contents", []):
                yield item["Key"][len(self.input_prefix) :]

    def read(self, key: str) -> bytes:
        """One input file's bytes (for small files; use :meth:`download` for large ones)."""
        response = self.client.get_object(Bucket=self.input_bucket, Key=self.input_prefix + key)
        return response["Body"].read()

    def download(self, key: str, destination: Path | str) -> Path:
        """Stream one input file to ``destination`` (parents created); return its path."""
        destination = Path(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        self.client.download_file(self.input_bucket, self.input_prefix + key, str(destination))
        return destination

    def download_all(self, directory: Path | str, prefix: str = "") -> list[Path]:
        """Every input file under ``prefix`` into ``directory``, keeping their relative paths."""
        directory = Path(directory)
        return [self.download(key, directory / key) for key in self.list_inputs(prefix)]

    def write(self, key: str, data: bytes) -> str:
        """Write ``data`` as output file ``key``; return the commit ID it went into."""
        response = self.client.put_object(
            Bucket=self.output_bucket, Key=self.output_prefix + key, Body=data
        )
        return response["VersionId"]

    def upload(self, source: Path | str, key: str) -> None:
        """Stream local file ``source`` to output file ``key`` (multipart when large)."""
        self.client.upload_file(str(source), self.output_bucket, self.output_prefix + key)

    def upload_dir(self, directory: Path | str, prefix: str = "") -> list[str]:
        """Every file under ``directory`` to ``prefix`` in the output, one commit per file on a
        branch bucket; return the keys written."""
        directory = Path(directory)
        keys = []
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            key = prefix + path.relative_to(directory).as_posix()
            self.upload(path, key)
            keys.append(key)
        return keys
