"""The Kubernetes names, labels and annotations every serving resource of a model carries.

A serving resource (a SeldonDeployment, an InferenceService, a Seldon Core 2 Model) is named by
a DNS label and labelled with the model commit it serves, so
``kubectl get isvc,sdep,mlm -l kfp-pachyderm/model-commit=<id>`` finds what serves a model.
It is labelled with the model's repo too (``kfp-pachyderm/model-repo``), for selecting by hand:
nothing here reads that label back. A label value is at most 63 characters and starts and ends
with a letter or digit, and a pachd repo name need not (``models_``, ``-x``, or 64 characters
and more); such a name is labelled :func:`label_value`'s stand-in, and the exact name is kept
in the annotation ``kfp-pachyderm/model-repo`` (the ``kfp-pachyderm/model`` annotation, a
``pfs://`` URI, names it too).
"""

from __future__ import annotations

import hashlib
import re

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.modelimage.build import CONTEXT_MODEL_DIR
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.s3 import bucket_name
from kfp_pachyderm.validation import check_kubernetes_name

LABEL_COMMIT = "kfp-pachyderm/model-commit"
LABEL_REPO = "kfp-pachyderm/model-repo"
ANNOTATION_MODEL = "kfp-pachyderm/model"
ANNOTATION_REPO = "kfp-pachyderm/model-repo"
# Kubernetes' label value (apimachinery validation.IsValidLabelValue).
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
_ALNUM_EDGES = re.compile(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$")
_LABEL_HASH_CHARS = 10


def resource_name_for(repository: str) -> str:
    """A default resource name: the last part of an image repository or a repo name, made a
    DNS label."""
    name = re.sub(r"[^a-z0-9-]+", "-", repository.rsplit("/", 1)[-1].lower()).strip("-")
    return check_kubernetes_name("resource name", name[:63].rstrip("-") or "model")


def object_metadata(name: str, namespace: str = "") -> dict:
    """A Kubernetes object's ``metadata``: ``name``, and ``namespace`` when one is given (an
    object without one goes where it is applied)."""
    return {"name": name, **({"namespace": namespace} if namespace else {})}


def label_value(value: str) -> str:
    """``value`` when it is a valid Kubernetes label value; otherwise a valid stand-in, told
    apart from other values' by its hash: ``value`` without the leading and trailing characters
    a label value cannot start or end with, cut to 52 characters, then ``-`` and 10 hex digits
    of its SHA-256 (only the digits when nothing is left). So ``kubectl get -l
    kfp-pachyderm/model-repo=<label_value(repo)>`` selects by any repo, whatever its name."""
    if _LABEL_VALUE.match(value):
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:_LABEL_HASH_CHARS]
    kept = _ALNUM_EDGES.sub("", _ALNUM_EDGES.sub("", value)[: 62 - _LABEL_HASH_CHARS])
    return f"{kept}-{digest}" if kept else digest


def serving_metadata(name: str, namespace: str, model: CommitRef, kind: str) -> dict:
    """``metadata`` for a ``kind`` named ``name`` serving ``model`` (which must pin a commit):
    labelled with the commit and :func:`label_value` of the repo, annotated with the model's
    URI and, when the repo label is a stand-in, the exact repo name."""
    check_kubernetes_name(f"{kind} name", name)
    if not model.commit:
        raise UsageError(f"model {model} names no commit ID; a {kind} pins one")
    repo_label = label_value(model.repo)
    annotations = {ANNOTATION_MODEL: model.with_path(None).uri}
    if repo_label != model.repo:
        annotations[ANNOTATION_REPO] = model.repo
    return {
        **object_metadata(name, namespace),
        "labels": {LABEL_COMMIT: model.commit, LABEL_REPO: repo_label},
        "annotations": annotations,
    }


def model_storage_uri(build_commit: CommitRef) -> str:
    """The ``s3://`` URI of ``model/`` in ``build_commit`` through pachd's S3 gateway: what a
    server downloads instead of pulling an image. It names the commit ID, so it is pinned."""
    if not build_commit.commit:
        raise UsageError(f"build commit {build_commit} names no commit ID")
    return f"s3://{bucket_name(build_commit.with_path(None))}/{CONTEXT_MODEL_DIR}"
