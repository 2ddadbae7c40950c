"""The images under ``images/``, built once per test session with podman on the Debian base, and
a way to run containers of them on this VM.

Building goes through the same code as ``kfp-pachyderm images build --debian-base`` (the
wheelhouses and the base tarball are cached under ``~/.cache/kfp-pachyderm``; podman keeps its
layer cache). ``scripts/dev.sh test`` installs podman, runc and mmdebstrap; a missing tool fails
the test, never skips it.

This VM's facts: ``crun`` fails on its hybrid cgroups, so runs use ``runc``; and podman's default
container rlimits (nofile, nproc) exceed what the VM lets a process set, so runs take the
shell's limits through ``CONTAINERS_CONF`` pointing at ``tests/containers.conf``.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kfp_pachyderm.imagebuild import (
    BuildSettings,
    BuiltImage,
    build_images,
    debian_base,
    default_cache,
    image_sources,
)

from .conftest import REPO_ROOT

# Tags the tests build; no registry is behind this name (pushes retag for the loopback one).
TEST_REGISTRY = "localhost/kfp-pachyderm-test"
# Needs a CUDA base no public registry here serves; its checks are in test_images.py.
NOT_BUILT_HERE = {"trainer-gpu"}
CONTAINERS_CONF = Path(__file__).with_name("containers.conf")
TOOLS = ("podman", "runc", "mmdebstrap")


def podman_env() -> dict[str, str]:
    """The environment podman runs containers with on this VM."""
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    """``podman ARGS`` with the VM's container settings; output captured as text."""
    return subprocess.run(
        ["podman", *args], env=podman_env(), capture_output=True, text=True, check=check,
        timeout=timeout,
    )  # fmt: skip


def require_tools() -> None:
    """Fail (never skip) when a tool the image tests need is missing."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not installed: bash scripts/dev.sh test installs them "
            "(apt-get install podman runc mmdebstrap)"
        )


@functools.cache
def build_test_images() -> dict[str, BuiltImage]:
    """Every image but the GPU one, built from this checkout on the Debian base; by short
    name (``runtime``, ``trainer``, ``seldon``, ``mlserver``); once per test process."""
    require_tools()
    cache = default_cache()
    settings = BuildSettings(
        source=REPO_ROOT, registry=TEST_REGISTRY, base=debian_base(cache), cache=cache
    )
    sources = [s for s in image_sources(REPO_ROOT) if s.short_name not in NOT_BUILT_HERE]
    built = build_images(sources, settings)
    return {source.short_name: image for source, image in zip(sources, built, strict=True)}
