"""A base image made from Debian's packages alone (``mmdebstrap``), for builders that cannot
pull ``python:3.11-slim``: air-gapped registries, or machines that reach only a Debian mirror.

Debian bookworm's Python is 3.11, the version the locks and the compiled YAML name. The root
file system is kept as a tarball in the cache and imported into podman once; with
``SOURCE_DATE_EPOCH`` fixed, the same packages give the same tarball.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from kfp_pachyderm.errors import OperationError, UsageError
from kfp_pachyderm.imagebuild.wheelhouse import SOURCE_DATE_EPOCH

DEBIAN_BASE = "localhost/kfp-pachyderm-base:bookworm-python3.11"
PACKAGES = ("python3", "python3-venv", "ca-certificates")


def _require(tool: str, package: str) -> str:
    found = shutil.which(tool)
    if not found:
        raise UsageError(f"{tool} is not installed: apt-get install {package}")
    return found


def debian_base(cache: Path, podman: str = "podman") -> str:
    """The image reference of the Debian base, made (``mmdebstrap``, then ``podman import``)
    only when podman does not have it yet."""
    if subprocess.run([podman, "image", "exists", DEBIAN_BASE]).returncode == 0:
        return DEBIAN_BASE
    tarball = cache / "base-bookworm-python3.11.tar"
    if not tarball.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        partial = tarball.with_suffix(".partial.tar")
        made = subprocess.run(
            [
                _require("mmdebstrap", "mmdebstrap"), "--quiet", "--variant=minbase",
                f"--include={','.join(PACKAGES)}", "--format=tar",
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "bookworm", str(partial),
            ],
            capture_output=True, text=True,
            env={**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
        )  # fmt: skip
        if made.returncode != 0:
            partial.unlink(missing_ok=True)
            raise OperationError(f"mmdebstrap failed: {made.stderr.strip()[-2000:]}")
        partial.rename(tarball)
    imported = subprocess.run(
        [podman, "import", "--change", 'CMD ["python3"]', str(tarball), DEBIAN_BASE],
        capture_output=True,
        text=True,
    )
    if imported.returncode != 0:
        raise OperationError(f"podman import failed: {imported.stderr.strip()[-2000:]}")
    return DEBIAN_BASE
