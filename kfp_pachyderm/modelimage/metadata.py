"""The Kubernetes names, labels and annotations every serving resource of a model carries.

A serving resource (a SeldonDeployment, an InferenceService, a Seldon Core 2 Model) is named by
a DNS label and labelled with the model commit it serves, so
``kubectl get isvc,sdep,mlm -l kfp-pachyderm/model-commit=<id>`` finds what serves a model.
"""

from __future__ import annotations

import re

from kfp_pachyderm.errors import KfpPachydermError
from kfp_pachyderm.modelimage.build import CONTEXT_MODEL_DIR
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.s3 import bucket_name

LABEL_COMMIT = "kfp-pachyderm/model-commit"
LABEL_REPO = "kfp-pachyderm/model-repo"
ANNOTATION_MODEL = "kfp-pachyderm/model"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def check_resource_name(name: str, kind: str = "resource") -> str:
    """``name`` if it is a valid name for a ``kind`` (a DNS label), else raise naming it."""
    if not _DNS_LABEL.match(name or ""):
        raise KfpPachydermError(
            f"invalid {kind} name {name!r}: up to 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return name


def resource_name_for(repository: str) -> str:
    """A default resource name: the last part of an image repository or a repo name, made a
    DNS label."""
    name = re.sub(r"[^a-z0-9-]+", "-", repository.rsplit("/", 1)[-1].lower()).strip("-")
    return check_resource_name(name[:63].rstrip("-") or "model")


def object_metadata(name: str, namespace: str = "") -> dict:
    """A Kubernetes object's ``metadata``: ``name``, and ``namespace`` when one is given (an
    object without one goes where it is applied)."""
    return {"name": name, **({"namespace": namespace} if namespace else {})}


def serving_metadata(name: str, namespace: str, model: CommitRef, kind: str) -> dict:
    """``metadata`` for a ``kind`` named ``name`` serving ``model`` (which must pin a commit)."""
    check_resource_name(name, kind)
    if not model.commit:
        raise KfpPachydermError(f"model {model} names no commit ID; a {kind} pins one")
    return {
        **object_metadata(name, namespace),
        "labels": {LABEL_COMMIT: model.commit, LABEL_REPO: model.repo},
        "annotations": {ANNOTATION_MODEL: model.with_path(None).uri},
    }


def model_storage_uri(build_commit: CommitRef) -> str:
    """The ``s3://`` URI of ``model/`` in ``build_commit`` through pachd's S3 gateway: what a
    server downloads instead of pulling an image. It names the commit ID, so it is pinned."""
    if not build_commit.commit:
        raise KfpPachydermError(f"build commit {build_commit} names no commit ID")
    return f"s3://{bucket_name(build_commit.with_path(None))}/{CONTEXT_MODEL_DIR}"
