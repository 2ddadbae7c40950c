"""The media types of image manifests, indexes, configs and layers (OCI and Docker schema 2),
and the manifests, indexes and descriptors a registry stores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from kfp_pachyderm.oci.errors import RegistryError


@dataclass(frozen=True)
class MediaTypes:
    """The media types of one image format family: OCI, or Docker's schema 2."""

    name: str
    manifest: str
    index: str
    config: str
    layer_gzip: str


OCI = MediaTypes(
    "OCI",
    manifest="application/vnd.oci.image.manifest.v1+json",
    index="application/vnd.oci.image.index.v1+json",
    config="application/vnd.oci.image.config.v1+json",
    layer_gzip="application/vnd.oci.image.layer.v1.tar+gzip",
)
DOCKER = MediaTypes(
    "Docker",
    manifest="application/vnd.docker.distribution.manifest.v2+json",
    index="application/vnd.docker.distribution.manifest.list.v2+json",
    config="application/vnd.docker.container.image.v1+json",
    layer_gzip="application/vnd.docker.image.rootfs.diff.tar.gzip",
)
MANIFEST_TYPES = (OCI.manifest, DOCKER.manifest)
INDEX_TYPES = (OCI.index, DOCKER.index)


def family_of(media_type: str) -> MediaTypes:
    """The family (OCI or Docker) a manifest or index media type belongs to."""
    for family in (OCI, DOCKER):
        if media_type in (family.manifest, family.index):
            return family
    raise RegistryError(
        f"unsupported manifest media type {media_type!r}: expected one of "
        f"{', '.join(MANIFEST_TYPES + INDEX_TYPES)}"
    )


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: media type, digest and size, plus the platform in an index."""

    media_type: str
    digest: str
    size: int
    platform: dict | None = None

    @classmethod
    def from_json(cls, data: dict) -> Descriptor:
        """A descriptor from its JSON form in a manifest or index."""
        return cls(data["mediaType"], data["digest"], int(data["size"]), data.get("platform"))

    def to_json(self) -> dict:
        """The JSON form, as manifests carry it."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class Manifest:
    """A manifest or index as the registry returned it: exact bytes, media type and digest."""

    body: bytes
    media_type: str
    digest: str

    @property
    def json(self) -> dict:
        """The parsed document."""
        return json.loads(self.body)

    @property
    def is_index(self) -> bool:
        """Whether this is an index (a manifest list) rather than an image manifest."""
        return self.media_type in INDEX_TYPES

    @property
    def config(self) -> Descriptor:
        """The config descriptor of an image manifest."""
        return Descriptor.from_json(self.json["config"])

    @property
    def layers(self) -> list[Descriptor]:
        """The layer descriptors of an image manifest, base first."""
        return [Descriptor.from_json(d) for d in self.json["layers"]]


def select_platform(
    index: Manifest, os_name: str = "linux", architecture: str = "amd64"
) -> Descriptor:
    """The image manifest for ``os_name``/``architecture`` in an index; raise naming the
    platforms the index has when it has no such manifest."""
    found = []
    for entry in index.json.get("manifests", []):
        platform = entry.get("platform") or {}
        found.append(f"{platform.get('os', '?')}/{platform.get('architecture', '?')}")
        if platform.get("os") == os_name and platform.get("architecture") == architecture:
            return Descriptor.from_json(entry)
    raise RegistryError(
        f"the index {index.digest} has no {os_name}/{architecture} image "
        f"(it has {', '.join(found) or 'no manifests'})"
    )
