"""Append one layer to a base image and push the result, through the OCI Distribution API.

:func:`resolve_base` reads the base image's manifest (the linux/amd64 one from an index) and
config. :func:`append_layer` writes the new config (labels, ``diff_ids``, history, ``created``)
and manifest in the base's media-type family (OCI or Docker), makes sure every blob is in the
target repository (already there; mounted from the base's repository when both are in one
registry; else copied, streaming), uploads the new layer and config, and pushes the manifest
last, so a tag never names an image with missing blobs. It is idempotent: blobs already in
the target are not sent again, and a tag that already names the same digest is not rewritten.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.oci.errors import RegistryError
from kfp_pachyderm.oci.layer import Layer
from kfp_pachyderm.oci.media import (
    OCI,
    Descriptor,
    Manifest,
    MediaTypes,
    family_of,
    select_platform,
)
from kfp_pachyderm.oci.reference import ImageRef, digest_of
from kfp_pachyderm.oci.registry import RegistryClient

log = logging.getLogger(__name__)

OCI_BASE_NAME = "org.opencontainers.image.base.name"
OCI_BASE_DIGEST = "org.opencontainers.image.base.digest"
TRANSFER_THREADS = 4
COPY_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class BaseImage:
    """The base image as read from its registry: the chosen platform's manifest and config."""

    ref: ImageRef
    manifest: Manifest
    config: dict
    family: MediaTypes

    @property
    def digest(self) -> str:
        """The digest of the platform manifest (what the new image is built on)."""
        return self.manifest.digest

    @property
    def pinned(self) -> ImageRef:
        """The base reference pinned to that digest."""
        return self.ref.with_digest(self.digest)


def resolve_base(client: RegistryClient, ref: ImageRef, architecture: str = "amd64") -> BaseImage:
    """Read ``ref``'s manifest (from an index, the linux/``architecture`` one) and config."""
    manifest = client.get_manifest(ref.repository, ref.reference)
    if manifest.is_index:
        chosen = select_platform(manifest, "linux", architecture)
        manifest = client.get_manifest(ref.repository, chosen.digest)
        if manifest.is_index:
            raise RegistryError(f"the linux/{architecture} entry of {ref} is itself an index")
    config = json.loads(client.get_blob(ref.repository, manifest.config.digest))
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(manifest.layers):
        raise RegistryError(
            f"base image {ref}: its config lists {len(diff_ids)} layers but its manifest "
            f"{len(manifest.layers)}"
        )
    return BaseImage(ref, manifest, config, family_of(manifest.media_type))


@dataclass
class PushResult:
    """What a push did: the image (tag and digest) and which blobs went where.

    ``uploaded`` were sent from here, ``mounted`` were linked from the base's repository,
    ``copied`` were streamed from another registry, ``present`` were already in the target.
    """

    image: ImageRef
    digest: str
    manifest_pushed: bool
    uploaded: list[str] = field(default_factory=list)
    mounted: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def sent_nothing(self) -> bool:
        """True when the registry already had everything: no blob and no manifest was sent."""
        return not (self.uploaded or self.mounted or self.copied or self.manifest_pushed)


def image_config(
    base: BaseImage, layer: Layer, labels: dict[str, str], created: str, created_by: str
) -> bytes:
    """The new image's config: the base's, plus ``labels``, the layer and a history entry."""
    config = copy.deepcopy(base.config)
    config["created"] = created
    runtime = config.setdefault("config", {})
    runtime["Labels"] = {**(runtime.get("Labels") or {}), **labels}
    config.setdefault("rootfs", {"type": "layers", "diff_ids": []})["diff_ids"].append(
        layer.diff_id
    )
    config.setdefault("history", []).append(
        {"created": created, "created_by": created_by, "comment": "kfp-pachyderm"}
    )
    return json.dumps(config, separators=(",", ":"), ensure_ascii=False).encode()


def image_manifest(base: BaseImage, config: bytes, layer: Layer) -> bytes:
    """The new manifest, in the base's media-type family; OCI manifests also name the base
    in the standard ``org.opencontainers.image.base.*`` annotations."""
    family = base.family
    document = {
        "schemaVersion": 2,
        "mediaType": family.manifest,
        "config": Descriptor(family.config, digest_of(config), len(config)).to_json(),
        "layers": [
            *base.manifest.json["layers"],
            Descriptor(family.layer_gzip, layer.digest, layer.size).to_json(),
        ],
    }
    if family == OCI:
        document["annotations"] = {
            OCI_BASE_NAME: str(base.ref.with_tag(base.ref.tag)),
            OCI_BASE_DIGEST: base.digest,
        }
    return json.dumps(document, separators=(",", ":")).encode()


def _foreign(descriptor: Descriptor) -> bool:
    return "foreign" in descriptor.media_type or "nondistributable" in descriptor.media_type


def append_layer(
    base: BaseImage,
    base_client: RegistryClient,
    target: ImageRef,
    target_client: RegistryClient,
    build: Callable[[], Layer],
    labels: dict[str, str],
    created: str,
    created_by: str,
) -> PushResult:
    """Push ``base`` plus the layer ``build`` makes as ``target`` (which names the tag).

    ``build`` runs while the base's blobs are checked, mounted or copied in other threads.
    """
    if not target.tag or target.digest:
        raise UsageError(f"push target {target} must name a tag and no digest")
    started = time.perf_counter()
    same_registry = base_client.registry == target_client.registry
    result = PushResult(target, "", manifest_pushed=False)
    repo = target.repository

    def ensure_base_blob(blob: Descriptor) -> None:
        if _foreign(blob) or target_client.blob_exists(repo, blob.digest):
            result.present.append(blob.digest)
            return
        location = None
        if same_registry:
            location = target_client.mount_blob(repo, blob.digest, base.ref.repository)
            if location is None:
                result.mounted.append(blob.digest)
                return
        with base_client.open_blob(base.ref.repository, blob.digest) as response:
            chunks = response.raw.stream(COPY_CHUNK_BYTES, decode_content=False)
            target_client.upload_blob(repo, blob.digest, chunks, blob.size, location)
        result.copied.append(blob.digest)

    def ensure_blob(digest: str, send: Callable[[], object]) -> None:
        if target_client.blob_exists(repo, digest):
            result.present.append(digest)
            return
        send()
        result.uploaded.append(digest)

    with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
        jobs = [pool.submit(ensure_base_blob, blob) for blob in base.manifest.layers]
        layer = build()
        for job in jobs:
            job.result()
        with open(layer.path, "rb") as f:
            ensure_blob(
                layer.digest,
                lambda: target_client.upload_blob(repo, layer.digest, f, layer.size),
            )
    config = image_config(base, layer, labels, created, created_by)
    manifest = image_manifest(base, config, layer)
    config_digest = digest_of(config)
    ensure_blob(
        config_digest,
        lambda: target_client.upload_blob(repo, config_digest, config, len(config)),
    )
    result.digest = digest_of(manifest)
    if target_client.manifest_digest(repo, target.tag) != result.digest:
        target_client.put_manifest(repo, target.tag, manifest, base.family.manifest)
        result.manifest_pushed = True
    result.image = target.with_digest(result.digest)
    result.seconds = time.perf_counter() - started
    log.info(
        "pushed %s: %d uploaded, %d mounted, %d copied, %d already there%s",
        result.image,
        len(result.uploaded),
        len(result.mounted),
        len(result.copied),
        len(result.present),
        "" if result.manifest_pushed else " (the tag already named this manifest)",
    )
    return result
