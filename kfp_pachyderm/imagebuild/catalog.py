"""The images a checkout can build, found from its ``images/`` folder rather than a list kept
by hand: every ``images/<folder>/Dockerfile`` beside a ``requirements.lock`` is the image
``kfp-pachyderm-<folder>``, tagged as the compiled YAML names it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.kfp.images import image

_DEFAULT_BASE_RE = re.compile(r"^ARG BASE=(\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class ImageSource:
    """One buildable image: its Dockerfile, its lock, and what its build needs."""

    folder: Path

    @property
    def short_name(self) -> str:
        """The folder's name, as ``--only`` takes it: ``runtime``, ``trainer``, ..."""
        return self.folder.name

    @property
    def name(self) -> str:
        """The image repository's last part, e.g. ``kfp-pachyderm-runtime``."""
        return f"kfp-pachyderm-{self.folder.name}"

    @property
    def dockerfile(self) -> Path:
        return self.folder / "Dockerfile"

    @property
    def lock(self) -> Path:
        return self.folder / "requirements.lock"

    @property
    def carries_library(self) -> bool:
        """Whether the build installs the library's own wheel (its Dockerfile mounts ``dist``)."""
        return "from=dist" in self.dockerfile.read_text()

    @property
    def default_base(self) -> str:
        """The public base the Dockerfile names (``ARG BASE=...``)."""
        found = _DEFAULT_BASE_RE.search(self.dockerfile.read_text())
        if not found:
            raise UsageError(f"{self.dockerfile} declares no ARG BASE=<image>")
        return found.group(1)

    def tag(self, registry: str | None) -> str:
        """``<registry>/kfp-pachyderm-<folder>:<version>-python-3.11``."""
        return image(self.name, registry)


def image_sources(source: Path, only: list[str] | None = None) -> list[ImageSource]:
    """The images under ``source/images``, in name order, or just those ``only`` names; a name
    that is not there, or a ``source`` that is no checkout, is refused naming what is valid."""
    folder = source / "images"
    found = sorted(
        (ImageSource(d) for d in folder.glob("*") if (d / "Dockerfile").is_file()),
        key=lambda s: s.short_name,
    )
    if not found:
        raise UsageError(
            f"{source.resolve()} has no images/<name>/Dockerfile: run this from a kfp-pachyderm "
            "checkout or pass --source <checkout>"
        )
    unlocked = [s.short_name for s in found if not s.lock.is_file()]
    if unlocked:
        raise UsageError(
            f"images {', '.join(unlocked)} have no requirements.lock: run bash scripts/dev.sh lock"
        )
    if not only:
        return found
    by_name = {s.short_name: s for s in found}
    unknown = [name for name in only if name not in by_name]
    if unknown:
        raise UsageError(f"no image named {', '.join(unknown)}: choose from {', '.join(by_name)}")
    return [by_name[name] for name in only]
