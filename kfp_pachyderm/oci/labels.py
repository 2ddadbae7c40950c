"""The labels of a model image: which model commit it serves, and the OCI annotations.

:func:`image_labels` writes them when an image is built; :func:`commit_of_image` reads them
back, so ``trace`` can start from an image reference and lead back to the data.
"""

from __future__ import annotations

from pathlib import Path

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.oci.append import OCI_BASE_DIGEST, OCI_BASE_NAME, BaseImage, resolve_base
from kfp_pachyderm.oci.reference import ImageRef, is_image_reference
from kfp_pachyderm.oci.registry import client_for
from kfp_pachyderm.pfs.refs import CommitRef

LABEL_MODEL_COMMIT = "kfp-pachyderm.model.commit"
LABEL_MODEL_REPO = "kfp-pachyderm.model.repo"
LABEL_MODEL_PROJECT = "kfp-pachyderm.model.project"
LABEL_MODEL_PATH = "kfp-pachyderm.model.path"
OCI_SOURCE = "org.opencontainers.image.source"
OCI_REVISION = "org.opencontainers.image.revision"
OCI_CREATED = "org.opencontainers.image.created"
OCI_DESCRIPTION = "org.opencontainers.image.description"


def image_labels(model: CommitRef, base: BaseImage, created: str) -> dict[str, str]:
    """The labels of a model image: the OCI ones (source, revision, created, base) and the
    model commit's project, repo, commit and path."""
    return {
        OCI_SOURCE: model.uri,
        OCI_REVISION: model.commit,
        OCI_CREATED: created,
        OCI_BASE_NAME: str(base.ref.with_tag(base.ref.tag)),
        OCI_BASE_DIGEST: base.digest,
        OCI_DESCRIPTION: f"Seldon Core 1 server of the TensorFlow SavedModel {model.uri}",
        LABEL_MODEL_PROJECT: model.project,
        LABEL_MODEL_REPO: model.repo,
        LABEL_MODEL_COMMIT: model.commit,
        LABEL_MODEL_PATH: model.path or "/",
    }


def read_labels(
    image: str | ImageRef,
    docker_config: str | Path | None = None,
    plain_http: bool | None = None,
) -> dict[str, str]:
    """The labels in the config of ``image`` (its linux/amd64 image, for an index)."""
    ref = ImageRef.parse(image) if isinstance(image, str) else image
    with client_for(ref.registry, docker_config, plain_http) as client:
        base = resolve_base(client, ref)
    return dict(base.config.get("config", {}).get("Labels") or {})


def commit_of_image(
    image: str | ImageRef,
    docker_config: str | Path | None = None,
    plain_http: bool | None = None,
) -> CommitRef:
    """The model commit an image built by ``build_seldon_image`` serves, from its labels, so
    that ``trace`` can start from an image reference and lead back to the data."""
    labels = read_labels(image, docker_config, plain_http)
    if LABEL_MODEL_COMMIT not in labels or LABEL_MODEL_REPO not in labels:
        raise UsageError(
            f"image {image} has no {LABEL_MODEL_COMMIT} and {LABEL_MODEL_REPO} labels: it was "
            "not built by kfp-pachyderm's build_seldon_image"
        )
    return CommitRef(
        labels[LABEL_MODEL_REPO],
        commit=labels[LABEL_MODEL_COMMIT],
        project=labels.get(LABEL_MODEL_PROJECT) or "default",
    )


def commit_or_image(
    text: str,
    docker_config: str | Path | None = None,
    plain_http: bool | None = None,
) -> CommitRef:
    """``text`` as a commit reference, or, when it is an image reference, the model commit the
    image serves (:func:`commit_of_image`): what ``trace`` accepts from users."""
    if is_image_reference(text):
        return commit_of_image(text, docker_config, plain_http)
    return CommitRef.parse(text)
