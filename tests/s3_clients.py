"""Real boto3 clients for the local server's S3 gateway, and the S3 error a call gets: what
every S3 test file builds its requests with."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from kfp_pachyderm.local.server import LocalPachyderm


def make_s3(server: LocalPachyderm, key: str = "any", secret: str | None = None, **config):
    """A boto3 S3 client for ``server``'s gateway, path-style, failing fast. The secret is
    the access key unless given: what a gateway without a token checks, as pachd does."""
    return boto3.client(
        "s3",
        endpoint_url=server.s3_endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=key if secret is None else secret,
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
            **config,
        ),
    )


def error_of(call) -> tuple[str, int]:
    """The S3 error code boto3 parsed from ``call``'s error response, and its HTTP status."""
    with pytest.raises(ClientError) as info:
        call()
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]
