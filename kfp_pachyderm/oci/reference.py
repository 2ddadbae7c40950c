"""Image references: ``registry/repository[:tag][@digest]`` parsed and normalised as Docker
does, told apart from Pachyderm commit references, and content digests.

Example:
    >>> ref = ImageRef.parse("localhost:5000/ml/mnist:latest")
    >>> (ref.registry, ref.repository, ref.reference)
    ('localhost:5000', 'ml/mnist', 'latest')
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from kfp_pachyderm.validation import (
    check_image_parts,
    looks_like_registry_host,
    split_image_reference,
)

DOCKER_HUB = "docker.io"
DOCKER_HUB_ALIASES = {
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
}


@dataclass(frozen=True)
class ImageRef:
    """An image reference: ``registry/repository[:tag][@digest]``.

    Docker Hub names are normalised as Docker does: ``ubuntu`` is ``docker.io/library/ubuntu``.
    ``reference`` is what the registry API is asked for: the digest if set, else the tag,
    else ``latest``. The grammar is :mod:`kfp_pachyderm.validation`'s.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        check_image_parts(self.registry, self.repository, self.tag, self.digest)

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Parse ``[registry/]repository[:tag][@digest]`` (a ``docker://`` prefix is allowed);
        raise :class:`~kfp_pachyderm.validation.InvalidImageReference` naming the bad part."""
        parts = split_image_reference(text)
        registry, repository = parts.registry or DOCKER_HUB, parts.repository
        if registry in DOCKER_HUB_ALIASES:
            registry = DOCKER_HUB
            if "/" not in repository:
                repository = f"library/{repository}"
        return cls(registry, repository, parts.tag, parts.digest)

    @property
    def reference(self) -> str:
        """The tag or digest to ask the registry for."""
        return self.digest or self.tag or "latest"

    @property
    def name(self) -> str:
        """``registry/repository``."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_tag(self, tag: str | None) -> ImageRef:
        """The same repository with ``tag`` (and no digest)."""
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> ImageRef:
        """The same reference pinned to ``digest`` (the tag is kept for readers)."""
        return replace(self, digest=digest)


def is_image_reference(text: str) -> bool:
    """Whether ``text`` names an image rather than a Pachyderm commit: a ``docker://`` prefix,
    a digest (``@sha256:``), or a first path part that is a registry host (it has a dot or a
    port, or is ``localhost``), which Pachyderm project names cannot be."""
    text = text.strip()
    if text.startswith("docker://") or "@sha256:" in text or "@sha512:" in text:
        return True
    first, slash, _ = text.partition("/")
    return bool(slash) and looks_like_registry_host(first)


def digest_of(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
