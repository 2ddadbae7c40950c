"""One grammar for each checked value: the image reference parser, the TFJob image check and
the command line's ``--param`` check accept and refuse the same references, and each refusal
is a usage error naming the value."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.oci.reference import ImageRef
from kfp_pachyderm.tfjob.spec import ReplicaSpec
from kfp_pachyderm.validation import (
    check_endpoint,
    check_image,
    check_kubernetes_name,
    check_one_of,
    check_quantity,
    check_url,
)

SHA512 = "sha512:" + "ab" * 64
SHA256 = "sha256:" + "cd" * 32
VALID_IMAGES = [
    "my__model:1",
    "registry.example.com/ml/my__model:1",
    f"localhost:5000/ml/x@{SHA512}",
    f"localhost:5000/ml/x:1.0@{SHA256}",
    "ubuntu",
    "a-b--c/d.e_f:tag_1.2-x",
]
INVALID_IMAGES = [
    "My/Upper:1",
    "ml/x:-bad",
    "ml/x@sha256:abc",
    "ml/x@md5:" + "0" * 32,
    "ml/x_",
    "ml/x:" + "t" * 129,
    "bad.host:port/ml/x",
]


def refused_by_parser(image: str) -> bool:
    try:
        ImageRef.parse(image)
    except UsageError:
        return True
    return False


def refused_by_tfjob(image: str) -> bool:
    try:
        ReplicaSpec(image=image, replicas=1, command=["python"])
    except UsageError:
        return True
    return False


@pytest.mark.parametrize("image", VALID_IMAGES)
def test_valid_image_references_pass_every_check(image):
    assert check_image(image) == image
    assert not refused_by_parser(image)
    assert not refused_by_tfjob(image)


@pytest.mark.parametrize("image", INVALID_IMAGES)
def test_invalid_image_references_are_refused_by_every_check(image):
    with pytest.raises(UsageError, match="invalid"):
        check_image(image)
    assert refused_by_parser(image)
    assert refused_by_tfjob(image)


@pytest.mark.slow
def test_the_command_line_agrees_on_image_parameters():
    """``run --param trainer_image=...`` checks an image the way the parser does: a valid one
    passes the parameter check (and fails later for lack of a server), an invalid one is a
    one-line usage error with exit code 2."""
    script = (
        "import sys\n"
        "from kfp_pachyderm.cli.params import pipeline_arguments\n"
        "from kfp_pachyderm.pipelines import PIPELINES\n"
        "pipeline_arguments('mnist_tfjob', PIPELINES['mnist_tfjob'], "
        "{'trainer_image': sys.argv[1]})\n"
    )
    for image, refused in [*((i, False) for i in VALID_IMAGES), ("ml/x@sha256:abc", True)]:
        done = subprocess.run(
            [sys.executable, "-c", script, image], capture_output=True, text=True, timeout=120
        )
        assert (done.returncode != 0) == refused, (image, done.stderr[-2000:])


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (lambda v: check_kubernetes_name("namespace", v), "Kubeflow"),
        (lambda v: check_kubernetes_name("namespace", v), "a" * 64),
        (lambda v: check_kubernetes_name("namespace", v), "-x"),
        (lambda v: check_quantity("cpu", v), "2 cores"),
        (lambda v: check_url("source", v, ("http", "https", "s3")), "ftp://host/x"),
        (lambda v: check_url("source", v), "https:///path"),
        (lambda v: check_endpoint("s3_endpoint", v), "host:30600"),
        (lambda v: check_endpoint("s3_endpoint", v), "http://host:30600/some/path"),
        (lambda v: check_one_of("data mode", v, ("pfs", "s3")), "nfs"),
    ],
)
def test_each_refusal_names_the_value(check, value):
    with pytest.raises(UsageError) as err:
        check(value)
    assert repr(value) in str(err.value)


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (lambda v: check_kubernetes_name("namespace", v), "kubeflow-user-1"),
        (lambda v: check_quantity("memory", v), "4Gi"),
        (lambda v: check_url("source", v, ("http", "https", "s3")), "s3://bucket/prefix"),
        (lambda v: check_endpoint("s3_endpoint", v), "http://pachd.kubeflow:30600"),
        (lambda v: check_endpoint("s3_endpoint", v), "https://[::1]:443/"),
    ],
)
def test_valid_values_pass_unchanged(check, value):
    assert check(value) == value
