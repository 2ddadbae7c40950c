"""Wheelhouses: every wheel an image installs, made on the host from its hash-checked lock, so an
image build downloads nothing (and an air-gapped registry's builder needs only this folder).

A wheelhouse is kept under the cache, named by the lock's content: a changed lock makes a new
one, an unchanged lock reuses it. It is written beside its final place and renamed into it once
complete, under a file lock, so an interrupted or concurrent build never leaves half of one.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from kfp_pachyderm.errors import OperationError

# Zip and image timestamps of reproducible builds: 1980-01-01, the earliest a zip can hold.
SOURCE_DATE_EPOCH = "315532800"


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/kfp-pachyderm`` (``~/.cache/kfp-pachyderm``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kfp-pachyderm"


def _pip(*args: str, what: str) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode != 0:
        raise OperationError(f"{what} failed: {done.stderr.strip()[-2000:]}")


def wheelhouse(lock: Path, cache: Path) -> Path:
    """The folder of wheels for ``lock`` (made once per lock content): ``pip wheel`` checks every
    download against the lock's hashes and builds the few packages published only as sdists."""
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:16]
    final = cache / "wheelhouse" / f"{lock.parent.name}-{digest}"
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f"{final.name}.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if final.is_dir():
            return final
        partial = final.with_name(final.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        _pip(
            "wheel", "--no-deps", "--require-hashes", "-q", "-r", str(lock), "-w", str(partial),
            what=f"making the wheelhouse of {lock}",
        )  # fmt: skip
        partial.rename(final)
    return final


# What a build of the wheel reads besides the package folders that pyproject.toml maps.
BUILD_FILES = ("pyproject.toml", "setup.py", "README.md")


def copy_build_inputs(source: Path, dest: Path) -> Path:
    """The files a wheel is built from, copied from the checkout ``source`` to ``dest``: the
    build files and the package folders (``kfp_pachyderm`` and each folder ``package-dir``
    maps), without caches. A build in the checkout itself would also ship whatever an earlier
    build left in ``build/lib``, deleted modules included."""
    tool = tomllib.loads((source / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {"kfp_pachyderm", *tool.get("package-dir", {}).values()}
    dest.mkdir(parents=True)
    for name in BUILD_FILES:
        shutil.copy2(source / name, dest / name)
    junk = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in sorted(folders):
        shutil.copytree(source / folder, dest / folder, ignore=junk)
    return dest


def library_wheel(source: Path, out: Path) -> Path:
    """The library's own wheel built from a clean copy of the checkout ``source`` into ``out``
    (emptied first), with fixed timestamps so the same checkout gives the same bytes."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="kfp-pachyderm-src-") as scratch:
        copied = copy_build_inputs(source, Path(scratch) / "src")
        _pip("wheel", "--no-deps", "-q", "-w", str(out), str(copied), what="building the wheel")
    wheels = list(out.glob("kfp_pachyderm-*.whl"))
    if len(wheels) != 1:
        raise OperationError(f"building the wheel left {len(wheels)} wheels in {out}")
    return wheels[0]
