"""Build the images under ``images/`` with podman (daemonless), and push them.

Each build takes its base as ``--build-arg BASE`` (the Dockerfile's public default, or the
Debian base), its wheels from the lock's wheelhouse (``--build-context wheels``) and, for the
images that carry the library, the library's wheel (``--build-context dist``), so nothing is
downloaded while building. ``--timestamp`` fixes every time in the image: two builds of the same
checkout on the same base give the same image ID and, once pushed, the same digest.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kfp_pachyderm.errors import OperationError, UsageError
from kfp_pachyderm.imagebuild.catalog import ImageSource
from kfp_pachyderm.imagebuild.wheelhouse import SOURCE_DATE_EPOCH, library_wheel, wheelhouse


@dataclass(frozen=True)
class BuildSettings:
    """What every build of one ``images build`` shares."""

    source: Path
    registry: str | None = None
    base: str | None = None  # None: each Dockerfile's own default
    cache: Path = Path()
    podman: str = "podman"
    no_cache: bool = False  # build every step again instead of reusing podman's layer cache


@dataclass(frozen=True)
class BuiltImage:
    """A built image: its tag, ID, how long the build took and its size."""

    tag: str
    image_id: str
    seconds: float
    size_bytes: int


def podman_binary(name: str = "podman") -> str:
    """The podman executable, or one line saying how to install it."""
    found = shutil.which(name)
    if not found:
        raise UsageError(f"{name} is not installed: apt-get install podman runc")
    return found


def _run(command: list[str], what: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise OperationError(f"{what} failed: {done.stderr.strip()[-3000:]}")
    return done.stdout.strip()


def build_image(image: ImageSource, settings: BuildSettings, dist: Path | None) -> BuiltImage:
    """Build ``image`` as ``settings`` say; ``dist`` holds the library's wheel for the images
    that carry it."""
    tag = image.tag(settings.registry)
    wheels = wheelhouse(image.lock, settings.cache)
    command = [
        settings.podman, "build", "--quiet", "--timestamp", SOURCE_DATE_EPOCH,
        "-f", str(image.dockerfile), "-t", tag,
        "--build-arg", f"BASE={settings.base or image.default_base}",
        "--build-arg", f"IMAGE={tag}",
        "--build-arg", f"SOURCE_DATE_EPOCH={SOURCE_DATE_EPOCH}",
        "--build-context", f"wheels={wheels}",
    ]  # fmt: skip
    if settings.no_cache:
        command.append("--no-cache")
    if image.carries_library:
        if dist is None:
            raise UsageError(f"{image.short_name} installs the library: no wheel given")
        command += ["--build-context", f"dist={dist}"]
    started = time.monotonic()
    _run([*command, str(settings.source)], f"building {tag}")
    seconds = time.monotonic() - started
    image_id = _run([settings.podman, "image", "inspect", "--format", "{{.Id}}", tag], "inspect")
    size = _run([settings.podman, "image", "inspect", "--format", "{{.Size}}", tag], "inspect")
    return BuiltImage(tag=tag, image_id=image_id, seconds=seconds, size_bytes=int(size))


def build_images(images: list[ImageSource], settings: BuildSettings) -> list[BuiltImage]:
    """Build ``images`` in order, the library's wheel made once for those that carry it."""
    with tempfile.TemporaryDirectory(prefix="kfp-pachyderm-dist-") as scratch:
        dist = None
        if any(image.carries_library for image in images):
            dist = library_wheel(settings.source, Path(scratch)).parent
        return [build_image(image, settings, dist) for image in images]


def push_image(tag: str, podman: str = "podman", tls_verify: bool = True) -> str:
    """Push ``tag`` to its registry; the pushed manifest's digest (``sha256:...``)."""
    with tempfile.TemporaryDirectory() as scratch:
        digest_file = Path(scratch) / "digest"
        _run(
            [podman, "push", "--quiet", f"--tls-verify={str(tls_verify).lower()}",
             "--digestfile", str(digest_file), tag, f"docker://{tag}"],
            f"pushing {tag}",
        )  # fmt: skip
        return digest_file.read_text().strip()
