"""Image references: ``registry/repository[:tag][@digest]`` parsed and normalised as Docker
does, told apart from Pachyderm commit references, and content digests.

Example:
    >>> ref = ImageRef.parse("localhost:5000/ml/mnist:latest")
    >>> (ref.registry, ref.repository, ref.reference)
    ('localhost:5000', 'ml/mnist', 'latest')
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace

from kfp_pachyderm.oci.errors import RegistryError

DOCKER_HUB = "docker.io"
DOCKER_HUB_ALIASES = {
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
}

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$")
_HOST_RE = re.compile(r"^(?:[\w-]+(?:\.[\w-]+)*|\[[0-9a-fA-F:]+\])(?::\d+)?$")


def _looks_like_host(component: str) -> bool:
    return (
        component == "localhost" or "." in component or bool(re.match(r"^[\w.-]+:\d+$", component))
    )


@dataclass(frozen=True)
class ImageRef:
    """An image reference: ``registry/repository[:tag][@digest]``.

    Docker Hub names are normalised as Docker does: ``ubuntu`` is ``docker.io/library/ubuntu``.
    ``reference`` is what the registry API is asked for: the digest if set, else the tag,
    else ``latest``.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        if not _HOST_RE.match(self.registry):
            raise RegistryError(f"invalid registry host {self.registry!r} in image reference")
        if not _REPOSITORY_RE.match(self.repository) or len(self.repository) > 255:
            raise RegistryError(
                f"invalid repository name {self.repository!r}: lowercase letters, digits and "
                "separators ('.', '_', '__', '-', '/') only"
            )
        if self.tag is not None and not _TAG_RE.match(self.tag):
            raise RegistryError(
                f"invalid tag {self.tag!r}: up to 128 letters, digits, '_', '.' and '-', "
                "not starting with '.' or '-'"
            )
        if self.digest is not None and not DIGEST_RE.match(self.digest):
            raise RegistryError(
                f"invalid digest {self.digest!r}: expected sha256:<64 hex> or sha512:<128 hex>"
            )

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Parse ``[registry/]repository[:tag][@digest]`` (a ``docker://`` prefix is allowed);
        raise RegistryError naming the bad part."""
        if not isinstance(text, str) or not text.strip():
            raise RegistryError(f"empty image reference {text!r}: expected registry/repo[:tag]")
        body = text.strip().removeprefix("docker://")
        digest = None
        if "@" in body:
            body, digest = body.split("@", 1)
        tag = None
        last = body.rsplit("/", 1)[-1]
        if ":" in last:
            body, tag = body.rsplit(":", 1)
        first, _, rest = body.partition("/")
        if rest and _looks_like_host(first):
            registry, repository = first, rest
        else:
            registry, repository = DOCKER_HUB, body
        if registry in DOCKER_HUB_ALIASES:
            registry = DOCKER_HUB
            if "/" not in repository:
                repository = f"library/{repository}"
        try:
            return cls(registry, repository, tag or None, digest or None)
        except RegistryError as err:
            raise RegistryError(f"{err} (in image reference {text!r})") from None

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
    return bool(slash) and _looks_like_host(first)


def digest_of(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
