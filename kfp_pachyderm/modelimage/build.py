"""Build and push the serving image of a model commit, whatever server it runs.

1. Check every input, read the model commit and the base image's manifest and config: a bad
   name, an unfinished model commit, missing credentials, no push access (checked when the tag
   is new) or an unknown base all fail here, before anything is written.
2. Commit the flavour's build context to its builds repo, or reuse the branch head when it
   already holds exactly this context for this model.
3. Append the context's ``model/`` as one reproducible layer (:mod:`kfp_pachyderm.oci.layer`)
   at ``/mnt/models`` onto the base and push ``<image>:<model commit ID>``
   (:mod:`kfp_pachyderm.oci.append`); the manifest goes last. A flavour may have the layer
   hold the model a second time as hard links (:attr:`ImageFlavor.linked_model_dirs`: the
   MLServer image at ``/models``, where KServe's modelcars look), which adds no file bytes.
4. Record the image, with its digest, in the provenance of the build commit and of the model
   commit, so ``trace`` leads from either to the image, and the image's labels lead back.

The same model commit, base image and library version always give the same image digest:
the layer and config hold nothing that depends on when or where the build ran (the creation
time is the model commit's). A rerun sends nothing the registry already has.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from pachyderm_sdk import Client

from kfp_pachyderm import __version__
from kfp_pachyderm.codec.names import DEFAULT_BRANCH
from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.oci.append import BaseImage, PushResult, append_layer, resolve_base
from kfp_pachyderm.oci.labels import image_labels
from kfp_pachyderm.oci.layer import build_layer
from kfp_pachyderm.oci.reference import ImageRef
from kfp_pachyderm.oci.registry import RegistryClient, client_for
from kfp_pachyderm.pfs.commits import (
    ensure_repo,
    finished_head,
    inspect_commit,
    is_finished,
    output_commit,
)
from kfp_pachyderm.pfs.provenance import ProvenanceRecord, read_provenance, record_provenance
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.transfer import local_files, put_tree, read_tree, tree_digest

log = logging.getLogger(__name__)

DEFAULT_MODEL_PATH = "/model"
CONTEXT_MODEL_DIR = "model"
# Where KServe's storage initializer and Seldon Core put a model, and where the layer puts it.
IMAGE_MODEL_DIR = "/mnt/models"
# Where a KServe modelcar (``storageUri: oci://<image>``) holds its model: KServe mounts an
# emptyDir over /mnt in that container and links /mnt/models to /proc/<pid>/root/models.
MODELCAR_MODEL_DIR = "/models"
# Every flavour records its pushed image in the model's provenance under a key ending so.
IMAGE_KEY_SUFFIX = "_image"


class ContextWriter(Protocol):
    """Writes a flavour's build context into ``dest`` from the model files in ``model_dir``;
    ``model/`` in it becomes the image layer. ``provenance`` names the model commit and what
    made it; ``base`` is pinned; ``labels`` are the image's; ``image`` is the pushed tag or
    ``""``."""

    def __call__(
        self,
        dest: Path,
        model_dir: Path,
        provenance: dict,
        base: ImageRef,
        labels: dict[str, str],
        image: str,
    ) -> Path: ...


@dataclass(frozen=True)
class ImageFlavor:
    """What differs between serving images: the step name in provenance, the default builds
    repo, the provenance key recording the pushed image, the default base image, the build
    context, and the image directories that hold the model a second time, as hard links to
    the files at :data:`IMAGE_MODEL_DIR` (none by default: the layer then is as it always
    was)."""

    step: str
    builds_repo: str
    record_key: str
    default_base: Callable[[], str]
    write_context: ContextWriter
    linked_model_dirs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.record_key.endswith(IMAGE_KEY_SUFFIX):
            raise UsageError(f"record_key {self.record_key!r} must end with {IMAGE_KEY_SUFFIX!r}")


@dataclass(frozen=True)
class ModelImageBuild:
    """The outcome: the model, the build-context commit, and the image (None when no image
    was asked for) with the push's details."""

    model: CommitRef
    build_commit: CommitRef
    reused_context: bool
    base: ImageRef
    image: ImageRef | None
    push: PushResult | None


def _created(info) -> datetime:
    if not is_finished(info):
        ref = f"{info.commit.repo.name}@{info.commit.id}"
        raise UsageError(f"model commit {ref} is not finished; build from a finished one")
    return info.finished.astimezone(UTC).replace(microsecond=0)


def check_target(image: str) -> ImageRef:
    """``image`` parsed, if it names a repository only (the tag is always the commit ID)."""
    target = ImageRef.parse(image)
    if target.tag or target.digest:
        raise UsageError(
            f"image {image!r} must name a repository only, e.g. registry.example.com/ml/mnist: "
            "the tag is always the model commit ID"
        )
    return target


def push_model_image(
    context: Path,
    model: CommitRef,
    base: BaseImage,
    base_client: RegistryClient,
    target: ImageRef,
    target_client: RegistryClient,
    created: datetime,
    work_dir: Path,
    gzip_level: int = 6,
    linked_model_dirs: tuple[str, ...] = (),
) -> PushResult:
    """Append ``context``'s ``model/`` directory to ``base`` as one layer at ``/mnt/models``
    (and as hard links in each of ``linked_model_dirs``) and push it as
    ``target:<model commit ID>``; the layer file is written in ``work_dir``."""
    labels = image_labels(model, base, created.strftime("%Y-%m-%dT%H:%M:%SZ"))
    links = dict.fromkeys(linked_model_dirs, IMAGE_MODEL_DIR)
    linked = "".join(f"; ln {IMAGE_MODEL_DIR}/ {d}/" for d in linked_model_dirs)
    return append_layer(
        base,
        base_client,
        target.with_tag(model.commit),
        target_client,
        lambda: build_layer(
            {IMAGE_MODEL_DIR: context / CONTEXT_MODEL_DIR},
            work_dir / "layer.tar.gz",
            int(created.timestamp()),
            gzip_level,
            links,
        ),
        labels,
        labels["org.opencontainers.image.created"],
        f"COPY {CONTEXT_MODEL_DIR}/ {IMAGE_MODEL_DIR}/{linked} # kfp-pachyderm {__version__}",
    )


def _image_provenance(model: CommitRef, record: ProvenanceRecord, base: ImageRef) -> dict:
    """``provenance.json``: the model commit, its own record, the base and the builder. The
    images already built from the model, of any flavour (recorded after each push), are left
    out, or every rebuild would differ."""
    fields = dict(vars(record))
    fields["extra"] = {k: v for k, v in record.extra.items() if not k.endswith(IMAGE_KEY_SUFFIX)}
    return {
        "model": {
            "uri": model.uri,
            "project": model.project,
            "repo": model.repo,
            "commit": model.commit,
            "path": model.path,
        },
        "model_provenance": fields,
        "base_image": str(base),
        "built_by": f"kfp-pachyderm {__version__}",
    }


def _commit_context(
    client: Client, builds: CommitRef, context: Path, record: ProvenanceRecord, step: str
) -> tuple[CommitRef, ProvenanceRecord, bool]:
    """Commit ``context`` to ``builds``, or reuse the branch head when it holds the same
    context for the same model; return the commit, its record, and whether it was reused."""
    digest = tree_digest(local_files(context)).digest
    ensure_repo(client, builds)
    head = finished_head(client, builds)
    if (
        head is not None
        and head[1].step == step
        and head[1].inputs == record.inputs
        and head[1].extra.get("content_digest") == digest
    ):
        ref, head_record = head
        log.info("%s already holds this build context; reusing it", ref)
        return ref, head_record, True
    record.extra = {**record.extra, "content_digest": digest}
    with output_commit(client, builds, provenance=record, start_empty=True) as out:
        put_tree(client, out.pfs_commit(), context)
    return out.ref, record, False


@dataclass(frozen=True)
class BuildOptions:
    """How a serving image is built, the same for every flavour: the base it goes onto (None:
    the flavour's), the branch its build context is committed to (None: the flavour's builds
    repo on the default branch), the step's provenance record, the registry credentials
    (``docker_config``) and plain HTTP, as for :func:`kfp_pachyderm.oci.registry.client_for`,
    whether to push (false: only the context is committed, for serving straight from the S3
    gateway), and the layer's gzip level."""

    base_image: str | None = None
    builds: CommitRef | None = None
    record: ProvenanceRecord | None = None
    docker_config: str | Path | None = None
    plain_http: bool | None = None
    push: bool = True
    gzip_level: int = 6


DEFAULT_BUILD = BuildOptions()


def build_model_image(
    client: Client,
    flavor: ImageFlavor,
    model: CommitRef,
    image: str | None,
    options: BuildOptions = DEFAULT_BUILD,
) -> ModelImageBuild:
    """Build and push the ``flavor`` image of the model at ``model`` (default path ``/model``)
    as ``<image>:<model commit ID>``, with ``options``; see the module docstring. ``image`` is
    a repository (``registry/path``, no tag), needed unless ``options.push`` is false.
    """
    if options.push and not image:
        raise UsageError("pushing a serving image needs image, a repository to push to")
    target = check_target(image) if options.push else None
    base_ref = ImageRef.parse(options.base_image or flavor.default_base())
    builds = options.builds or CommitRef(flavor.builds_repo)
    if builds.commit or builds.path:
        raise UsageError(f"builds {builds} must name a repo and branch, not a commit")
    builds = builds.on(builds.branch or DEFAULT_BRANCH)
    if not 1 <= options.gzip_level <= 9:
        raise UsageError(f"gzip_level {options.gzip_level} is out of range 1..9")
    info = inspect_commit(client, model)
    created = _created(info)
    stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    model = CommitRef(
        model.repo,
        commit=info.commit.id,
        path=model.path or DEFAULT_MODEL_PATH,
        project=model.project,
    )
    model_record = read_provenance(info) or ProvenanceRecord()

    base = base_client = target_client = None
    if options.push:
        base_client = client_for(base_ref.registry, options.docker_config, options.plain_http)
        base = resolve_base(base_client, base_ref)
        target_client = (
            base_client
            if target.registry == base_ref.registry
            else client_for(target.registry, options.docker_config, options.plain_http)
        )
        if target_client.manifest_digest(target.repository, model.commit) is None:
            target_client.check_push(target.repository)  # before the context is committed
    pinned_base = base.pinned if base else base_ref
    record = options.record or ProvenanceRecord()
    record.step = flavor.step
    record.inputs = [str(model)]
    record.parameters = {
        **record.parameters,
        "base_image": str(pinned_base),
        "image": str(target) if target else "",
    }
    try:
        with tempfile.TemporaryDirectory(prefix="model-image-") as tmp:
            work = Path(tmp)
            read_tree(client, model, work / "model", digest=False)
            context = flavor.write_context(
                work / "context",
                work / "model",
                _image_provenance(model, model_record, pinned_base),
                pinned_base,
                image_labels(model, base, stamp) if base else {},
                str(target.with_tag(model.commit)) if target else "",
            )
            build_commit, record, reused = _commit_context(
                client, builds, context, record, flavor.step
            )
            result = None
            if options.push:
                result = push_model_image(
                    context,
                    model,
                    base,
                    base_client,
                    target,
                    target_client,
                    created,
                    work,
                    options.gzip_level,
                    flavor.linked_model_dirs,
                )
    finally:
        for registry_client in {base_client, target_client} - {None}:
            registry_client.close()
    if result is not None:
        pushed = str(result.image)
        record.extra = {**record.extra, flavor.record_key: pushed}
        record_provenance(client, build_commit, ProvenanceRecord(extra=record.extra))
        model_extra = {**model_record.extra, flavor.record_key: pushed}
        record_provenance(client, model.with_path(None), ProvenanceRecord(extra=model_extra))
    return ModelImageBuild(
        model,
        build_commit,
        reused,
        pinned_base,
        result.image if result else None,
        result,
    )
